"""When the next attempt comes: backoff and breaker, readiness probes while waiting, herd spreading.

The engine's reconnect loop asks this policy how long to wait after a failure or a lost link,
and waits through it here; the policy tells it nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import logging
import random

from .backoff import Backoff
from .breaker import CircuitBreaker
from .errors import ErrorCategory, HaClientError, HaConnectionRefusedError
from .models import BreakerState, EngineConfig, WaitReason
from .probe import Probe, ProbeResult, probe_target

type Sleep = Callable[[float], Awaitable[None]]


class RetryPolicy:
    """Backoff delays, the circuit breaker and the wait between attempts (with its probes).

    A connect that found nothing listening (refused) costs the remote nothing and does not count
    against the breaker. While waiting after a lost link or such a refusal, a TCP readiness probe
    runs every `probe_interval`; once the remote was seen not listening and listens again, the
    attempt comes after U(0, `reconnect_spread`) (so a herd of clients stays spread out) instead
    of at the end of the wait, and an open breaker goes half-open at once.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        rng: random.Random,
        clock: Callable[[], float],
        wall: Callable[[], float],
        sleep: Sleep,
        probe: Probe,
        wake: asyncio.Event,
        notify: Callable[[], None],
        target: Callable[[], str],
        logger: logging.Logger,
    ) -> None:
        """Prepare the policy; `wake` (set by `reconnect()`) ends any wait, `notify` publishes."""
        self._rng = rng
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._probe = probe
        self._wake = wake
        self._notify = notify
        self._target = target
        self._log = logger
        self.skip_delay = False  # reconnect(): the next attempt comes without a wait
        self._attempt = 0  # backoff exponent: reset only after a stable link
        self._watch = False  # probe while waiting: the link was lost, or nothing listened
        self._seen_down = False  # nothing listened (attempt or probe) since the last success
        self.remote_back = False  # a probe found it listening again: the attempt is scheduled
        self.waiting_for: WaitReason | None = None
        self._deadline = 0.0
        self.probes_total = 0
        self.last_probe: ProbeResult | None = None
        self._probe_gap = 0.0  # between probes: the interval, doubled while the port stays open
        self.current_backoff: float | None = None
        self.next_attempt: float | None = None
        self.configure(config)

    def configure(self, config: EngineConfig) -> None:
        """Take a new configuration: a fresh backoff and breaker."""
        self._config = config
        self._backoff = Backoff(config.backoff, self._rng)
        self.breaker = CircuitBreaker(config.breaker, self._clock)

    # ------------------------------------------------------------------ outcomes of attempts

    def reset(self) -> None:
        """`reconnect()`: a closed breaker, no backoff and no wait before the next attempt."""
        self.breaker.reset()
        self._attempt = 0
        self.skip_delay = True

    def failed(self, err: HaClientError) -> None:
        """An attempt failed with `err`: count it against the breaker unless nothing listened."""
        if isinstance(err, HaConnectionRefusedError):
            # Nothing listens: it cost the remote nothing, so it is no attempt against the breaker
            # (a half-open probe stays available for when it listens again).
            self.breaker.release()
            self._seen_down = self._watch = True
        else:
            opened, was = self.breaker.times_opened, self.breaker.state
            self.breaker.record_failure()
            if self.breaker.times_opened != opened:
                self._log.warning(
                    "Circuit breaker for %s open %s: no attempt for %g s (earlier if it is seen "
                    "restarting)",
                    self._target(),
                    "again, the probe attempt failed"
                    if was is BreakerState.HALF_OPEN
                    else f"after {self.breaker.consecutive_failures} failed attempts in a row",
                    self.breaker.config.recovery_timeout,
                )
            # A reset or closed connection may be a remote going down: keep watching its port.
            # Anything else (HTTP 502 from a proxy, timeouts, protocol errors) answered from an
            # open port, where probes can tell nothing: the backoff alone decides.
            self._watch = err.category is ErrorCategory.NETWORK
            self._seen_down = False

    def succeeded(self) -> None:
        """An attempt connected: the breaker closes, probing starts over at its interval."""
        if self.breaker.state is not BreakerState.CLOSED:
            self._log.info("Circuit breaker for %s closed", self._target())
        self.breaker.record_success()
        self._watch = self._seen_down = False
        self._probe_gap = self._config.probe_interval

    def stable(self) -> None:
        """The link lasted the stability window: the backoff starts over."""
        self._attempt = 0

    def lost(self) -> float:
        """The link was lost: the delay before the next attempt, the port watched meanwhile."""
        delay = self.next_delay()
        self._watch, self._seen_down = True, False
        return delay

    def next_delay(self) -> float:
        """The backoff delay of the next attempt (none after `reset()`)."""
        if self.skip_delay:
            return 0.0
        delay = self._backoff.delay(self._attempt)
        self._attempt += 1
        return delay

    # ------------------------------------------------------------------ waiting

    def clear_schedule(self) -> None:
        """No attempt is planned (any more)."""
        self.current_backoff = self.next_attempt = self.waiting_for = None

    async def pause(self, delay: float, reason: WaitReason) -> None:
        """Wait `delay` seconds (probing readiness if watching), or until `reconnect()` wakes us."""
        if self.skip_delay:
            self.skip_delay = False
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
                probing = self._watch and interval > 0 and not self.remote_back
                if remaining <= 0:
                    if not (probing and self._seen_down and probed_at != now):
                        return
                    # Down at the last look: look once more before attempting. If it is back,
                    # the attempt is jittered like everybody else's instead of made right now.
                    probed_at = now
                    if not await self._probe_once() or not self.remote_back:
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
            self.clear_schedule()

    def _schedule(self, delay: float, reason: WaitReason) -> None:
        self._deadline = self._clock() + delay
        self.current_backoff = delay
        self.next_attempt = self._wall() + delay
        self.waiting_for = reason
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
        self.probes_total += 1
        self.last_probe = result
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
            self.remote_back = True  # no more probes until the attempt
            spread = self._config.reconnect_spread
            # Without jitter nothing spreads a herd anyway: attempt at once.
            delay = self._rng.uniform(0.0, spread) if self._config.backoff.jitter else 0.0
            reopened = self.breaker.expedite()
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
