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

__all__ = ["PARALLEL_UPDATES", "LightMirror", "async_setup_entry"]


class LightMirror(NativeMirror, LightEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote light."""

    _features = feature_flags("light")

    @property
    def is_on(self) -> bool | None:
        """From the remote's state."""
        return self._is_on()

    @property
    def supported_color_modes(self) -> set[ColorMode] | None:
        """The remote's (unknown modes left out); none valid: on/off only."""
        modes = {m for m in self._enums("supported_color_modes", ColorMode) or () if m}
        modes.discard(ColorMode.UNKNOWN)
        return modes or {ColorMode.ONOFF}

    @property
    def color_mode(self) -> ColorMode | None:
        """The remote's."""
        return self._enum("color_mode", ColorMode)

    @property
    def brightness(self) -> int | None:
        """The remote's (0-255)."""
        return self._int("brightness", 0, 255)

    @property
    def color_temp_kelvin(self) -> int | None:
        """The remote's."""
        return self._int("color_temp_kelvin", 1)

    @property
    def min_color_temp_kelvin(self) -> int:
        """The remote's (Home Assistant's default when it tells none)."""
        return self._int("min_color_temp_kelvin", 1) or super().min_color_temp_kelvin

    @property
    def max_color_temp_kelvin(self) -> int:
        """The remote's (Home Assistant's default when it tells none)."""
        return self._int("max_color_temp_kelvin", 1) or super().max_color_temp_kelvin

    @property
    def hs_color(self) -> tuple[float, float] | None:
        """The remote's."""
        return self._floats("hs_color", 2)  # type: ignore[return-value]

    @property
    def effect_list(self) -> list[str] | None:
        """The remote's."""
        return self._strings("effect_list")

    @property
    def effect(self) -> str | None:
        """The remote's."""
        return self._str("effect")

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")


async_setup_entry = native_setup(LightMirror)
