"""Time platform: mirrors of the remote's time entities, set through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.time import TimeEntity

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "TimeMirror", "async_setup_entry"]


class TimeMirror(NativeMirror, TimeEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote time entity."""

    async_set_value = forward("set_value", "time")


async_setup_entry = native_setup(TimeMirror)
