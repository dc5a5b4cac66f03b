"""The link's accounting (counters, times, the error history) and its snapshot, assembled."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .breaker import CircuitBreaker
from .errors import HaClientError, sanitize
from .models import (
    BreakerSnapshot,
    EngineConfig,
    ErrorRecord,
    LinkSnapshot,
    LinkState,
    RemoteInfo,
)
from .protocol import HaWebSocketSession
from .retry import RetryPolicy
from .subscriptions import Subscriptions


def _to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(eq=False)
class LinkMetrics:
    """What happened to the link so far; monotonic times unless named `last_*` (epoch)."""

    config: EngineConfig
    errors: deque[ErrorRecord] = field(init=False)
    attempts_total: int = 0
    successful: int = 0
    failed: int = 0
    reconnect_count: int = 0
    last_connected: float | None = None
    last_disconnected: float | None = None
    last_failed: float | None = None
    # The last frame received on the last lost (or closed) connection: the remote's last sign
    # of life before the loss.
    last_seen: float | None = None
    started_at: float | None = None
    connected_since: float | None = None
    connected_total: float = 0.0
    lost_at: float | None = None
    reconnect_time_total: float = 0.0
    reconnect_time_count: int = 0
    events_total: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    last_event: float | None = None
    remote: RemoteInfo | None = None
    last_ping_rtt: float | None = None

    def __post_init__(self) -> None:
        """Start an empty error history."""
        self.errors = deque(maxlen=self.config.error_history_size)

    def configure(self, config: EngineConfig) -> None:
        """Take a new configuration; the error history is kept (up to its new size)."""
        errors = self.errors
        self.config = config
        self.errors = deque(maxlen=config.error_history_size)
        self.errors.extend(errors)

    def record(self, err: HaClientError, when: float) -> ErrorRecord:
        """Keep `err` (at epoch `when`) in the history, the token never in its message."""
        record = ErrorRecord(
            time=datetime.fromtimestamp(when, UTC),
            category=err.category,
            type=type(err).__name__,
            message=sanitize(str(err), (self.config.connection.token,)),
        )
        self.errors.append(record)
        return record

    def count_event(self, event: dict[str, Any], when: float) -> None:
        """Count a remote event (received at epoch `when`) and its type."""
        self.events_total += 1
        event_type: str = event.get("event_type", "")
        if type(event_type) is not str:  # an unhashable type must not end the reader
            event_type = ""
        by_type = self.events_by_type
        by_type[event_type] = by_type.get(event_type, 0) + 1
        self.last_event = when


def _breaker_snapshot(breaker: CircuitBreaker, wall_offset: float) -> BreakerSnapshot:
    opened = breaker.opened_at
    return BreakerSnapshot(
        state=breaker.state,
        consecutive_failures=breaker.consecutive_failures,
        failure_threshold=breaker.config.failure_threshold,
        recovery_timeout=breaker.config.recovery_timeout,
        opened_at=_to_datetime(None if opened is None else opened + wall_offset),
        retry_at=_to_datetime(
            None if opened is None else opened + breaker.config.recovery_timeout + wall_offset
        ),
        times_opened=breaker.times_opened,
    )


def build_snapshot(
    *,
    now: float,
    wall: float,
    state: LinkState,
    metrics: LinkMetrics,
    retry: RetryPolicy,
    subscriptions: Subscriptions,
    session: HaWebSocketSession | None,
    consecutive: int,
    attempt_started: float | None,
) -> LinkSnapshot:
    """An immutable view of the link and every metric at monotonic `now` (epoch `wall`)."""
    m = metrics
    config = m.config
    wall_offset = wall - now
    uptime: float | None = None
    if m.started_at is not None and now > m.started_at:
        connected = m.connected_total
        if m.connected_since is not None:
            connected += now - m.connected_since
        uptime = min(1.0, connected / (now - m.started_at))
    rtt = m.last_ping_rtt
    if session is not None and session.last_ping_rtt is not None:
        rtt = session.last_ping_rtt
    if state is not LinkState.CONNECTED:
        rtt = None  # a dead link's last round trip says nothing about now
    last_seen = m.last_seen
    if state is LinkState.CONNECTED and session is not None:
        last_seen = wall - session.silence
    return LinkSnapshot(
        state=state,
        breaker=_breaker_snapshot(retry.breaker, wall_offset),
        attempts_total=m.attempts_total,
        successful_connections=m.successful,
        failed_connections=m.failed,
        consecutive_failures=consecutive,
        reconnect_count=m.reconnect_count,
        current_backoff=retry.current_backoff,
        next_attempt=_to_datetime(retry.next_attempt),
        last_connected=_to_datetime(m.last_connected),
        last_disconnected=_to_datetime(m.last_disconnected),
        last_failed=_to_datetime(m.last_failed),
        last_seen=_to_datetime(last_seen),
        uptime_ratio=uptime,
        average_reconnect_time=(
            m.reconnect_time_total / m.reconnect_time_count if m.reconnect_time_count else None
        ),
        reconnect_success_rate=(m.successful / m.attempts_total if m.attempts_total else None),
        last_ping_rtt=rtt,
        events_received=m.events_total,
        events_by_type=dict(m.events_by_type),
        last_event_time=_to_datetime(m.last_event),
        remote=m.remote,
        subscriptions=subscriptions.statuses(),
        last_error=m.errors[-1] if m.errors else None,
        errors=tuple(m.errors),
        max_attempts=config.max_attempts,
        waiting_for=retry.waiting_for,
        attempt_started=_to_datetime(attempt_started),
        attempt_deadline=_to_datetime(
            None if attempt_started is None else attempt_started + config.connection.connect_timeout
        ),
        probes_total=retry.probes_total,
        last_probe=retry.last_probe,
        entities=subscriptions.entities_status(),
        entity_problems=subscriptions.entity_problems,
    )
