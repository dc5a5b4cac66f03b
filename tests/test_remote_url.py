"""The remote's address: normalisation, its web UI, plain ws:// to a public host."""

from __future__ import annotations

import pytest
import yarl

from custom_components.ha_ingestion.remote_url import (
    InvalidURLError,
    configuration_url,
    is_insecure_remote,
    normalize_url,
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
