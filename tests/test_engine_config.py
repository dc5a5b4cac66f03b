"""The engine's configuration from an entry's data and options."""

from __future__ import annotations

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
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
from custom_components.ha_ingestion.engine_config import build_engine_config, options_with_defaults

# ---------------------------------------------------------------------- normalize_url


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
