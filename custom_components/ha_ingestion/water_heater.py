"""Water heater platform: mirrors of the remote's water heaters, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.water_heater import WaterHeaterEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import (
    float_attr,
    float_or_base,
    local_temperature_unit,
    str_attr,
    str_list_attr,
)

__all__ = ["PARALLEL_UPDATES", "WaterHeaterMirror", "async_setup_entry"]


class WaterHeaterMirror(NativeMirror, WaterHeaterEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote water heater."""

    _features = feature_flags("water_heater")

    temperature_unit = local_temperature_unit()
    current_operation = str_attr("operation_mode")
    operation_list = str_list_attr("operation_list")
    current_temperature = float_attr("current_temperature")
    target_temperature = float_attr("temperature")
    min_temp = float_or_base("min_temp")
    max_temp = float_or_base("max_temp")

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
