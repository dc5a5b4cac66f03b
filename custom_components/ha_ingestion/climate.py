"""Climate platform: mirrors of the remote's climate devices, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.climate import ClimateEntity
from homeassistant.components.climate.const import HVACAction, HVACMode

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "ClimateMirror", "async_setup_entry"]


class ClimateMirror(NativeMirror, ClimateEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote climate device."""

    _features = feature_flags("climate")

    # Temperatures are the remote's numbers as it shows them: no conversion here.
    @property
    def temperature_unit(self) -> str:
        """This instance's unit: Home Assistant converts nothing on the way to the remote."""
        return self.hass.config.units.temperature_unit

    @property
    def hvac_mode(self) -> HVACMode | None:
        """From the remote's state."""
        return self._state_enum(HVACMode)

    @property
    def hvac_modes(self) -> list[HVACMode]:
        """The remote's."""
        return self._enums("hvac_modes", HVACMode) or []

    @property
    def hvac_action(self) -> HVACAction | None:
        """The remote's."""
        return self._enum("hvac_action", HVACAction)

    @property
    def current_temperature(self) -> float | None:
        """The remote's."""
        return self._float("current_temperature")

    @property
    def target_temperature(self) -> float | None:
        """The remote's."""
        return self._float("temperature")

    @property
    def target_temperature_high(self) -> float | None:
        """The remote's."""
        return self._float("target_temp_high")

    @property
    def target_temperature_low(self) -> float | None:
        """The remote's."""
        return self._float("target_temp_low")

    @property
    def target_temperature_step(self) -> float | None:
        """The remote's."""
        return self._float("target_temp_step", 0)

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
    def current_humidity(self) -> float | None:
        """The remote's."""
        return self._float("current_humidity")

    @property
    def target_humidity(self) -> float | None:
        """The remote's."""
        return self._float("humidity")

    @property
    def min_humidity(self) -> float:
        """The remote's (Home Assistant's default when it tells none)."""
        value = self._float("min_humidity", 0, 100)
        return super().min_humidity if value is None else value

    @property
    def max_humidity(self) -> float:
        """The remote's (Home Assistant's default when it tells none)."""
        value = self._float("max_humidity", 0, 100)
        return super().max_humidity if value is None else value

    @property
    def fan_mode(self) -> str | None:
        """The remote's."""
        return self._str("fan_mode")

    @property
    def fan_modes(self) -> list[str] | None:
        """The remote's."""
        return self._strings("fan_modes")

    @property
    def preset_mode(self) -> str | None:
        """The remote's."""
        return self._str("preset_mode")

    @property
    def preset_modes(self) -> list[str] | None:
        """The remote's."""
        return self._strings("preset_modes")

    @property
    def swing_mode(self) -> str | None:
        """The remote's."""
        return self._str("swing_mode")

    @property
    def swing_modes(self) -> list[str] | None:
        """The remote's."""
        return self._strings("swing_modes")

    @property
    def swing_horizontal_mode(self) -> str | None:
        """The remote's."""
        return self._str("swing_horizontal_mode")

    @property
    def swing_horizontal_modes(self) -> list[str] | None:
        """The remote's."""
        return self._strings("swing_horizontal_modes")

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
