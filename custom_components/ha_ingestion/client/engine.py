"""The reconnect loop: keeps one link alive with backoff, a circuit breaker and confirmed resubscription.

Over 400 lines: the public API and the state machine it drives (states, attempts, their outcomes)
read as one. Delegated: when to try again (`retry.py`), what to subscribe to on each connection
(`subscriptions.py`), the accounting and the snapshot built from it (`metrics.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
import logging
import random
import time
from typing import Any

import aiohttp

from .errors import (
    ErrorCategory,
    HaClientError,
    HaConnectionClosedError,
    HaRemoteGoingAwayError,
    sanitize,
)
from .metrics import LinkMetrics, build_snapshot
from .models import (
    BreakerState,
    EngineConfig,
    ErrorRecord,
    LinkSnapshot,
    LinkState,
    Outage,
    RemoteInfo,
    WaitReason,
)
from .probe import Probe, tcp_probe
from .protocol import EventCallback, HaWebSocketSession
from .retry import RetryPolicy, Sleep
from .subscriptions import EntitiesListener, Subscriptions
from .tasks import TaskFactory, cancel_and_wait, create_task

_LOGGER = logging.getLogger(__name__)

type SnapshotListener = Callable[[LinkSnapshot], None]
type SessionFactory = Callable[..., HaWebSocketSession]


class LinkEngine:
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
        config: EngineConfig,
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
        """Prepare the engine; `start()` begins connecting.

        `task_factory(coro, name)` starts the reconnect loop (a host such as Home Assistant passes
        its own, so the task is tracked there); it may be replaced before `start()`.
        """
        self.task_factory = task_factory
        self._http = http
        # Looked up at call time (not bound at import), so time-freezing tools reach them too.
        self._clock = clock or (lambda: time.monotonic())  # noqa: PLW0108
        self._wall = wall or (lambda: time.time())  # noqa: PLW0108
        self._session_factory = session_factory
        self._log = logger
        self._listeners: list[SnapshotListener] = []
        self._event_listeners: list[EventCallback] = []
        self._task: asyncio.Task[None] | None = None
        self._session: HaWebSocketSession | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._config = config
        self._state = LinkState.DISCONNECTED
        self._consecutive = 0  # failed attempts in a row, refused ones included (max_attempts)
        self._attempt_started: float | None = None
        self._last_logged: tuple[str, str] | None = None
        self._metrics = LinkMetrics(config)
        self._retry = RetryPolicy(
            config,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
            clock=self._clock,
            wall=self._wall,
            sleep=sleep,
            probe=probe,
            wake=self._wake,
            notify=self._notify,
            target=self._target,
            logger=logger,
        )
        self._subscriptions = Subscriptions(
            config,
            record=self._metrics.record,
            on_unknown=self._on_unknown,
            wall=self._wall,
            target=self._target,
            logger=logger,
        )

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> EngineConfig:
        """Current configuration."""
        return self._config

    @config.setter
    def config(self, config: EngineConfig) -> None:
        """Change the configuration between runs."""
        if self.running:
            raise RuntimeError("stop the engine before changing its configuration")
        self._config = config
        self._retry.configure(config)
        self._subscriptions.configure(config)
        self._metrics.configure(config)

    @property
    def message_bytes(self) -> int:
        """Wire bytes of the event being delivered to the listeners (0 when not from a link).

        Its frame's length, shared evenly by the messages of an array frame: read by a listener
        that keeps events, it bounds their memory without serializing them again.
        """
        session = self._session
        return 0 if session is None else session.message_bytes

    @property
    def running(self) -> bool:
        """The reconnect loop is running."""
        return self._task is not None and not self._task.done()

    @property
    def _attempts_total(self) -> int:
        # Read by bench/cost.py, which counts attempts without building snapshots.
        return self._metrics.attempts_total

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
        self._metrics.started_at = self._clock()
        self._task = self.task_factory(self._run(), "ha_ingestion engine")

    def set_failed(self, error: HaClientError) -> None:
        """Be `failed` with `error` without any attempt (e.g. a token the remote rejected before).

        The loop, once started, waits in `failed` for `reconnect()` like after a real failure.
        """
        self._metrics.record(error, self._wall())
        self._log.warning("Not connecting to %s: %s", self._target(), sanitize(str(error)))
        self._set_state(LinkState.FAILED)

    async def reconnect(self) -> None:
        """Make an attempt now: resets the breaker, the backoff and a `failed` link.

        Does nothing once `close()` has begun: a close is final until `start()`.
        """
        if self._closing:
            return
        self._retry.reset()
        self._consecutive = 0
        if self._state is LinkState.FAILED:
            self._set_state(LinkState.RECONNECTING)
        if not self.running:
            await self.start()
            return
        self._wake.set()
        if self._session is not None and self._state is LinkState.CONNECTED:
            await self._session.close()

    async def close(self) -> None:
        """Stop: close the link and cancel every task this engine started."""
        self._closing = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        session = self._session
        if session is not None:
            await session.close()
            self._session = None
        m = self._metrics
        if m.connected_since is not None:
            m.connected_total += self._clock() - m.connected_since
            m.connected_since = None
            m.last_disconnected = wall = self._wall()
            if session is not None:
                m.last_seen = wall - session.silence
        self._subscriptions.mark_unconfirmed()
        self._retry.clear_schedule()
        self._set_state(LinkState.DISCONNECTED)

    async def command(self, payload: dict[str, Any], time_limit: float | None = None) -> Any:
        """Run a command on the current link (for callers such as history backfill)."""
        session = self._session
        if session is None or self._state is not LinkState.CONNECTED:
            raise HaConnectionClosedError("not connected")
        return await session.command(payload, time_limit)

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        retry = self._retry
        while not self._closing:
            if self._state is LinkState.FAILED:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not retry.breaker.try_acquire():
                await retry.pause(retry.breaker.retry_in(), WaitReason.BREAKER)
                continue
            retry.skip_delay = False
            delay = await self._attempt_once()
            if delay is not None and not self._closing:
                await retry.pause(delay, WaitReason.BACKOFF)

    async def _attempt_once(self) -> float | None:
        """One connection attempt, and the life of the link if it succeeds; return the next delay."""
        self._metrics.attempts_total += 1
        self._retry.remote_back = False
        self._attempt_started = self._wall()
        if self._retry.breaker.state is BreakerState.HALF_OPEN:
            self._log.info("Circuit breaker for %s half-open: one probe attempt", self._target())
        # Published at once: an attempt in progress (up to the connect timeout) is visible.
        self._set_state(
            LinkState.RECONNECTING
            if self._metrics.successful or self._state is LinkState.RECONNECTING
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
            self._retry.breaker.release()  # a cancelled probe must not hold the half-open breaker
            self._attempt_started = None
            await session.close()
            self._session = None
            raise
        self._attempt_started = None
        self._connected(remote)
        reason = await session.wait_closed()
        self._subscriptions.check_entities_too_big(reason)
        self._metrics.last_ping_rtt = session.last_ping_rtt
        self._session = None
        return self._lost(reason, session.silence)

    def _attempt_failed(self, err: HaClientError) -> float | None:
        now = self._wall()
        self._metrics.failed += 1
        self._consecutive += 1
        self._metrics.last_failed = now
        self._retry.failed(err)
        record = self._metrics.record(err, now)
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
        delay = self._retry.next_delay()
        # The real next attempt: an open breaker holds it back beyond the backoff delay.
        self._log_failure(record, failures, max(delay, self._retry.breaker.retry_in()))
        self._set_state(LinkState.RECONNECTING)
        return delay

    def _connected(self, remote: RemoteInfo) -> None:
        now = self._clock()
        m = self._metrics
        self._retry.succeeded()
        self._consecutive = 0
        m.successful += 1
        m.remote = remote
        m.connected_since = now
        m.last_connected = back = self._wall()
        if m.lost_at is not None:
            elapsed = now - m.lost_at
            m.reconnect_time_total += elapsed
            m.reconnect_time_count += 1
            m.reconnect_count += 1
            m.lost_at = None
            # `_lost` set both with `lost_at`: the outage from the last sign of life to now.
            lost = m.last_disconnected or back
            outage = Outage(
                last_seen=_to_datetime(m.last_seen or lost),
                detected=_to_datetime(lost),
                back=_to_datetime(back),
            )
            self._log.info("Link to %s restored: %s", self._target(), outage.describe())
        else:
            self._log.info("Link to %s established", self._target())
        self._last_logged = None
        self._set_state(LinkState.CONNECTED)

    def _lost(self, err: HaClientError, silence: float) -> float | None:
        """The link ended with `err`, `silence` seconds after its last frame received."""
        now = self._clock()
        m = self._metrics
        since = m.connected_since
        m.connected_since = None
        if since is not None:
            m.connected_total += now - since
            if now - since >= self._config.stability_window:
                self._retry.stable()
        m.lost_at = now
        m.last_disconnected = wall = self._wall()
        m.last_seen = wall - silence
        self._subscriptions.mark_unconfirmed()
        if self._closing:
            return None
        record = m.record(err, wall)
        delay = self._retry.lost()
        self._log.info(
            "Link to %s lost (%s: %s); reconnecting%s",
            self._target(),
            record.category,
            record.message,
            " as soon as it is back" if isinstance(err, HaRemoteGoingAwayError) else "",
        )
        self._set_state(LinkState.RECONNECTING)
        return delay

    # ------------------------------------------------------------------ events and errors

    def _on_event(self, event: dict[str, Any]) -> None:
        self._metrics.count_event(event, self._wall())
        for listener in self._event_listeners:
            listener(event)

    def _on_unknown(self, err: HaClientError) -> None:
        self._metrics.record(err, self._wall())
        self._log.debug("%s", err)

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
        if self._metrics.remote is not None:
            return self._metrics.remote.location_name
        return sanitize(self._config.connection.url)

    # ------------------------------------------------------------------ metrics

    def snapshot(self) -> LinkSnapshot:
        """An immutable view of the link and every metric."""
        now = self._clock()
        return build_snapshot(
            now=now,
            wall=self._wall(),
            state=self._state,
            metrics=self._metrics,
            retry=self._retry,
            subscriptions=self._subscriptions,
            session=self._session,
            consecutive=self._consecutive,
            attempt_started=self._attempt_started,
        )


def _to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
