"""Select platform: mirrors of the remote's selects, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import str_list_or_empty

__all__ = ["PARALLEL_UPDATES", "SelectMirror", "async_setup_entry"]


class SelectMirror(NativeMirror, SelectEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote select."""

    options = str_list_or_empty("options")  # an option not among them: refused here already

    @property
    def current_option(self) -> str | None:
        """The remote's state."""
        return self.state

    async_select_option = forward("select_option", "option")
    # The remote's own first/last/next/previous (final in SelectEntity: it would compute the
    # option here and send select_option).
    async_first = forward("select_first")  # type: ignore[misc,unused-ignore]
    async_last = forward("select_last")  # type: ignore[misc,unused-ignore]
    async_next = forward("select_next", "cycle")  # type: ignore[misc,unused-ignore]
    async_previous = forward("select_previous", "cycle")  # type: ignore[misc,unused-ignore]


async_setup_entry = native_setup(SelectMirror)
