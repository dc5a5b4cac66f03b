"""Humidifier platform: mirrors of the remote's humidifiers, controlled through the link (see mirror/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.humidifier import HumidifierEntity
from homeassistant.components.humidifier.const import HumidifierAction

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import HumidityReaders, enum_attr, on_off_state, str_attr, str_list_attr

__all__ = ["PARALLEL_UPDATES", "HumidifierMirror", "async_setup_entry"]


class HumidifierMirror(HumidityReaders, NativeMirror, HumidifierEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote humidifier (humidities: `HumidityReaders`)."""

    _features = feature_flags("humidifier")

    is_on = on_off_state()
    action = enum_attr("action", HumidifierAction)
    mode = str_attr("mode")
    available_modes = str_list_attr("available_modes")

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_set_mode = forward("set_mode", "mode")
    async_set_humidity = forward("set_humidity", "humidity")


if TYPE_CHECKING:  # the mixins' types against the domain's (the class above ignores misc)

    class _Typed(HumidityReaders, HumidifierEntity):
        pass


async_setup_entry = native_setup(HumidifierMirror)
