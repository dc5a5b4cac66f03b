"""Valve platform: mirrors of the remote's valves, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.valve import (  # type: ignore[attr-defined,unused-ignore]
    ValveEntity,  # a re-export on later releases
)

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import int_attr, state_is

__all__ = ["PARALLEL_UPDATES", "ValveMirror", "async_setup_entry"]


class ValveMirror(NativeMirror, ValveEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote valve."""

    _features = feature_flags("valve")

    @property
    def reports_position(self) -> bool:
        """Whether the remote tells a position."""
        return "current_position" in (self._remote.attributes if self._remote else {})

    current_valve_position = int_attr("current_position", 0, 100)
    is_closed = state_is("closed")
    is_opening = state_is("opening")
    is_closing = state_is("closing")
    # Open and close as the remote's services, not as a position of 100 or 0 (ValveEntity's
    # own handler for a valve that reports a position): final there, the remote decides.
    async_open_valve = forward("open_valve")
    async_close_valve = forward("close_valve")
    async_handle_open_valve = async_open_valve  # type: ignore[misc,unused-ignore]
    async_handle_close_valve = async_close_valve  # type: ignore[misc,unused-ignore]
    async_set_valve_position = forward("set_valve_position", "position")
    async_stop_valve = forward("stop_valve")
    async_toggle = forward("toggle")


async_setup_entry = native_setup(ValveMirror)
