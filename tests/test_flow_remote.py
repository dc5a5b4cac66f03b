"""What the flows show for an engine error."""

from __future__ import annotations

import pytest

from custom_components.ha_ingestion.client import (
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
from custom_components.ha_ingestion.flow_remote import error_key

# ---------------------------------------------------------------------- normalize_url


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
