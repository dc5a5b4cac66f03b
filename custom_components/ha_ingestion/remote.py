"""Remote platform: mirrors of the remote's remotes, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.remote import RemoteEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "RemoteMirror", "async_setup_entry"]


class RemoteMirror(NativeMirror, RemoteEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote remote."""

    _features = feature_flags("remote")

    @property
    def is_on(self) -> bool | None:
        """From the remote's state."""
        return self._is_on()

    @property
    def activity_list(self) -> list[str] | None:
        """The remote's."""
        return self._strings("activity_list")

    @property
    def current_activity(self) -> str | None:
        """The remote's."""
        return self._str("current_activity")

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_send_command = forward("send_command", "command")
    async_learn_command = forward("learn_command")
    async_delete_command = forward("delete_command")


async_setup_entry = native_setup(RemoteMirror)
