"""The reconnect loop: keeps one link alive with backoff, a circuit breaker and confirmed resubscription."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
import contextlib
from datetime import UTC, datetime
import logging
import random
import time
from typing import Any

import aiohttp

from .backoff import Backoff
from .breaker import CircuitBreaker
from .errors import ErrorCategory, HaClientError, HaConnectionClosedError, sanitize
from .models import (
    BreakerSnapshot,
    ErrorRecord,
    LinkSnapshot,
    LinkState,
    RemoteInfo,
    SubscriptionStatus,
    SupervisorConfig,
)
from .protocol import EventCallback, HaWebSocketSession

_LOGGER = logging.getLogger(__name__)

type SnapshotListener = Callable[[LinkSnapshot], None]
type Sleep = Callable[[float], Awaitable[None]]
type SessionFactory = Callable[..., HaWebSocketSession]


def _to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class Supervisor:
    """Owns the link to one remote: connects, resubscribes, detects loss and retries by policy.

    Everything time-related is injectable: `clock` (monotonic seconds), `wall` (epoch seconds),
    `sleep` (awaitable delay) and `rng` (jitter), so tests run through any backoff in milliseconds.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        config: SupervisorConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], float] | None = None,
        sleep: Sleep = asyncio.sleep,
        session_factory: SessionFactory = HaWebSocketSession,
        logger: logging.Logger = _LOGGER,
    ) -> None:
        """Prepare the supervisor; `start()` begins connecting."""
        self._http = http
        self._rng = rng
        # Looked up at call time (not bound at import), so time-freezing tools reach them too.
        self._clock = clock or (lambda: time.monotonic())
        self._wall = wall or (lambda: time.time())
        self._sleep = sleep
        self._session_factory = session_factory
        self._log = logger
        self._listeners: list[SnapshotListener] = []
        self._event_listeners: list[EventCallback] = []
        self._task: asyncio.Task[None] | None = None
        self._session: HaWebSocketSession | None = None
        self._wake = asyncio.Event()
        self._skip_delay = False
        self._closing = False
        self._configure(config)
        self._reset_metrics()

    # ------------------------------------------------------------------ configuration

    def _configure(self, config: SupervisorConfig) -> None:
        self._config = config
        self._backoff = Backoff(config.backoff, self._rng)
        self._breaker = CircuitBreaker(config.breaker, self._clock)
        self._errors: deque[ErrorRecord] = deque(maxlen=config.error_history_size)
        self._subscriptions: dict[str, int | None] = dict.fromkeys(config.connection.event_types)

    @property
    def config(self) -> SupervisorConfig:
        """Current configuration."""
        return self._config

    @config.setter
    def config(self, config: SupervisorConfig) -> None:
        """Change the configuration between runs."""
        if self.running:
            raise RuntimeError("stop the supervisor before changing its configuration")
        errors = self._errors
        self._configure(config)
        self._errors.extend(errors)

    @property
    def running(self) -> bool:
        """The reconnect loop is running."""
        return self._task is not None and not self._task.done()

    def _reset_metrics(self) -> None:
        self._state = LinkState.DISCONNECTED
        self._attempt = 0  # backoff exponent: reset only after a stable link
        self._attempts_total = 0
        self._successful = 0
        self._failed = 0
        self._reconnect_count = 0
        self._current_backoff: float | None = None
        self._next_attempt: float | None = None
        self._last_connected: float | None = None
        self._last_disconnected: float | None = None
        self._last_failed: float | None = None
        self._started_at: float | None = None
        self._connected_since: float | None = None
        self._connected_total = 0.0
        self._lost_at: float | None = None
        self._reconnect_time_total = 0.0
        self._reconnect_time_count = 0
        self._events_total = 0
        self._events_by_type: dict[str, int] = {}
        self._last_event: float | None = None
        self._remote: RemoteInfo | None = None
        self._last_ping_rtt: float | None = None
        self._last_logged: tuple[str, str] | None = None

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: SnapshotListener) -> Callable[[], None]:
        """Call `listener(snapshot)` on every state or schedule change; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add_event_listener(self, listener: EventCallback) -> Callable[[], None]:
        """Call `listener(event)` for each remote event, from the reader: it must be cheap."""
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    def _notify(self) -> None:
        if not self._listeners:
            return
        snapshot = self.snapshot()
        for listener in tuple(self._listeners):
            try:
                listener(snapshot)
            except Exception:  # noqa: BLE001 - one broken listener must not stop the others
                self._log.exception("Error in link state listener")

    def _set_state(self, state: LinkState) -> None:
        self._state = state
        self._notify()

    # ------------------------------------------------------------------ control

    @property
    def state(self) -> LinkState:
        """Current link state."""
        return self._state

    async def start(self) -> None:
        """Start connecting in the background (idempotent)."""
        if self.running:
            return
        self._closing = False
        self._started_at = self._clock()
        self._task = asyncio.create_task(self._run(), name="ha_ingestion supervisor")

    async def reconnect(self) -> None:
        """Make an attempt now: resets the breaker, the backoff and a `failed` link."""
        self._breaker.reset()
        self._attempt = 0
        self._skip_delay = True
        if self._state is LinkState.FAILED:
            self._set_state(LinkState.RECONNECTING)
        if not self.running:
            await self.start()
            return
        self._wake.set()
        if self._session is not None and self._state is LinkState.CONNECTED:
            await self._session.close()

    async def close(self) -> None:
        """Stop: close the link and cancel every task this supervisor started."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._connected_since is not None:
            self._connected_total += self._clock() - self._connected_since
            self._connected_since = None
            self._last_disconnected = self._wall()
        self._mark_unconfirmed()
        self._current_backoff = self._next_attempt = None
        self._set_state(LinkState.DISCONNECTED)

    async def command(self, payload: dict[str, Any], time_limit: float | None = None) -> Any:
        """Run a command on the current link (for callers such as history backfill)."""
        session = self._session
        if session is None or self._state is not LinkState.CONNECTED:
            raise HaConnectionClosedError("not connected")
        return await session.command(payload, time_limit)

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while not self._closing:
            if self._state is LinkState.FAILED:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._breaker.try_acquire():
                await self._pause(self._breaker.retry_in())
                continue
            self._skip_delay = False
            delay = await self._attempt_once()
            if delay is not None and not self._closing:
                await self._pause(delay)

    async def _attempt_once(self) -> float | None:
        """One connection attempt, and the life of the link if it succeeds; return the next delay."""
        if self._state is not LinkState.RECONNECTING:
            self._set_state(LinkState.RECONNECTING if self._successful else LinkState.CONNECTING)
        self._attempts_total += 1
        session = self._session_factory(
            self._http,
            self._config.connection,
            on_event=self._on_event,
            on_unknown=self._on_unknown,
            clock=self._clock,
        )
        self._session = session
        try:
            remote = await session.connect()
            for event_type in self._subscriptions:
                self._subscriptions[event_type] = await session.subscribe_events(event_type)
        except HaClientError as err:
            await session.close()
            self._session = None
            self._mark_unconfirmed()
            return self._attempt_failed(err)
        except BaseException:
            self._breaker.release()  # a cancelled probe must not hold the half-open breaker
            await session.close()
            self._session = None
            raise
        self._connected(remote)
        reason = await session.wait_closed()
        self._last_ping_rtt = session.last_ping_rtt
        self._session = None
        return self._lost(reason)

    def _attempt_failed(self, err: HaClientError) -> float | None:
        now = self._wall()
        self._failed += 1
        self._last_failed = now
        self._breaker.record_failure()
        record = self._record(err, now)
        if err.category is ErrorCategory.AUTHENTICATION:
            self._log.error(
                "Authentication to %s failed (%s): not retrying until the token is replaced",
                self._target(),
                record.message,
            )
            self._set_state(LinkState.FAILED)
            return None
        limit = self._config.max_attempts
        failures = self._breaker.consecutive_failures
        if limit and failures >= limit:
            self._log.warning(
                "Giving up on %s after %d failed attempts (%s); reconnect to try again",
                self._target(),
                failures,
                record.message,
            )
            self._set_state(LinkState.FAILED)
            return None
        delay = self._next_delay()
        self._log_failure(record, failures, delay)
        self._set_state(LinkState.RECONNECTING)
        return delay

    def _connected(self, remote: RemoteInfo) -> None:
        now = self._clock()
        self._breaker.record_success()
        self._successful += 1
        self._remote = remote
        self._connected_since = now
        self._last_connected = self._wall()
        if self._lost_at is not None:
            elapsed = now - self._lost_at
            self._reconnect_time_total += elapsed
            self._reconnect_time_count += 1
            self._reconnect_count += 1
            self._lost_at = None
            self._log.info("Link to %s restored after %.1f s", self._target(), elapsed)
        else:
            self._log.info("Link to %s established", self._target())
        self._last_logged = None
        self._set_state(LinkState.CONNECTED)

    def _lost(self, err: HaClientError) -> float | None:
        now = self._clock()
        since = self._connected_since
        self._connected_since = None
        if since is not None:
            self._connected_total += now - since
            if now - since >= self._config.stability_window:
                self._attempt = 0
        self._lost_at = now
        self._last_disconnected = self._wall()
        self._mark_unconfirmed()
        if self._closing:
            return None
        record = self._record(err, self._last_disconnected)
        delay = self._next_delay()
        self._log.info(
            "Link to %s lost (%s: %s); reconnecting",
            self._target(),
            record.category,
            record.message,
        )
        self._set_state(LinkState.RECONNECTING)
        return delay

    def _next_delay(self) -> float:
        if self._skip_delay:
            return 0.0
        delay = self._backoff.delay(self._attempt)
        self._attempt += 1
        return delay

    async def _pause(self, delay: float) -> None:
        """Wait `delay` seconds, or until `reconnect()` asks for an attempt now."""
        if self._skip_delay:
            self._skip_delay = False
            return
        self._current_backoff = delay
        self._next_attempt = self._wall() + delay
        self._notify()
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            self._current_backoff = self._next_attempt = None

    # ------------------------------------------------------------------ events and errors

    def _on_event(self, event: dict[str, Any]) -> None:
        self._events_total += 1
        event_type: str = event.get("event_type", "")
        if type(event_type) is not str:  # an unhashable type must not end the reader
            event_type = ""
        by_type = self._events_by_type
        by_type[event_type] = by_type.get(event_type, 0) + 1
        self._last_event = self._wall()
        for listener in self._event_listeners:
            listener(event)

    def _on_unknown(self, err: HaClientError) -> None:
        self._record(err, self._wall())
        self._log.debug("%s", err)

    def _record(self, err: HaClientError, when: float) -> ErrorRecord:
        record = ErrorRecord(
            time=datetime.fromtimestamp(when, UTC),
            category=err.category,
            type=type(err).__name__,
            message=sanitize(str(err), (self._config.connection.token,)),
        )
        self._errors.append(record)
        return record

    def _log_failure(self, record: ErrorRecord, failures: int, delay: float) -> None:
        key = (record.type, record.message)
        level = logging.DEBUG if key == self._last_logged else logging.INFO
        self._last_logged = key
        if not self._log.isEnabledFor(level):
            return  # a flapping link would otherwise format (and sanitize) every attempt
        self._log.log(
            level,
            "Cannot reach %s (%s: %s); attempt %d failed, next in %.1f s",
            self._target(),
            record.category,
            record.message,
            failures,
            delay,
        )

    def _target(self) -> str:
        if self._remote is not None:
            return self._remote.location_name
        return sanitize(self._config.connection.url)

    def _mark_unconfirmed(self) -> None:
        for event_type in self._subscriptions:
            self._subscriptions[event_type] = None

    # ------------------------------------------------------------------ metrics

    def snapshot(self) -> LinkSnapshot:
        """An immutable view of the link and every metric."""
        now = self._clock()
        breaker = self._breaker
        opened = breaker.opened_at
        wall_offset = self._wall() - now
        uptime: float | None = None
        if self._started_at is not None and now > self._started_at:
            connected = self._connected_total
            if self._connected_since is not None:
                connected += now - self._connected_since
            uptime = min(1.0, connected / (now - self._started_at))
        rtt = self._last_ping_rtt
        if self._session is not None and self._session.last_ping_rtt is not None:
            rtt = self._session.last_ping_rtt
        return LinkSnapshot(
            state=self._state,
            breaker=BreakerSnapshot(
                state=breaker.state,
                consecutive_failures=breaker.consecutive_failures,
                failure_threshold=breaker.config.failure_threshold,
                recovery_timeout=breaker.config.recovery_timeout,
                opened_at=_to_datetime(None if opened is None else opened + wall_offset),
                retry_at=_to_datetime(
                    None
                    if opened is None
                    else opened + breaker.config.recovery_timeout + wall_offset
                ),
                times_opened=breaker.times_opened,
            ),
            attempts_total=self._attempts_total,
            successful_connections=self._successful,
            failed_connections=self._failed,
            consecutive_failures=breaker.consecutive_failures,
            reconnect_count=self._reconnect_count,
            current_backoff=self._current_backoff,
            next_attempt=_to_datetime(self._next_attempt),
            last_connected=_to_datetime(self._last_connected),
            last_disconnected=_to_datetime(self._last_disconnected),
            last_failed=_to_datetime(self._last_failed),
            uptime_ratio=uptime,
            average_reconnect_time=(
                self._reconnect_time_total / self._reconnect_time_count
                if self._reconnect_time_count
                else None
            ),
            reconnect_success_rate=(
                self._successful / self._attempts_total if self._attempts_total else None
            ),
            last_ping_rtt=rtt,
            events_received=self._events_total,
            events_by_type=dict(self._events_by_type),
            last_event_time=_to_datetime(self._last_event),
            remote=self._remote,
            subscriptions=tuple(
                SubscriptionStatus(
                    event_type=event_type, confirmed=sub_id is not None, subscription_id=sub_id
                )
                for event_type, sub_id in self._subscriptions.items()
            ),
            last_error=self._errors[-1] if self._errors else None,
            errors=tuple(self._errors),
            max_attempts=self._config.max_attempts,
        )
