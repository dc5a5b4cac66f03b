"""Home Assistant-side helpers: URL normalization, engine configuration, error mapping."""

from __future__ import annotations

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
import pytest
import yarl

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
    HaAuthenticationError,
    HaClientError,
    HaCommandError,
    HaConnectionClosedError,
    HaConnectionError,
    HaForbiddenError,
    HaHeartbeatTimeoutError,
    HaNotHomeAssistantError,
    HaProtocolError,
    HaServiceUnavailableError,
    HaSSLError,
    HaSubscriptionError,
    HaTimeoutError,
)
from custom_components.ha_ingestion.const import (
    CONF_BASE_DELAY,
    CONF_EVENT_TYPES,
    CONF_FAILURE_THRESHOLD,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    CONF_JITTER,
    CONF_MAX_ATTEMPTS,
    CONF_MAX_DELAY,
    CONF_MULTIPLIER,
    CONF_RECOVERY_TIMEOUT,
    CONF_VERIFY_SSL,
    DEFAULT_OPTIONS,
)
from custom_components.ha_ingestion.helpers import (
    InvalidURLError,
    build_engine_config,
    configuration_url,
    error_key,
    is_insecure_remote,
    normalize_url,
    options_with_defaults,
)

# ---------------------------------------------------------------------- normalize_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # host:port
        ("homeassistant.local:8123", "ws://homeassistant.local:8123/api/websocket"),
        ("127.0.0.1:8123", "ws://127.0.0.1:8123/api/websocket"),
        ("  192.168.1.5:8123  ", "ws://192.168.1.5:8123/api/websocket"),
        ("homeassistant", "ws://homeassistant/api/websocket"),
        # http / https become ws / wss
        ("http://ha.lan:8123", "ws://ha.lan:8123/api/websocket"),
        ("https://ha.example.com", "wss://ha.example.com/api/websocket"),
        ("HTTPS://HA.Example.COM:8443", "wss://ha.example.com:8443/api/websocket"),
        # ws / wss kept, with or without /api/websocket, trailing slashes dropped
        ("ws://ha.lan:8123", "ws://ha.lan:8123/api/websocket"),
        ("ws://ha.lan:8123/api/websocket", "ws://ha.lan:8123/api/websocket"),
        ("wss://ha.example.com/api/websocket/", "wss://ha.example.com/api/websocket"),
        ("http://ha.lan:8123/", "ws://ha.lan:8123/api/websocket"),
        ("http://ha.lan:8123/api/websocket", "ws://ha.lan:8123/api/websocket"),
        # default ports of the resulting scheme dropped, other ports kept
        ("http://ha.lan:80", "ws://ha.lan/api/websocket"),
        ("ws://ha.lan:80/api/websocket", "ws://ha.lan/api/websocket"),
        ("https://ha.example.com:443/", "wss://ha.example.com/api/websocket"),
        ("wss://ha.example.com:443/api/websocket", "wss://ha.example.com/api/websocket"),
        ("https://ha.example.com:80", "wss://ha.example.com:80/api/websocket"),
        ("http://ha.lan:443", "ws://ha.lan:443/api/websocket"),
        # credentials kept
        ("https://user:secret@ha.example.com", "wss://user:secret@ha.example.com/api/websocket"),
        ("http://user@ha.lan:8123", "ws://user@ha.lan:8123/api/websocket"),
        # sub-path (reverse proxy)
        ("https://example.com/ha", "wss://example.com/ha/api/websocket"),
        ("https://example.com/ha/", "wss://example.com/ha/api/websocket"),
        ("wss://example.com/ha/api/websocket", "wss://example.com/ha/api/websocket"),
        # query and fragment are not part of the API address
        ("http://ha.lan:8123/?x=1#frag", "ws://ha.lan:8123/api/websocket"),
        # IPv6
        ("http://[::1]:8123", "ws://[::1]:8123/api/websocket"),
    ],
)
def test_normalize_url(text: str, expected: str) -> None:
    assert normalize_url(text) == expected
    assert normalize_url(expected) == expected  # idempotent


def test_normalize_url_keeps_encoded_credentials() -> None:
    url = yarl.URL(normalize_url("http://us%3Aer:p%40ss%2Fw%23rd@ha.lan:8123"))
    assert url.user == "us:er"
    assert url.password == "p@ss/w#rd"
    assert url.host == "ha.lan"
    assert url.path == "/api/websocket"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "ftp://x",
        "file:///etc/passwd",
        "mqtt://broker:1883",
        "http://",
        "https://",
        "ws://",
        "://x",
        "http://:8123",
        "http://host:99999",
        "http://[::1",
    ],
)
def test_normalize_url_invalid(text: str) -> None:
    with pytest.raises(InvalidURLError):
        normalize_url(text)


def test_invalid_url_error_is_value_error() -> None:
    assert issubclass(InvalidURLError, ValueError)


# ---------------------------------------------------------------------- configuration_url


@pytest.mark.parametrize(
    ("ws_url", "expected"),
    [
        ("ws://127.0.0.1:8123/api/websocket", "http://127.0.0.1:8123/"),
        ("wss://ha.example.com/api/websocket", "https://ha.example.com/"),
        ("wss://ha.example.com:8443/api/websocket", "https://ha.example.com:8443/"),
        ("wss://user:secret@ha.example.com/api/websocket", "https://ha.example.com/"),
        ("ws://user@ha.lan:8123/api/websocket", "http://ha.lan:8123/"),
        ("wss://example.com/ha/api/websocket", "https://example.com/ha"),
        ("ws://ha.lan:8123", "http://ha.lan:8123/"),
    ],
)
def test_configuration_url(ws_url: str, expected: str) -> None:
    result = configuration_url(ws_url)
    assert result == expected
    parsed = yarl.URL(result)
    assert parsed.user is None
    assert parsed.password is None
    assert "secret" not in result


# ---------------------------------------------------------------------- is_insecure_remote


@pytest.mark.parametrize(
    ("ws_url", "insecure"),
    [
        # encrypted: never insecure
        ("wss://8.8.8.8/api/websocket", False),
        ("wss://example.com/api/websocket", False),
        # plain ws to loopback, private, link-local, local names: not insecure
        ("ws://127.0.0.1:8123/api/websocket", False),
        ("ws://192.168.1.5:8123/api/websocket", False),
        ("ws://10.0.0.2:8123/api/websocket", False),
        ("ws://172.16.0.9:8123/api/websocket", False),
        ("ws://169.254.10.1:8123/api/websocket", False),
        ("ws://[::1]:8123/api/websocket", False),
        ("ws://[fd00::1]:8123/api/websocket", False),
        ("ws://[fe80::1]:8123/api/websocket", False),
        ("ws://homeassistant:8123/api/websocket", False),
        ("ws://localhost:8123/api/websocket", False),
        ("ws://homeassistant.local:8123/api/websocket", False),
        ("ws://HomeAssistant.LOCAL:8123/api/websocket", False),
        ("ws://ha.lan:8123/api/websocket", False),
        ("ws://ha.home.arpa:8123/api/websocket", False),
        ("ws://ha.internal:8123/api/websocket", False),
        # plain ws across the internet: insecure
        ("ws://8.8.8.8:8123/api/websocket", True),
        ("ws://example.com:8123/api/websocket", True),
        ("ws://ha.example.com/api/websocket", True),
        ("ws://[2001:4860:4860::8888]:8123/api/websocket", True),
    ],
)
def test_is_insecure_remote(ws_url: str, insecure: bool) -> None:
    assert is_insecure_remote(ws_url) is insecure


# ---------------------------------------------------------------------- build_engine_config

DATA = {CONF_URL: "ws://127.0.0.1:8123/api/websocket", CONF_ACCESS_TOKEN: "secret-token"}


def test_options_with_defaults() -> None:
    assert options_with_defaults({}) == DEFAULT_OPTIONS
    assert options_with_defaults({CONF_JITTER: False}) == {**DEFAULT_OPTIONS, CONF_JITTER: False}


def test_build_engine_config_defaults() -> None:
    config = build_engine_config(DATA, {})

    connection = config.connection
    assert connection.url == DATA[CONF_URL]
    assert connection.token == "secret-token"
    assert connection.verify_ssl is True
    assert connection.heartbeat_interval == DEFAULT_OPTIONS[CONF_HEARTBEAT_INTERVAL]
    assert connection.heartbeat_timeout == DEFAULT_OPTIONS[CONF_HEARTBEAT_TIMEOUT]
    assert connection.event_types == ("state_changed",)
    assert config.backoff == BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=True)
    assert config.breaker == BreakerConfig(failure_threshold=5, recovery_timeout=60.0)
    assert config.max_attempts == 0


def test_build_engine_config_from_data_and_options() -> None:
    options = {
        CONF_EVENT_TYPES: ["state_changed", "call_service"],
        CONF_BASE_DELAY: 2,
        CONF_MAX_DELAY: 120,
        CONF_MULTIPLIER: 3,
        CONF_JITTER: False,
        CONF_MAX_ATTEMPTS: 10.0,
        CONF_FAILURE_THRESHOLD: 4.0,
        CONF_RECOVERY_TIMEOUT: 30,
        CONF_HEARTBEAT_INTERVAL: 15,
        CONF_HEARTBEAT_TIMEOUT: 5,
    }
    config = build_engine_config({**DATA, CONF_VERIFY_SSL: False}, options)

    connection = config.connection
    assert connection.verify_ssl is False
    assert connection.heartbeat_interval == 15.0
    assert connection.heartbeat_timeout == 5.0
    assert connection.event_types == ("state_changed", "call_service")
    assert config.backoff == BackoffConfig(base=2.0, multiplier=3.0, max_delay=120.0, jitter=False)
    assert config.breaker == BreakerConfig(failure_threshold=4, recovery_timeout=30.0)
    assert config.max_attempts == 10
    assert type(config.max_attempts) is int
    assert type(config.breaker.failure_threshold) is int
    assert type(config.backoff.base) is float
    assert "secret-token" not in repr(config)


def test_build_engine_config_partial_options() -> None:
    config = build_engine_config(DATA, {CONF_HEARTBEAT_INTERVAL: 5})
    assert config.connection.heartbeat_interval == 5.0
    assert config.connection.heartbeat_timeout == DEFAULT_OPTIONS[CONF_HEARTBEAT_TIMEOUT]
    assert config.backoff.max_delay == DEFAULT_OPTIONS[CONF_MAX_DELAY]


# ---------------------------------------------------------------------- error_key


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (HaAuthenticationError("auth_invalid"), "invalid_auth"),
        (HaForbiddenError("HTTP 403"), "forbidden"),  # a ban or a proxy: a new token cannot help
        (HaSSLError("certificate verify failed"), "ssl_error"),
        (HaNotHomeAssistantError("HTTP 404"), "not_home_assistant"),
        (HaTimeoutError("no answer"), "timeout"),
        (HaHeartbeatTimeoutError("no pong"), "timeout"),
        (HaConnectionError("refused"), "cannot_connect"),
        (HaConnectionClosedError("closed"), "cannot_connect"),
        (HaServiceUnavailableError("HTTP 503"), "cannot_connect"),
        (HaProtocolError("garbage"), "cannot_connect"),
        (HaCommandError("unknown_command", "Unknown command."), "cannot_connect"),
        (HaSubscriptionError("unauthorized"), "cannot_connect"),
        (HaClientError("anything"), "cannot_connect"),
    ],
)
def test_error_key(error: HaClientError, key: str) -> None:
    assert error_key(error) == key
