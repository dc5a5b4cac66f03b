"""Switch platform: mirrors of the remote's switches, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.switch import SwitchEntity

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "SwitchMirror", "async_setup_entry"]


class SwitchMirror(NativeMirror, SwitchEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote switch."""

    @property
    def is_on(self) -> bool | None:
        """From the remote's state."""
        return self._is_on()

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")


async_setup_entry = native_setup(SwitchMirror)
