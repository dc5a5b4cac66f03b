"""Vacuum platform: mirrors of the remote's vacuums, controlled through the link (see mirror/)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.vacuum import StateVacuumEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import str_attr, str_list_or_empty

__all__ = ["PARALLEL_UPDATES", "VacuumMirror", "async_setup_entry"]


class VacuumMirror(NativeMirror, StateVacuumEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote vacuum."""

    _features = feature_flags("vacuum")

    fan_speed = str_attr("fan_speed")
    fan_speed_list = str_list_or_empty("fan_speed_list")
    async_start = forward("start")
    async_pause = forward("pause")
    async_stop = forward("stop")
    async_return_to_base = forward("return_to_base")
    async_clean_spot = forward("clean_spot")
    async_locate = forward("locate")
    async_set_fan_speed = forward("set_fan_speed", "fan_speed")
    async_send_command = forward("send_command", "command", "params")

    async def async_internal_clean_area(  # type: ignore[misc,unused-ignore]  # final: refused
        self, *args: Any, **kwargs: Any
    ) -> None:
        """Areas are this instance's, segments the remote's: not forwarded."""
        await self._refuse_unforwarded("vacuum.clean_area")

    _async_clean_area = async_internal_clean_area


async_setup_entry = native_setup(VacuumMirror)
