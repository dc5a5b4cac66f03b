"""Lock platform: mirrors of the remote's locks, controlled through the link (see mirror/)."""

from __future__ import annotations

import re

from homeassistant.components.lock import LockEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "LockMirror", "async_setup_entry"]


class LockMirror(NativeMirror, LockEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote lock."""

    _features = feature_flags("lock")

    @property
    def code_format(self) -> str | None:
        """The remote's (a code that does not match it is refused here already)."""
        value = self._str("code_format")
        if value is not None:
            try:
                re.compile(value)
            except re.error:
                self._bad("code_format", value)
                return None
        return value

    @property
    def is_locked(self) -> bool | None:
        """From the remote's state."""
        return self.state == "locked"

    @property
    def is_jammed(self) -> bool | None:
        """From the remote's state."""
        return self.state == "jammed"

    async_lock = forward("lock")
    async_unlock = forward("unlock")
    async_open = forward("open")


async_setup_entry = native_setup(LockMirror)
