"""Exponential backoff with the cap applied before full jitter. Pure: the random generator is injected."""

from __future__ import annotations

import math
import random

from .models import BackoffConfig


class Backoff:
    """delay(n) = U(0, min(max_delay, base * multiplier**n)) with jitter, the capped window without."""

    def __init__(self, config: BackoffConfig, rng: random.Random | None = None) -> None:
        """Use `rng` for jitter (seed it in tests)."""
        self._config = config
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        # Past this exponent the window is the cap: avoids float overflow for huge n.
        if config.multiplier > 1:
            self._cap_exponent = math.ceil(
                math.log(config.max_delay / config.base) / math.log(config.multiplier)
            )
        else:
            self._cap_exponent = 0

    @property
    def config(self) -> BackoffConfig:
        """The policy's configuration."""
        return self._config

    def window(self, attempt: int) -> float:
        """Upper bound of the delay before retry number `attempt` (0-based)."""
        cfg = self._config
        exponent = min(max(attempt, 0), self._cap_exponent)
        return min(cfg.max_delay, cfg.base * cfg.multiplier**exponent)

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt`: full jitter over the window, or the window itself."""
        window = self.window(attempt)
        if self._config.jitter:
            return self._rng.uniform(0.0, window)
        return window
