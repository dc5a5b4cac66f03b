"""Alarm control panel platform: mirrors of the remote's alarm control panels, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.alarm_control_panel import AlarmControlPanelEntity
from homeassistant.components.alarm_control_panel.const import (
    CodeFormat,
)

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import bool_attr_or, enum_attr

__all__ = ["PARALLEL_UPDATES", "AlarmControlPanelMirror", "async_setup_entry"]


class AlarmControlPanelMirror(NativeMirror, AlarmControlPanelEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote alarm control panel."""

    _features = feature_flags("alarm_control_panel")

    code_format = enum_attr("code_format", CodeFormat)
    code_arm_required = bool_attr_or("code_arm_required", True)
    async_alarm_disarm = forward("alarm_disarm", "code")
    async_alarm_arm_home = forward("alarm_arm_home", "code")
    async_alarm_arm_away = forward("alarm_arm_away", "code")
    async_alarm_arm_night = forward("alarm_arm_night", "code")
    async_alarm_arm_vacation = forward("alarm_arm_vacation", "code")
    async_alarm_arm_custom_bypass = forward("alarm_arm_custom_bypass", "code")
    async_alarm_trigger = forward("alarm_trigger", "code")


async_setup_entry = native_setup(AlarmControlPanelMirror)
