"""Date/time platform: mirrors of the remote's datetime entities, set through the link (mirror/).

The moment is sent with its offset (a naive one gets this instance's time zone first, by Home
Assistant's service), so the remote sets the same instant.
"""

from __future__ import annotations

from homeassistant.components.datetime import DateTimeEntity

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "DateTimeMirror", "async_setup_entry"]


class DateTimeMirror(NativeMirror, DateTimeEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote datetime entity."""

    async_set_value = forward("set_value", "datetime")


async_setup_entry = native_setup(DateTimeMirror)
