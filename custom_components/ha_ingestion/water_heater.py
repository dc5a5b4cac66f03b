"""Water heater platform: mirrors of the remote's water heaters, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.water_heater import WaterHeaterEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "WaterHeaterMirror", "async_setup_entry"]


class WaterHeaterMirror(NativeMirror, WaterHeaterEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote water heater."""

    _features = feature_flags("water_heater")

    @property
    def temperature_unit(self) -> str:
        """This instance's unit: Home Assistant converts nothing on the way to the remote."""
        return self.hass.config.units.temperature_unit

    @property
    def current_operation(self) -> str | None:
        """The remote's."""
        return self._str("operation_mode")

    @property
    def operation_list(self) -> list[str] | None:
        """The remote's."""
        return self._strings("operation_list")

    @property
    def current_temperature(self) -> float | None:
        """The remote's."""
        return self._float("current_temperature")

    @property
    def target_temperature(self) -> float | None:
        """The remote's."""
        return self._float("temperature")

    @property
    def min_temp(self) -> float:
        """The remote's (Home Assistant's default when it tells none)."""
        value = self._float("min_temp")
        return super().min_temp if value is None else value

    @property
    def max_temp(self) -> float:
        """The remote's (Home Assistant's default when it tells none)."""
        value = self._float("max_temp")
        return super().max_temp if value is None else value

    @property
    def is_away_mode_on(self) -> bool | None:
        """The remote's."""
        value = self._str("away_mode")
        return None if value is None else value == "on"

    # Home Assistant 2026.11 reads these under native_ names (see climate.py): both provided.
    native_temperature_unit = temperature_unit
    native_current_temperature = current_temperature
    native_target_temperature = target_temperature

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_set_temperature = forward("set_temperature")
    async_set_operation_mode = forward("set_operation_mode", "operation_mode")

    async def async_turn_away_mode_on(self) -> None:
        """On the remote."""
        await self._forward("set_away_mode", {"away_mode": True})

    async def async_turn_away_mode_off(self) -> None:
        """On the remote."""
        await self._forward("set_away_mode", {"away_mode": False})


async_setup_entry = native_setup(WaterHeaterMirror)
