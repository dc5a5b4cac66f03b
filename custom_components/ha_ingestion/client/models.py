"""Frozen data models: configuration, remote identity, link metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .entities import EntityFilter
from .errors import ErrorCategory
from .probe import ProbeResult
from .token_gate import TokenGate

DEFAULT_EVENT_TYPES: tuple[str, ...] = ("state_changed",)


class LinkState(StrEnum):
    """State of the supervised link."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


class WaitReason(StrEnum):
    """Why the engine is waiting before its next attempt."""

    BACKOFF = "backoff"  # the retry delay after a failure or a loss
    BREAKER = "breaker"  # the circuit breaker is open
    REMOTE_BACK = "remote_back"  # a probe found the remote listening again: short jittered delay


class BreakerState(StrEnum):
    """State of the circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, kw_only=True)
class ConnectionConfig:
    """How to reach and talk to one remote Home Assistant."""

    url: str
    token: str = field(repr=False)
    verify_ssl: bool = True
    max_msg_size: int = 16 * 1024 * 1024
    connect_timeout: float = 20.0
    command_timeout: float = 30.0
    heartbeat_interval: float = 30.0
    heartbeat_timeout: float = 10.0
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    # The token's gate, shared by every connection sending this token (None: this session alone
    # decides, e.g. a token the user just typed). Copies of this config share it.
    token_gate: TokenGate | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Reject values that cannot work."""
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError("url must start with ws:// or wss://")
        if self.token_gate is not None and not self.token_gate.matches(self.token):
            raise ValueError("token_gate belongs to another token")
        _positive(
            connect_timeout=self.connect_timeout,
            command_timeout=self.command_timeout,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_timeout=self.heartbeat_timeout,
            max_msg_size=self.max_msg_size,
        )
        if not self.event_types or any(not t for t in self.event_types):
            raise ValueError("event_types must name at least one event type")


@dataclass(frozen=True, kw_only=True)
class BackoffConfig:
    """Exponential backoff: delay = U(0, min(max_delay, base * multiplier**n)) with jitter."""

    base: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True

    def __post_init__(self) -> None:
        """Reject values that cannot work."""
        _positive(base=self.base, max_delay=self.max_delay)
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.base > self.max_delay:
            raise ValueError("base must not exceed max_delay")


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """Consecutive-failure circuit breaker."""

    failure_threshold: int = 5
    recovery_timeout: float = 60.0

    def __post_init__(self) -> None:
        """Reject values that cannot work."""
        _positive(failure_threshold=self.failure_threshold, recovery_timeout=self.recovery_timeout)


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Everything the engine needs."""

    connection: ConnectionConfig
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    max_attempts: int = 0
    stability_window: float = 30.0
    error_history_size: int = 50
    # While waiting after a refused connect or a lost link: one TCP readiness probe per interval
    # (0 = never probe). When the port answers again the attempt follows after U(0, spread)
    # (at once without jitter) instead of at the end of the wait.
    probe_interval: float = 0.5
    reconnect_spread: float = 9.0
    # Mirror entities: a `subscribe_entities` subscription with this filter on every connection,
    # confirmed like the event subscriptions (None: no such subscription).
    entities: EntityFilter | None = None

    def __post_init__(self) -> None:
        """Reject values that cannot work."""
        if self.max_attempts < 0:
            raise ValueError("max_attempts must be 0 (unlimited) or more")
        if self.probe_interval < 0 or self.reconnect_spread < 0:
            raise ValueError("probe_interval and reconnect_spread must not be negative")
        if self.stability_window < 0:
            raise ValueError("stability_window must not be negative")
        _positive(error_history_size=self.error_history_size)


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be greater than 0")


@dataclass(frozen=True, kw_only=True)
class RemoteInfo:
    """Who the remote is, from get_config and auth/current_user."""

    location_name: str
    version: str
    user_id: str | None = None
    time_zone: str | None = None
    external_url: str | None = None
    internal_url: str | None = None

    @classmethod
    def from_messages(cls, config: dict[str, Any], user: dict[str, Any] | None) -> RemoteInfo:
        """Build from the results of get_config and auth/current_user."""
        return cls(
            location_name=str(config.get("location_name") or "Home Assistant"),
            version=str(config.get("version") or "unknown"),
            user_id=str(user["id"]) if user and user.get("id") else None,
            time_zone=config.get("time_zone"),
            external_url=config.get("external_url"),
            internal_url=config.get("internal_url"),
        )


@dataclass(frozen=True, kw_only=True)
class ErrorRecord:
    """One failure in the bounded error history; the message is sanitized."""

    time: datetime
    category: ErrorCategory
    type: str
    message: str


@dataclass(frozen=True, kw_only=True)
class SubscriptionStatus:
    """One event subscription and whether the remote confirmed it on the current connection."""

    event_type: str
    confirmed: bool
    subscription_id: int | None = None
    # The remote's answer when it refused this subscription on the last connection.
    refused: str | None = None
    # The remote does not know the command at all (`unknown_command`).
    unsupported: bool = False


@dataclass(frozen=True, kw_only=True)
class BreakerSnapshot:
    """Observable state of the circuit breaker."""

    state: BreakerState
    consecutive_failures: int
    failure_threshold: int
    recovery_timeout: float
    opened_at: datetime | None
    retry_at: datetime | None
    times_opened: int


@dataclass(frozen=True, kw_only=True)
class LinkSnapshot:
    """Immutable view of the link and its metrics at one moment."""

    state: LinkState
    breaker: BreakerSnapshot
    attempts_total: int
    successful_connections: int
    failed_connections: int
    consecutive_failures: int
    reconnect_count: int
    current_backoff: float | None
    next_attempt: datetime | None
    last_connected: datetime | None
    last_disconnected: datetime | None
    last_failed: datetime | None
    uptime_ratio: float | None
    average_reconnect_time: float | None
    reconnect_success_rate: float | None
    last_ping_rtt: float | None
    events_received: int
    events_by_type: dict[str, int]
    last_event_time: datetime | None
    remote: RemoteInfo | None
    subscriptions: tuple[SubscriptionStatus, ...]
    last_error: ErrorRecord | None
    errors: tuple[ErrorRecord, ...]
    max_attempts: int
    # Why the engine waits now (None while not waiting) and the readiness probes so far.
    waiting_for: WaitReason | None = None
    # An attempt in progress: when it began and when the connect timeout ends it.
    attempt_started: datetime | None = None
    attempt_deadline: datetime | None = None
    probes_total: int = 0
    last_probe: ProbeResult | None = None
    # The `subscribe_entities` subscription (event_type "subscribe_entities"), when configured,
    # and the parts of its messages skipped as malformed.
    entities: SubscriptionStatus | None = None
    entity_problems: int = 0
    # The remote's last sign of life: the last frame received on the link (while connected),
    # or on the lost one (while down: the start of the outage). None before any connection.
    last_seen: datetime | None = None

    @property
    def connected(self) -> bool:
        """Authenticated and every subscription the remote accepted confirmed."""
        return self.state is LinkState.CONNECTED

    @property
    def attempting(self) -> bool:
        """A connection attempt is in progress."""
        return self.attempt_started is not None

    @property
    def subscriptions_confirmed(self) -> bool:
        """Every configured subscription is confirmed on the current connection."""
        return bool(self.subscriptions) and all(s.confirmed for s in self.subscriptions)

    @property
    def refused_subscriptions(self) -> tuple[str, ...]:
        """Event types the remote refused on the last connection (the link is up without them)."""
        return tuple(s.event_type for s in self.subscriptions if s.refused is not None)


# The outage's figures are rounded once, here: the sensor and the log show the same digits.
OUTAGE_DIGITS = 1


def _seconds(later: datetime, earlier: datetime) -> float:
    return round(max(0.0, (later - earlier).total_seconds()), OUTAGE_DIGITS)


@dataclass(frozen=True, kw_only=True)
class Outage:
    """One outage of the link, in the one meaning users see (the Last outage sensor, the log).

    It lasts from the remote's last sign of life (`last_seen`: the last frame received on the
    link before it was lost) to the link's return (`back`: connected again, subscriptions
    confirmed). Within it, `detection` is the silence before the loss was noticed (`detected`);
    after it, `recovery` is the time until the outage's data was recovered (`recovered`; None
    while it is being recovered). Seconds, rounded to `OUTAGE_DIGITS`.
    """

    last_seen: datetime
    detected: datetime
    back: datetime
    recovered: datetime | None = None

    @property
    def length(self) -> float:
        """From the last sign of life to the link's return (s)."""
        return _seconds(self.back, self.last_seen)

    @property
    def detection(self) -> float:
        """From the last sign of life to the loss detected (s)."""
        return _seconds(self.detected, self.last_seen)

    @property
    def recovery(self) -> float | None:
        """From the link's return to its data recovered (s); None while not yet."""
        return None if self.recovered is None else _seconds(self.recovered, self.back)

    def figures(self) -> dict[str, Any]:
        """Start and end (ISO, ms), detection and recovery (s; None while not yet)."""
        return {
            "start": _clock_time(self.last_seen),
            "end": _clock_time(self.back),
            "detection": self.detection,
            "recovery": self.recovery,
        }

    def describe(self) -> str:
        """The log's wording, with the sensor's numbers (its value and attributes)."""
        f = self.figures()
        text = (
            f"outage {self.length:.{OUTAGE_DIGITS}f} s (from the last message received at "
            f"{f['start']} to the link's return at {f['end']}), "
            f"detection {f['detection']:.{OUTAGE_DIGITS}f} s"
        )
        if f["recovery"] is not None:
            text += f", recovery {f['recovery']:.{OUTAGE_DIGITS}f} s"
        return text


def _clock_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
