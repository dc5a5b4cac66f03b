"""Humidifier platform: mirrors of the remote's humidifiers, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.humidifier import HumidifierEntity
from homeassistant.components.humidifier.const import HumidifierAction

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "HumidifierMirror", "async_setup_entry"]


class HumidifierMirror(NativeMirror, HumidifierEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote humidifier."""

    _features = feature_flags("humidifier")

    @property
    def is_on(self) -> bool | None:
        """From the remote's state."""
        return self._is_on()

    @property
    def action(self) -> HumidifierAction | None:
        """The remote's."""
        return self._enum("action", HumidifierAction)

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
    def mode(self) -> str | None:
        """The remote's."""
        return self._str("mode")

    @property
    def available_modes(self) -> list[str] | None:
        """The remote's."""
        return self._strings("available_modes")

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_set_mode = forward("set_mode", "mode")
    async_set_humidity = forward("set_humidity", "humidity")


async_setup_entry = native_setup(HumidifierMirror)
