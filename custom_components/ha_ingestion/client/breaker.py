"""Consecutive-failure circuit breaker. Pure: the clock is injected."""

from __future__ import annotations

from collections.abc import Callable

from .models import BreakerConfig, BreakerState


class CircuitBreaker:
    """Opens after `failure_threshold` failures in a row; after `recovery_timeout` allows one probe.

    closed --(threshold failures)--> open --(recovery_timeout)--> half_open
    half_open --(probe succeeds)--> closed;  half_open --(probe fails)--> open
    open --(expedite: the remote was seen down and answers again)--> half_open
    """

    def __init__(self, config: BreakerConfig, clock: Callable[[], float]) -> None:
        """`clock` is monotonic seconds."""
        self._config = config
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._expedited = False
        self.times_opened = 0

    @property
    def config(self) -> BreakerConfig:
        """The breaker's configuration."""
        return self._config

    @property
    def state(self) -> BreakerState:
        """Current state, half-open as soon as the recovery timeout has passed."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._expedited:
            return BreakerState.HALF_OPEN
        # Same expression as retry_in(): the two can never disagree by a float rounding
        # (OPEN with a 0 s wait would make a caller spin).
        if self._clock() >= self._opened_at + self._config.recovery_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    @property
    def opened_at(self) -> float | None:
        """Monotonic time the breaker last opened, None when closed."""
        return self._opened_at

    def retry_in(self) -> float:
        """Seconds until an attempt may be made (0 when one may be made now)."""
        if self._opened_at is None or self._expedited:
            return 0.0
        return max(0.0, self._opened_at + self._config.recovery_timeout - self._clock())

    def try_acquire(self) -> bool:
        """Ask to make an attempt now. In half-open exactly one caller gets True until it reports."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def expedite(self) -> bool:
        """Half-open now instead of at the end of the recovery time; True if it was open.

        For a remote that restarted: it was seen not listening and listens again, so whatever
        made the attempts fail may be gone. Still exactly one probe; if it fails, open again.
        """
        if self.state is not BreakerState.OPEN:
            return False
        self._expedited = True
        return True

    def record_success(self) -> None:
        """An attempt reached a working link: close."""
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False
        self._expedited = False

    def record_failure(self) -> None:
        """An attempt failed: count it; open at the threshold, reopen after a failed probe."""
        self._failures += 1
        if self._probe_in_flight or (
            self._opened_at is None and self._failures >= self._config.failure_threshold
        ):
            self._open()

    def release(self) -> None:
        """An attempt ended without an outcome (cancelled): a later attempt may probe instead."""
        self._probe_in_flight = False

    def reset(self) -> None:
        """Forget all failures and close (a user asked for an immediate attempt)."""
        self.record_success()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probe_in_flight = False
        self._expedited = False
        self.times_opened += 1
