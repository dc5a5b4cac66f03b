"""Remote platform: mirrors of the remote's remotes, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.remote import RemoteEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import on_off_state, str_attr, str_list_attr

__all__ = ["PARALLEL_UPDATES", "RemoteMirror", "async_setup_entry"]


class RemoteMirror(NativeMirror, RemoteEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote remote."""

    _features = feature_flags("remote")

    is_on = on_off_state()
    activity_list = str_list_attr("activity_list")
    current_activity = str_attr("current_activity")
    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_send_command = forward("send_command", "command")
    async_learn_command = forward("learn_command")
    async_delete_command = forward("delete_command")


async_setup_entry = native_setup(RemoteMirror)
