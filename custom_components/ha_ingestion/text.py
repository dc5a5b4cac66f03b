"""Text platform: mirrors of the remote's texts, set through the link (see mirror/)."""

from __future__ import annotations

import re

from homeassistant.components.text import TextEntity, TextMode

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "TextMirror", "async_setup_entry"]


class TextMirror(NativeMirror, TextEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote text: its length and pattern checked here as for a local one."""

    @property
    def native_value(self) -> str | None:
        """The remote's state."""
        return self.state

    @property
    def native_min(self) -> int:
        """The remote's."""
        value = self._int("min", 0)
        return super().native_min if value is None else value

    @property
    def native_max(self) -> int:
        """The remote's."""
        value = self._int("max", 0)
        return super().native_max if value is None else value

    @property
    def pattern(self) -> str | None:
        """The remote's (one that is no valid expression here: none)."""
        value = self._str("pattern")
        if value is not None:
            try:
                re.compile(value)
            except re.error:
                self._bad("pattern", value)
                return None
        return value

    @property
    def mode(self) -> TextMode:
        """The remote's."""
        return self._enum("mode", TextMode) or TextMode.TEXT

    async_set_value = forward("set_value", "value")


async_setup_entry = native_setup(TextMirror)
