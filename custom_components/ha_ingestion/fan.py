"""Fan platform: mirrors of the remote's fans, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.fan import FanEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import bool_attr, int_attr, on_off_state, str_attr, str_list_attr

__all__ = ["PARALLEL_UPDATES", "FanMirror", "async_setup_entry"]


class FanMirror(NativeMirror, FanEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote fan."""

    _features = feature_flags("fan")

    is_on = on_off_state()
    percentage = int_attr("percentage", 0, 100)

    @property
    def percentage_step(self) -> float:
        """The remote's."""
        return self._float("percentage_step", 0, 100) or super().percentage_step

    @property
    def speed_count(self) -> int:
        """From the remote's percentage step."""
        step = self._float("percentage_step", 0, 100)
        return round(100 / step) if step else super().speed_count

    current_direction = str_attr("direction")
    oscillating = bool_attr("oscillating")
    preset_mode = str_attr("preset_mode")
    preset_modes = str_list_attr("preset_modes")
    async_turn_on = forward("turn_on", "percentage", "preset_mode")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_increase_speed = forward("increase_speed", "percentage_step")
    async_decrease_speed = forward("decrease_speed", "percentage_step")
    async_oscillate = forward("oscillate", "oscillating")
    async_set_direction = forward("set_direction", "direction")
    async_set_percentage = forward("set_percentage", "percentage")
    async_set_preset_mode = forward("set_preset_mode", "preset_mode")


async_setup_entry = native_setup(FanMirror)
