"""Error hierarchy, categories and sanitizing."""

from __future__ import annotations

import pytest

from custom_components.ha_ingestion.client import (
    ErrorCategory,
    HaAuthenticationError,
    HaClientError,
    HaCommandError,
    HaConnectionClosedError,
    HaConnectionError,
    HaHeartbeatTimeoutError,
    HaNotHomeAssistantError,
    HaProtocolError,
    HaServiceUnavailableError,
    HaSSLError,
    HaSubscriptionError,
    HaTimeoutError,
    sanitize,
)
from custom_components.ha_ingestion.client.errors import REDACTED

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJhYmMxMjMiLCJpYXQiOjE3MDAwMDAwMDB9."
    "Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seQ"
)


@pytest.mark.parametrize(
    ("cls", "category"),
    [
        (HaClientError, ErrorCategory.PROTOCOL),
        (HaConnectionError, ErrorCategory.NETWORK),
        (HaSSLError, ErrorCategory.NETWORK),
        (HaConnectionClosedError, ErrorCategory.NETWORK),
        (HaAuthenticationError, ErrorCategory.AUTHENTICATION),
        (HaSubscriptionError, ErrorCategory.SUBSCRIPTION),
        (HaProtocolError, ErrorCategory.PROTOCOL),
        (HaNotHomeAssistantError, ErrorCategory.PROTOCOL),
        (HaServiceUnavailableError, ErrorCategory.SERVICE),
        (HaTimeoutError, ErrorCategory.TIMEOUT),
        (HaHeartbeatTimeoutError, ErrorCategory.TIMEOUT),
    ],
)
def test_categories(cls: type[HaClientError], category: ErrorCategory) -> None:
    assert cls.category is category
    assert issubclass(cls, HaClientError)
    assert cls("x").category is category


def test_hierarchy() -> None:
    assert issubclass(HaSSLError, HaConnectionError)
    assert issubclass(HaConnectionClosedError, HaConnectionError)
    assert issubclass(HaNotHomeAssistantError, HaProtocolError)
    assert issubclass(HaCommandError, HaProtocolError)
    assert issubclass(HaHeartbeatTimeoutError, HaTimeoutError)
    assert {c.value for c in ErrorCategory} == {
        "network",
        "authentication",
        "forbidden",
        "subscription",
        "protocol",
        "service",
        "timeout",
    }


def test_command_error_keeps_code_and_message() -> None:
    err = HaCommandError("unknown_command", "Unknown command.")
    assert err.code == "unknown_command"
    assert err.message == "Unknown command."
    assert str(err) == "unknown_command: Unknown command."
    assert err.category is ErrorCategory.PROTOCOL


def test_sanitize_given_secret() -> None:
    out = sanitize("token s3cr3t-value rejected; again s3cr3t-value", ("s3cr3t-value",))
    assert "s3cr3t-value" not in out
    assert out.count(REDACTED) == 2


def test_sanitize_empty_secret_ignored() -> None:
    assert sanitize("nothing to hide", ("",)) == "nothing to hide"


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("cannot connect to wss://admin:hunter2@example.org:8123/api/websocket", "hunter2"),
        ("cannot connect to ws://user@10.0.0.2/api/websocket", "user@"),
        ("GET https://h.example/api/websocket?access_token=abc.def-ghi&x=1", "abc.def-ghi"),
        ("GET /auth?token=zzz999 failed", "zzz999"),
        ("header Authorization: Bearer abcDEF123._~+/= was rejected", "abcDEF123"),
        ("header authorization: bearer lowercase-token", "lowercase-token"),
        (f"rejected {JWT} because", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"),
    ],
)
def test_sanitize_patterns(message: str, secret: str) -> None:
    out = sanitize(message)
    assert secret not in out
    assert REDACTED in out


def test_sanitize_keeps_the_rest() -> None:
    out = sanitize("cannot connect to wss://a:b@example.org:8123/api/websocket: refused")
    assert out == f"cannot connect to wss://{REDACTED}@example.org:8123/api/websocket: refused"
    assert sanitize(f"x access_token={JWT}&y=2") == f"x access_token={REDACTED}&y=2"
    assert sanitize("plain ws://127.0.0.1:8123/api/websocket") == (
        "plain ws://127.0.0.1:8123/api/websocket"
    )


def test_sanitize_jwt_given_as_secret_and_embedded() -> None:
    out = sanitize(f"token {JWT} and prefix{JWT}suffix", (JWT,))
    assert JWT not in out
    assert "eyJ" not in out
