"""Climate platform: mirrors of the remote's climate devices, controlled through the link (see mirror/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.climate import ClimateEntity
from homeassistant.components.climate.const import HVACAction, HVACMode

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import (
    HumidityReaders,
    TemperatureReaders,
    enum_attr,
    enum_list_or_empty,
    float_attr,
    str_attr,
    str_list_attr,
)

__all__ = ["PARALLEL_UPDATES", "ClimateMirror", "async_setup_entry"]


class ClimateMirror(TemperatureReaders, HumidityReaders, NativeMirror, ClimateEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote climate device (its temperatures and humidities: the mixins')."""

    _features = feature_flags("climate")

    @property
    def hvac_mode(self) -> HVACMode | None:
        """From the remote's state."""
        return self._state_enum(HVACMode)

    hvac_modes = enum_list_or_empty("hvac_modes", HVACMode)
    hvac_action = enum_attr("hvac_action", HVACAction)
    target_temperature_high = float_attr("target_temp_high")
    target_temperature_low = float_attr("target_temp_low")
    target_temperature_step = float_attr("target_temp_step", 0)
    fan_mode = str_attr("fan_mode")
    fan_modes = str_list_attr("fan_modes")
    preset_mode = str_attr("preset_mode")
    preset_modes = str_list_attr("preset_modes")
    swing_mode = str_attr("swing_mode")
    swing_modes = str_list_attr("swing_modes")
    swing_horizontal_mode = str_attr("swing_horizontal_mode")
    swing_horizontal_modes = str_list_attr("swing_horizontal_modes")

    # Home Assistant 2026.11 reads these under native_ names (see TemperatureReaders): both.
    native_target_temperature_high = target_temperature_high
    native_target_temperature_low = target_temperature_low

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_set_hvac_mode = forward("set_hvac_mode", "hvac_mode")
    async_set_preset_mode = forward("set_preset_mode", "preset_mode")
    async_set_temperature = forward("set_temperature")
    async_set_humidity = forward("set_humidity", "humidity")
    async_set_fan_mode = forward("set_fan_mode", "fan_mode")
    async_set_swing_mode = forward("set_swing_mode", "swing_mode")
    async_set_swing_horizontal_mode = forward("set_swing_horizontal_mode", "swing_horizontal_mode")


if TYPE_CHECKING:  # the mixins' types against the domain's (the class above ignores misc)

    class _Typed(TemperatureReaders, HumidityReaders, ClimateEntity):
        pass


async_setup_entry = native_setup(ClimateMirror)
