"""Cover platform: mirrors of the remote's covers, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.cover import CoverEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import int_attr, state_is

__all__ = ["PARALLEL_UPDATES", "CoverMirror", "async_setup_entry"]


class CoverMirror(NativeMirror, CoverEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote cover."""

    _features = feature_flags("cover")

    @property
    def is_closed(self) -> bool | None:
        """From the remote's state."""
        state = self.state
        return None if state not in ("open", "closed", "opening", "closing") else state == "closed"

    is_opening = state_is("opening")
    is_closing = state_is("closing")
    current_cover_position = int_attr("current_position", 0, 100)
    current_cover_tilt_position = int_attr("current_tilt_position", 0, 100)
    async_open_cover = forward("open_cover")
    async_close_cover = forward("close_cover")
    async_set_cover_position = forward("set_cover_position", "position")
    async_stop_cover = forward("stop_cover")
    async_toggle = forward("toggle")
    async_open_cover_tilt = forward("open_cover_tilt")
    async_close_cover_tilt = forward("close_cover_tilt")
    async_stop_cover_tilt = forward("stop_cover_tilt")
    async_set_cover_tilt_position = forward("set_cover_tilt_position", "tilt_position")
    async_toggle_tilt = forward("toggle_cover_tilt")


async_setup_entry = native_setup(CoverMirror)
