"""Climate platform: mirrors of the remote's climate devices, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.climate import ClimateEntity
from homeassistant.components.climate.const import HVACAction, HVACMode

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import (
    enum_attr,
    enum_list_or_empty,
    float_attr,
    float_or_base,
    local_temperature_unit,
    str_attr,
    str_list_attr,
)

__all__ = ["PARALLEL_UPDATES", "ClimateMirror", "async_setup_entry"]


class ClimateMirror(NativeMirror, ClimateEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote climate device."""

    _features = feature_flags("climate")

    # Temperatures are the remote's numbers as it shows them: no conversion here.
    temperature_unit = local_temperature_unit()

    @property
    def hvac_mode(self) -> HVACMode | None:
        """From the remote's state."""
        return self._state_enum(HVACMode)

    hvac_modes = enum_list_or_empty("hvac_modes", HVACMode)
    hvac_action = enum_attr("hvac_action", HVACAction)
    current_temperature = float_attr("current_temperature")
    target_temperature = float_attr("temperature")
    target_temperature_high = float_attr("target_temp_high")
    target_temperature_low = float_attr("target_temp_low")
    target_temperature_step = float_attr("target_temp_step", 0)
    min_temp = float_or_base("min_temp")
    max_temp = float_or_base("max_temp")
    current_humidity = float_attr("current_humidity")
    target_humidity = float_attr("humidity")
    min_humidity = float_or_base("min_humidity", 0, 100)
    max_humidity = float_or_base("max_humidity", 0, 100)
    fan_mode = str_attr("fan_mode")
    fan_modes = str_list_attr("fan_modes")
    preset_mode = str_attr("preset_mode")
    preset_modes = str_list_attr("preset_modes")
    swing_mode = str_attr("swing_mode")
    swing_modes = str_list_attr("swing_modes")
    swing_horizontal_mode = str_attr("swing_horizontal_mode")
    swing_horizontal_modes = str_list_attr("swing_horizontal_modes")

    # Home Assistant 2026.11 reads these under native_ names (the old ones report a deprecation
    # there, from a class that provides only them): both are provided, each release reads the
    # one it knows. The unit is this instance's own, so nothing is converted either way.
    native_temperature_unit = temperature_unit
    native_current_temperature = current_temperature
    native_target_temperature = target_temperature
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


async_setup_entry = native_setup(ClimateMirror)
