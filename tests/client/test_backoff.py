"""Backoff: full jitter over a capped exponential window."""

from __future__ import annotations

import random
import statistics

import pytest

from custom_components.ha_ingestion.client import Backoff, BackoffConfig


def test_every_delay_within_capped_window() -> None:
    cfg = BackoffConfig(base=0.5, multiplier=3.0, max_delay=40.0)
    backoff = Backoff(cfg, random.Random(1234))
    for n in range(30):
        window = min(cfg.max_delay, cfg.base * cfg.multiplier**n)
        assert backoff.window(n) == pytest.approx(window)
        for _ in range(200):
            delay = backoff.delay(n)
            assert 0.0 <= delay <= window


def test_mean_is_half_the_window() -> None:
    backoff = Backoff(BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0), random.Random(42))
    for n, window in ((0, 1.0), (3, 8.0), (10, 60.0)):
        samples = [backoff.delay(n) for _ in range(20_000)]
        assert statistics.fmean(samples) == pytest.approx(window / 2, rel=0.03)
        # Full jitter spreads over the whole window, not a narrow band.
        assert min(samples) < window * 0.05
        assert max(samples) > window * 0.95


def test_cap_respected() -> None:
    backoff = Backoff(BackoffConfig(base=2.0, multiplier=2.0, max_delay=10.0), random.Random(7))
    assert [backoff.window(n) for n in range(6)] == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert max(backoff.delay(n) for n in range(50) for _ in range(50)) <= 10.0


def test_without_jitter_plain_capped_exponential() -> None:
    backoff = Backoff(BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=False))
    assert [backoff.delay(n) for n in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_seeded_generators_agree() -> None:
    cfg = BackoffConfig()
    first = Backoff(cfg, random.Random(99))
    second = Backoff(cfg, random.Random(99))
    assert [first.delay(n) for n in range(20)] == [second.delay(n) for n in range(20)]


@pytest.mark.parametrize("n", [64, 1024, 10**6, 10**18])
def test_huge_attempt_no_overflow(n: int) -> None:
    backoff = Backoff(BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0), random.Random(0))
    assert backoff.window(n) == 60.0
    assert 0.0 <= backoff.delay(n) <= 60.0
    plain = Backoff(BackoffConfig(base=1.0, multiplier=10.0, max_delay=5.0, jitter=False))
    assert plain.delay(n) == 5.0


def test_negative_attempt_is_first_window() -> None:
    backoff = Backoff(BackoffConfig(base=3.0, jitter=False))
    assert backoff.delay(-5) == 3.0


def test_multiplier_one_is_constant() -> None:
    backoff = Backoff(BackoffConfig(base=4.0, multiplier=1.0, max_delay=60.0, jitter=False))
    assert {backoff.delay(n) for n in (0, 1, 10, 10**9)} == {4.0}
    assert backoff.config.multiplier == 1.0


def test_default_rng_is_created() -> None:
    backoff = Backoff(BackoffConfig(base=1.0, max_delay=1.0))
    assert 0.0 <= backoff.delay(0) <= 1.0
