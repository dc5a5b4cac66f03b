"""Siren platform: mirrors of the remote's sirens, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.siren import SirenEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import on_off_state

__all__ = ["PARALLEL_UPDATES", "SirenMirror", "async_setup_entry"]


class SirenMirror(NativeMirror, SirenEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote siren."""

    _features = feature_flags("siren")

    is_on = on_off_state()

    @property
    def available_tones(self) -> list[int | str] | dict[int, str] | None:
        """The remote's (a list, or a mapping of tone ids to names)."""
        value = self._raw("available_tones")
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, dict):
            return {int(k) if str(k).isdigit() else k: v for k, v in value.items()}
        self._bad("available_tones", value)
        return None

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")


async_setup_entry = native_setup(SirenMirror)
