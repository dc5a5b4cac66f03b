"""Date platform: mirrors of the remote's date entities, set through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.date import DateEntity

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "DateMirror", "async_setup_entry"]


class DateMirror(NativeMirror, DateEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote date entity."""

    async_set_value = forward("set_value", "date")


async_setup_entry = native_setup(DateMirror)
