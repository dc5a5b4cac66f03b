"""Notify platform: mirrors of the remote's notify entities; messages sent through the link."""

from __future__ import annotations

from homeassistant.components.notify import NotifyEntity

from .mirror.entity import NativeMirror, feature_flags
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "NotifyMirror", "async_setup_entry"]


class NotifyMirror(NativeMirror, NotifyEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote notify entity: `notify.send_message` here sends it there."""

    _features = feature_flags("notify")

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """On the remote (a title only when there is one)."""
        data = {"message": message} if title is None else {"message": message, "title": title}
        await self._forward("send_message", data)


async_setup_entry = native_setup(NotifyMirror)
