"""Text platform: mirrors of the remote's texts, set through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.text import TextEntity, TextMode

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import enum_attr_or, int_or_base, pattern_attr

__all__ = ["PARALLEL_UPDATES", "TextMirror", "async_setup_entry"]


class TextMirror(NativeMirror, TextEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote text: its length and pattern checked here as for a local one."""

    @property
    def native_value(self) -> str | None:
        """The remote's state."""
        return self.state

    native_min = int_or_base("min", 0)
    native_max = int_or_base("max", 0)
    pattern = pattern_attr("pattern")
    mode = enum_attr_or("mode", TextMode, TextMode.TEXT)
    async_set_value = forward("set_value", "value")


async_setup_entry = native_setup(TextMirror)
