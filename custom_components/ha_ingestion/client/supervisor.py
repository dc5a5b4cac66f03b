"""The reconnect loop: keeps one link alive with backoff, a circuit breaker and confirmed resubscription."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
import logging
import random
import time
from typing import Any

import aiohttp

from .backoff import Backoff
from .breaker import CircuitBreaker
from .errors import (
    ErrorCategory,
    HaClientError,
    HaConnectionClosedError,
    HaConnectionRefusedError,
    HaRemoteGoingAwayError,
    sanitize,
)
from .models import (
    BreakerSnapshot,
    BreakerState,
    ErrorRecord,
    LinkSnapshot,
    LinkState,
    RemoteInfo,
    SupervisorConfig,
    WaitReason,
)
from .probe import Probe, ProbeResult, probe_target, tcp_probe
from .protocol import EventCallback, HaWebSocketSession
from .subscriptions import EntitiesListener, Subscriptions
from .tasks import TaskFactory, cancel_and_wait, create_task

_LOGGER = logging.getLogger(__name__)

type SnapshotListener = Callable[[LinkSnapshot], None]
type Sleep = Callable[[float], Awaitable[None]]
type SessionFactory = Callable[..., HaWebSocketSession]


def _to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class Supervisor:
    """Owns the link to one remote: connects, resubscribes, detects loss and retries by policy.

    Everything time-related is injectable: `clock` (monotonic seconds), `wall` (epoch seconds),
    `sleep` (awaitable delay), `rng` (jitter) and `probe` (the readiness probe), so tests run
    through any schedule in milliseconds.

    The reconnect policy: after a failure, wait the backoff delay; after `failure_threshold`
    failures in a row the breaker opens for `recovery_timeout`, then allows one probe attempt.
    A connect that found nothing listening (refused) costs the remote nothing and does not count
    against the breaker (it does count towards `max_attempts`). While waiting after a lost link or
    such a refusal, a TCP readiness probe runs every `probe_interval`; once the remote was seen
    not listening and listens again, the attempt comes after U(0, `reconnect_spread`) (so a herd
    of clients stays spread out) instead of at the end of the wait, and an open breaker goes
    half-open at once (still exactly one attempt; if it fails, the breaker opens again).
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
        probe: Probe = tcp_probe,
        task_factory: TaskFactory = create_task,
        logger: logging.Logger = _LOGGER,
    ) -> None:
        """Prepare the supervisor; `start()` begins connecting.

        `task_factory(coro, name)` starts the reconnect loop (a host such as Home Assistant passes
        its own, so the task is tracked there); it may be replaced before `start()`.
        """
        self.task_factory = task_factory
        self._http = http
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._probe = probe
        # Looked up at call time (not bound at import), so time-freezing tools reach them too.
        self._clock = clock or (lambda: time.monotonic())  # noqa: PLW0108
        self._wall = wall or (lambda: time.time())  # noqa: PLW0108
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
        self._subscriptions = Subscriptions(
            config,
            record=self._record,
            on_unknown=self._on_unknown,
            wall=self._wall,
            target=self._target,
            logger=logger,
        )

    # ------------------------------------------------------------------ configuration

    def _configure(self, config: SupervisorConfig) -> None:
        self._config = config
        self._backoff = Backoff(config.backoff, self._rng)
        self._breaker = CircuitBreaker(config.breaker, self._clock)
        self._errors: deque[ErrorRecord] = deque(maxlen=config.error_history_size)

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
        self._subscriptions.configure(config)

    @property
    def running(self) -> bool:
        """The reconnect loop is running."""
        return self._task is not None and not self._task.done()

    def _reset_metrics(self) -> None:
        self._state = LinkState.DISCONNECTED
        self._attempt = 0  # backoff exponent: reset only after a stable link
        self._consecutive = 0  # failed attempts in a row, refused ones included (max_attempts)
        self._watch = False  # probe while waiting: the link was lost, or nothing listened
        self._seen_down = False  # nothing listened (attempt or probe) since the last success
        self._remote_back = False  # a probe found it listening again: the attempt is scheduled
        self._waiting_for: WaitReason | None = None
        self._deadline = 0.0
        self._attempt_started: float | None = None
        self._probes_total = 0
        self._last_probe: ProbeResult | None = None
        self._probe_gap = 0.0  # between probes: the interval, doubled while the port stays open
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

    def add_entities_listener(self, listener: EntitiesListener) -> Callable[[], None]:
        """Call `listener(update)` for each `subscribe_entities` message, from the reader.

        Each connection's first update is `initial` (every matching remote state at that moment).
        """
        return self._subscriptions.add_entities_listener(listener)

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
        self._task = self.task_factory(self._run(), "ha_ingestion supervisor")

    def set_failed(self, error: HaClientError) -> None:
        """Be `failed` with `error` without any attempt (e.g. a token the remote rejected before).

        The loop, once started, waits in `failed` for `reconnect()` like after a real failure.
        """
        self._record(error, self._wall())
        self._log.warning("Not connecting to %s: %s", self._target(), sanitize(str(error)))
        self._set_state(LinkState.FAILED)

    async def reconnect(self) -> None:
        """Make an attempt now: resets the breaker, the backoff and a `failed` link.

        Does nothing once `close()` has begun: a close is final until `start()`.
        """
        if self._closing:
            return
        self._breaker.reset()
        self._attempt = 0
        self._consecutive = 0
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
        await cancel_and_wait(task)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._connected_since is not None:
            self._connected_total += self._clock() - self._connected_since
            self._connected_since = None
            self._last_disconnected = self._wall()
        self._subscriptions.mark_unconfirmed()
        self._current_backoff = self._next_attempt = self._waiting_for = None
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
                await self._pause(self._breaker.retry_in(), WaitReason.BREAKER)
                continue
            self._skip_delay = False
            delay = await self._attempt_once()
            if delay is not None and not self._closing:
                await self._pause(delay, WaitReason.BACKOFF)

    async def _attempt_once(self) -> float | None:
        """One connection attempt, and the life of the link if it succeeds; return the next delay."""
        self._attempts_total += 1
        self._remote_back = False
        self._attempt_started = self._wall()
        if self._breaker.state is BreakerState.HALF_OPEN:
            self._log.info("Circuit breaker for %s half-open: one probe attempt", self._target())
        # Published at once: an attempt in progress (up to the connect timeout) is visible.
        self._set_state(
            LinkState.RECONNECTING
            if self._successful or self._state is LinkState.RECONNECTING
            else LinkState.CONNECTING
        )
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
            await self._subscriptions.subscribe(session)
        except HaClientError as err:
            await session.close()
            self._session = None
            self._attempt_started = None
            self._subscriptions.mark_unconfirmed()
            return self._attempt_failed(err)
        except BaseException:
            self._breaker.release()  # a cancelled probe must not hold the half-open breaker
            self._attempt_started = None
            await session.close()
            self._session = None
            raise
        self._attempt_started = None
        self._connected(remote)
        reason = await session.wait_closed()
        self._subscriptions.check_entities_too_big(reason)
        self._last_ping_rtt = session.last_ping_rtt
        self._session = None
        return self._lost(reason)

    def _attempt_failed(self, err: HaClientError) -> float | None:
        now = self._wall()
        self._failed += 1
        self._consecutive += 1
        self._last_failed = now
        if isinstance(err, HaConnectionRefusedError):
            # Nothing listens: it cost the remote nothing, so it is no attempt against the breaker
            # (a half-open probe stays available for when it listens again).
            self._breaker.release()
            self._seen_down = self._watch = True
        else:
            opened, was = self._breaker.times_opened, self._breaker.state
            self._breaker.record_failure()
            if self._breaker.times_opened != opened:
                self._log.warning(
                    "Circuit breaker for %s open %s: no attempt for %g s (earlier if it is seen "
                    "restarting)",
                    self._target(),
                    "again, the probe attempt failed"
                    if was is BreakerState.HALF_OPEN
                    else f"after {self._breaker.consecutive_failures} failed attempts in a row",
                    self._breaker.config.recovery_timeout,
                )
            # A reset or closed connection may be a remote going down: keep watching its port.
            # Anything else (HTTP 502 from a proxy, timeouts, protocol errors) answered from an
            # open port, where probes can tell nothing: the backoff alone decides.
            self._watch = err.category is ErrorCategory.NETWORK
            self._seen_down = False
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
        failures = self._consecutive
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
        # The real next attempt: an open breaker holds it back beyond the backoff delay.
        self._log_failure(record, failures, max(delay, self._breaker.retry_in()))
        self._set_state(LinkState.RECONNECTING)
        return delay

    def _connected(self, remote: RemoteInfo) -> None:
        now = self._clock()
        if self._breaker.state is not BreakerState.CLOSED:
            self._log.info("Circuit breaker for %s closed", self._target())
        self._breaker.record_success()
        self._consecutive = 0
        self._watch = self._seen_down = False
        self._probe_gap = self._config.probe_interval
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
        self._subscriptions.mark_unconfirmed()
        if self._closing:
            return None
        record = self._record(err, self._last_disconnected)
        delay = self._next_delay()
        self._watch, self._seen_down = True, False
        self._log.info(
            "Link to %s lost (%s: %s); reconnecting%s",
            self._target(),
            record.category,
            record.message,
            " as soon as it is back" if isinstance(err, HaRemoteGoingAwayError) else "",
        )
        self._set_state(LinkState.RECONNECTING)
        return delay

    def _next_delay(self) -> float:
        if self._skip_delay:
            return 0.0
        delay = self._backoff.delay(self._attempt)
        self._attempt += 1
        return delay

    async def _pause(self, delay: float, reason: WaitReason) -> None:
        """Wait `delay` seconds (probing readiness if watching), or until `reconnect()` wakes us."""
        if self._skip_delay:
            self._skip_delay = False
            return
        self._wake.clear()
        self._schedule(delay, reason)
        interval = self._config.probe_interval
        next_probe: float | None = None
        probed_at: float | None = None
        try:
            while True:
                now = self._clock()
                remaining = self._deadline - now
                probing = self._watch and interval > 0 and not self._remote_back
                if remaining <= 0:
                    if not (probing and self._seen_down and probed_at != now):
                        return
                    # Down at the last look: look once more before attempting. If it is back,
                    # the attempt is jittered like everybody else's instead of made right now.
                    probed_at = now
                    if not await self._probe_once() or not self._remote_back:
                        return
                    continue
                step = remaining
                if probing:
                    if next_probe is None:  # a random phase: a herd does not probe in step
                        next_probe = now + self._rng.uniform(0.0, interval)
                    if next_probe <= now:
                        probed_at = now
                        if not await self._probe_once():
                            return
                        next_probe = now + self._probe_gap
                        continue
                    step = min(remaining, next_probe - now)
                done, _ = await self._wait(self._sleep(step))
                if not done:
                    return
        finally:
            self._current_backoff = self._next_attempt = self._waiting_for = None

    def _schedule(self, delay: float, reason: WaitReason) -> None:
        self._deadline = self._clock() + delay
        self._current_backoff = delay
        self._next_attempt = self._wall() + delay
        self._waiting_for = reason
        self._notify()

    async def _wait[T](self, awaitable: Awaitable[T]) -> tuple[bool, T | None]:
        """Await `awaitable` unless `reconnect()` wakes us first: (done, its result)."""
        work = asyncio.ensure_future(awaitable)
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((work, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            work.cancel()
            waker.cancel()
        if self._wake.is_set() or not work.done() or work.cancelled():
            return False, None
        return True, work.result()

    async def _probe_once(self) -> bool:
        """One readiness probe; False if woken meanwhile. Reschedules when the remote is back."""
        host, port = probe_target(self._config.connection.url)
        timeout = min(
            self._config.connection.connect_timeout, max(1.0, self._config.probe_interval)
        )
        try:
            done, result = await self._wait(self._probe(host, port, timeout))
        except Exception:  # noqa: BLE001 - a broken probe must not end the loop: no answer
            self._log.debug("Readiness probe of %s failed", self._target(), exc_info=True)
            done, result = True, ProbeResult.SILENT
        if not done or result is None:
            return False
        self._probes_total += 1
        self._last_probe = result
        interval = self._config.probe_interval
        if result is ProbeResult.OPEN and not self._seen_down:
            # Listening, yet the link failed or is lost: probe less often (a remote in trouble
            # pays for each accept) until it stops listening, then every interval again.
            cap = max(interval, self._config.backoff.max_delay)
            self._probe_gap = min(cap, max(interval, self._probe_gap * 2))
        else:
            self._probe_gap = interval
        if result is ProbeResult.DOWN:
            if not self._seen_down:
                self._log.info(
                    "%s is not listening (restarting?): checking every %g s, attempting once it is",
                    self._target(),
                    self._config.probe_interval,
                )
            self._seen_down = True
        elif result is ProbeResult.OPEN and self._seen_down:
            self._seen_down = False
            self._remote_back = True  # no more probes until the attempt
            spread = self._config.reconnect_spread
            # Without jitter nothing spreads a herd anyway: attempt at once.
            delay = self._rng.uniform(0.0, spread) if self._config.backoff.jitter else 0.0
            reopened = self._breaker.expedite()
            # Even when the planned attempt would come sooner: a herd stays flat only if every
            # member draws from the same window once the remote is back.
            self._schedule(delay, WaitReason.REMOTE_BACK)
            self._log.info(
                "%s is listening again: attempting in %.1f s%s",
                self._target(),
                self._deadline - self._clock(),
                " (circuit breaker half-open)" if reopened else "",
            )
        return True

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
        if self._state is not LinkState.CONNECTED:
            rtt = None  # a dead link's last round trip says nothing about now
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
            consecutive_failures=self._consecutive,
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
            subscriptions=self._subscriptions.statuses(),
            last_error=self._errors[-1] if self._errors else None,
            errors=tuple(self._errors),
            max_attempts=self._config.max_attempts,
            waiting_for=self._waiting_for,
            attempt_started=_to_datetime(self._attempt_started),
            attempt_deadline=_to_datetime(
                None
                if self._attempt_started is None
                else self._attempt_started + self._config.connection.connect_timeout
            ),
            probes_total=self._probes_total,
            last_probe=self._last_probe,
            entities=self._subscriptions.entities_status(),
            entity_problems=self._subscriptions.entity_problems,
        )
