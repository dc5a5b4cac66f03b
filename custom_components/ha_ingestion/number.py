"""Number platform: mirrors of the remote's numbers, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.number import NumberEntity, NumberMode

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "NumberMirror", "async_setup_entry"]


class NumberMirror(NativeMirror, NumberEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote number."""

    # The remote's numbers as it shows them: no unit conversion here (no native unit).
    @property
    def native_value(self) -> float | None:
        """From the remote's state."""
        return self._state_float()

    @property
    def native_min_value(self) -> float:
        """The remote's."""
        value = self._float("min")
        return super().native_min_value if value is None else value

    @property
    def native_max_value(self) -> float:
        """The remote's."""
        value = self._float("max")
        return super().native_max_value if value is None else value

    @property
    def native_step(self) -> float | None:
        """The remote's."""
        return self._float("step", 0)

    @property
    def mode(self) -> NumberMode:
        """The remote's."""
        return self._enum("mode", NumberMode) or NumberMode.AUTO

    async_set_native_value = forward("set_value", "value")


async_setup_entry = native_setup(NumberMirror)
