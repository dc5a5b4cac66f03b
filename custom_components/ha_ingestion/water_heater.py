"""Water heater platform: mirrors of the remote's water heaters, controlled through the link (see mirror/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.water_heater import WaterHeaterEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import TemperatureReaders, str_attr, str_list_attr

__all__ = ["PARALLEL_UPDATES", "WaterHeaterMirror", "async_setup_entry"]


class WaterHeaterMirror(TemperatureReaders, NativeMirror, WaterHeaterEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote water heater (temperatures: `TemperatureReaders`)."""

    _features = feature_flags("water_heater")

    current_operation = str_attr("operation_mode")
    operation_list = str_list_attr("operation_list")

    @property
    def is_away_mode_on(self) -> bool | None:
        """The remote's."""
        value = self._str("away_mode")
        return None if value is None else value == "on"

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


if TYPE_CHECKING:  # the mixins' types against the domain's (the class above ignores misc)

    class _Typed(TemperatureReaders, WaterHeaterEntity):
        pass


async_setup_entry = native_setup(WaterHeaterMirror)
