"""One exception hierarchy for the client, each class carrying an error category."""

from __future__ import annotations

from enum import StrEnum
import re
from typing import ClassVar


class ErrorCategory(StrEnum):
    """What kind of failure broke (or prevented) a link."""

    NETWORK = "network"
    AUTHENTICATION = "authentication"
    FORBIDDEN = "forbidden"
    SUBSCRIPTION = "subscription"
    PROTOCOL = "protocol"
    SERVICE = "service"
    TIMEOUT = "timeout"


class HaClientError(Exception):
    """Base of every error the client raises."""

    category: ClassVar[ErrorCategory] = ErrorCategory.PROTOCOL


class HaConnectionError(HaClientError):
    """The network failed: refused, reset, unreachable, closed by the peer."""

    category = ErrorCategory.NETWORK


class HaSSLError(HaConnectionError):
    """The TLS handshake failed (certificate not trusted, hostname mismatch, ...)."""


class HaConnectionRefusedError(HaConnectionError):
    """Nothing listens on the remote's port (refused, or no route): it is down or restarting.

    Costs the remote nothing, so it does not count against the circuit breaker.
    """


class HaConnectionClosedError(HaConnectionError):
    """An established link was closed or lost."""


class HaRemoteGoingAwayError(HaConnectionClosedError):
    """The remote closed the link in an orderly way (close code 1000/1001): it is shutting down."""


class HaAuthenticationError(HaClientError):
    """The remote rejected the access token (auth_invalid, HTTP 401)."""

    category = ErrorCategory.AUTHENTICATION


class HaForbiddenError(HaClientError):
    """HTTP 403 at the upgrade: an IP ban on the remote or a proxy rule, not a bad token.

    Retried with backoff (a ban can be lifted, a proxy fixed); a new token cannot help.
    """

    category = ErrorCategory.FORBIDDEN


class HaSubscriptionError(HaClientError):
    """The remote refused an event subscription."""

    category = ErrorCategory.SUBSCRIPTION


class HaUnsupportedCommandError(HaSubscriptionError):
    """The remote does not know the command (`unknown_command`): an older or a stripped remote."""


class HaProtocolError(HaClientError):
    """The remote spoke something other than the expected protocol."""

    category = ErrorCategory.PROTOCOL


class HaMessageTooBigError(HaProtocolError):
    """A message above the configured `max_msg_size` arrived (the link ends with it)."""


class HaNotHomeAssistantError(HaProtocolError):
    """The URL answers, but not with a Home Assistant WebSocket API (HTTP 404, no upgrade, ...)."""


class HaCommandError(HaProtocolError):
    """A command was answered with an error result."""

    def __init__(self, code: str, message: str) -> None:
        """Keep the remote's error code and message."""
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HaServiceUnavailableError(HaClientError):
    """The remote answered but is not ready (HTTP 502/503/504 during a restart)."""

    category = ErrorCategory.SERVICE


class HaTimeoutError(HaClientError):
    """The remote did not answer in time."""

    category = ErrorCategory.TIMEOUT


class HaHeartbeatTimeoutError(HaTimeoutError):
    """No sign of life after a ping: the link is dead (frozen host, black-holed network)."""


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_TOKEN_PARAM = re.compile(r"(?i)((?:access_)?token=)[^&\s]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")
REDACTED = "**REDACTED**"


def sanitize(message: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove secrets from a message: given secrets, URL credentials, tokens, bearer values, JWTs."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, REDACTED)
    message = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", message)
    message = _TOKEN_PARAM.sub(rf"\g<1>{REDACTED}", message)
    message = _BEARER.sub(rf"\g<1>{REDACTED}", message)
    return _JWT.sub(REDACTED, message)
