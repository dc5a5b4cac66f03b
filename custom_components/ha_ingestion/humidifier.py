"""Humidifier platform: mirrors of the remote's humidifiers, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.humidifier import HumidifierEntity
from homeassistant.components.humidifier.const import HumidifierAction

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import (
    enum_attr,
    float_attr,
    float_or_base,
    on_off_state,
    str_attr,
    str_list_attr,
)

__all__ = ["PARALLEL_UPDATES", "HumidifierMirror", "async_setup_entry"]


class HumidifierMirror(NativeMirror, HumidifierEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote humidifier."""

    _features = feature_flags("humidifier")

    is_on = on_off_state()
    action = enum_attr("action", HumidifierAction)
    current_humidity = float_attr("current_humidity")
    target_humidity = float_attr("humidity")
    min_humidity = float_or_base("min_humidity", 0, 100)
    max_humidity = float_or_base("max_humidity", 0, 100)
    mode = str_attr("mode")
    available_modes = str_list_attr("available_modes")
    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_set_mode = forward("set_mode", "mode")
    async_set_humidity = forward("set_humidity", "humidity")


async_setup_entry = native_setup(HumidifierMirror)
