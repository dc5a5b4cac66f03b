"""HA-free client for the Home Assistant WebSocket API: one resilient, observable link.

Imports nothing from `homeassistant`; it could be published as a library of its own.
"""

from .backoff import Backoff
from .breaker import CircuitBreaker
from .entities import EntitiesUpdate, EntityFilter, EntityStates, RemoteState, compress_state
from .errors import (
    ErrorCategory,
    HaAuthenticationError,
    HaClientError,
    HaCommandError,
    HaConnectionClosedError,
    HaConnectionError,
    HaConnectionRefusedError,
    HaForbiddenError,
    HaHeartbeatTimeoutError,
    HaMessageTooBigError,
    HaNotHomeAssistantError,
    HaProtocolError,
    HaRemoteGoingAwayError,
    HaServiceUnavailableError,
    HaSSLError,
    HaSubscriptionError,
    HaTimeoutError,
    HaUnsupportedCommandError,
    sanitize,
)
from .models import (
    BackoffConfig,
    BreakerConfig,
    BreakerSnapshot,
    BreakerState,
    ConnectionConfig,
    ErrorRecord,
    LinkSnapshot,
    LinkState,
    RemoteInfo,
    SubscriptionStatus,
    SupervisorConfig,
    WaitReason,
)
from .probe import ProbeResult, tcp_probe
from .protocol import HaWebSocketSession
from .supervisor import Supervisor

__all__ = [
    "Backoff",
    "BackoffConfig",
    "BreakerConfig",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "ConnectionConfig",
    "EntitiesUpdate",
    "EntityFilter",
    "EntityStates",
    "ErrorCategory",
    "ErrorRecord",
    "HaAuthenticationError",
    "HaClientError",
    "HaCommandError",
    "HaConnectionClosedError",
    "HaConnectionError",
    "HaConnectionRefusedError",
    "HaForbiddenError",
    "HaHeartbeatTimeoutError",
    "HaMessageTooBigError",
    "HaNotHomeAssistantError",
    "HaProtocolError",
    "HaRemoteGoingAwayError",
    "HaSSLError",
    "HaServiceUnavailableError",
    "HaSubscriptionError",
    "HaTimeoutError",
    "HaUnsupportedCommandError",
    "HaWebSocketSession",
    "LinkSnapshot",
    "LinkState",
    "ProbeResult",
    "RemoteInfo",
    "RemoteState",
    "SubscriptionStatus",
    "Supervisor",
    "SupervisorConfig",
    "WaitReason",
    "compress_state",
    "sanitize",
    "tcp_probe",
]
