"""Circuit breaker with an injected clock."""

from __future__ import annotations

import pytest

from custom_components.ha_ingestion.client import BreakerConfig, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(BreakerConfig(failure_threshold=3, recovery_timeout=30.0), clock)


def test_closed_until_threshold(breaker: CircuitBreaker, clock: Clock) -> None:
    assert breaker.state is BreakerState.CLOSED
    assert breaker.config.failure_threshold == 3
    for failures in (1, 2):
        assert breaker.try_acquire()
        breaker.record_failure()
        assert breaker.state is BreakerState.CLOSED
        assert breaker.consecutive_failures == failures
        assert breaker.retry_in() == 0.0
        assert breaker.opened_at is None
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == clock.now
    assert breaker.times_opened == 1
    assert not breaker.try_acquire()


def test_retry_in_counts_down(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    assert breaker.retry_in() == 30.0
    clock.now += 12.5
    assert breaker.retry_in() == pytest.approx(17.5)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.try_acquire()
    clock.now += 17.4
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.retry_in() == 0.0
    clock.now += 1000
    assert breaker.retry_in() == 0.0


def test_half_open_allows_exactly_one_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire() is True
    assert breaker.try_acquire() is False
    assert breaker.try_acquire() is False


def test_probe_success_closes(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30.0
    assert breaker.try_acquire()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.opened_at is None
    assert breaker.try_acquire()
    assert breaker.try_acquire()
    # A fresh run of failures is needed to open again.
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_probe_failure_reopens(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30.0
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == clock.now
    assert breaker.times_opened == 2
    assert breaker.consecutive_failures == 4
    assert breaker.retry_in() == 30.0
    assert not breaker.try_acquire()
    clock.now += 30.0
    assert breaker.try_acquire()
    assert not breaker.try_acquire()


def test_failures_while_open_do_not_move_the_deadline(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    opened = breaker.opened_at
    clock.now += 5
    breaker.record_failure()
    assert breaker.opened_at == opened
    assert breaker.times_opened == 1


def test_reset_closes(breaker: CircuitBreaker) -> None:
    for _ in range(5):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.try_acquire()


def test_threshold_one(clock: Clock) -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=1, recovery_timeout=1.0), clock)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 1.0
    assert breaker.state is BreakerState.HALF_OPEN


def test_release_lets_another_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    """A probe abandoned without an outcome (cancelled) must not block the breaker forever."""
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30.0
    assert breaker.try_acquire()
    assert not breaker.try_acquire()
    breaker.release()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire()
    assert not breaker.try_acquire()
    breaker.release()
    breaker.release()  # harmless when nothing is in flight
    assert breaker.consecutive_failures == 3


def test_state_and_retry_in_agree_at_float_edges() -> None:
    """OPEN always comes with a positive wait: no caller can spin on a 0 s pause."""
    from custom_components.ha_ingestion.client import BreakerConfig, BreakerState, CircuitBreaker

    now = [495.43508709194094]  # opened here, `clock - opened >= 60` was False at retry time
    breaker = CircuitBreaker(
        BreakerConfig(failure_threshold=1, recovery_timeout=60.0), lambda: now[0]
    )
    breaker.record_failure()
    for _ in range(10_000):
        wait = breaker.retry_in()
        if breaker.state is BreakerState.OPEN:
            assert wait > 0
        now[0] += wait  # a fake sleep that advances by exactly the requested time
        if breaker.state is BreakerState.HALF_OPEN:
            break
    assert breaker.state is BreakerState.HALF_OPEN
