"""Number platform: mirrors of the remote's numbers, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.number import NumberEntity, NumberMode

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import enum_attr_or, float_attr, float_or_base

__all__ = ["PARALLEL_UPDATES", "NumberMirror", "async_setup_entry"]


class NumberMirror(NativeMirror, NumberEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote number."""

    # The remote's numbers as it shows them: no unit conversion here (no native unit).
    @property
    def native_value(self) -> float | None:
        """From the remote's state."""
        return self._state_float()

    native_min_value = float_or_base("min")
    native_max_value = float_or_base("max")
    native_step = float_attr("step", 0)
    mode = enum_attr_or("mode", NumberMode, NumberMode.AUTO)
    async_set_native_value = forward("set_value", "value")


async_setup_entry = native_setup(NumberMirror)
