"""Light platform: mirrors of the remote's lights, controlled through the link (see mirror/).

Home Assistant's light service layer runs here as for a local light (brightness_pct to
brightness, profiles, color conversion to a mode the remote light supports, filtering of what
it does not); the processed call reaches the remote as `light.turn_on` / `turn_off`.
"""

from __future__ import annotations

from homeassistant.components.light import LightEntity
from homeassistant.components.light.const import ColorMode

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import enum_attr, int_attr, int_or_base, on_off_state, str_attr, str_list_attr

__all__ = ["PARALLEL_UPDATES", "LightMirror", "async_setup_entry"]


class LightMirror(NativeMirror, LightEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote light."""

    _features = feature_flags("light")

    is_on = on_off_state()

    @property
    def supported_color_modes(self) -> set[ColorMode] | None:
        """The remote's (unknown modes left out); none valid: on/off only."""
        modes = {m for m in self._enums("supported_color_modes", ColorMode) or () if m}
        modes.discard(ColorMode.UNKNOWN)
        return modes or {ColorMode.ONOFF}

    color_mode = enum_attr("color_mode", ColorMode)
    brightness = int_attr("brightness", 0, 255)
    color_temp_kelvin = int_attr("color_temp_kelvin", 1)
    min_color_temp_kelvin = int_or_base("min_color_temp_kelvin", 1)
    max_color_temp_kelvin = int_or_base("max_color_temp_kelvin", 1)

    @property
    def hs_color(self) -> tuple[float, float] | None:
        """The remote's."""
        return self._floats("hs_color", 2)  # type: ignore[return-value]

    effect_list = str_list_attr("effect_list")
    effect = str_attr("effect")
    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")


async_setup_entry = native_setup(LightMirror)
