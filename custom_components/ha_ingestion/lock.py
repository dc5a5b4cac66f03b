"""Lock platform: mirrors of the remote's locks, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.lock import LockEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import pattern_attr, state_is

__all__ = ["PARALLEL_UPDATES", "LockMirror", "async_setup_entry"]


class LockMirror(NativeMirror, LockEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote lock."""

    _features = feature_flags("lock")

    code_format = pattern_attr("code_format")  # a code that does not match: refused here already
    is_locked = state_is("locked")
    is_jammed = state_is("jammed")
    async_lock = forward("lock")
    async_unlock = forward("unlock")
    async_open = forward("open")


async_setup_entry = native_setup(LockMirror)
