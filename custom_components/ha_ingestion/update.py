"""Update platform: mirrors of the remote's updates, installed and skipped through the link.

Skipping is the remote's (its entity remembers the skipped version), and so are the release
notes (the remote's `update/release_notes` command).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.update import UpdateEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import bool_attr, bool_attr_or, str_attr

__all__ = ["PARALLEL_UPDATES", "UpdateMirror", "async_setup_entry"]


class UpdateMirror(NativeMirror, UpdateEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote update entity."""

    _features = feature_flags("update")

    installed_version = str_attr("installed_version")
    latest_version = str_attr("latest_version")
    auto_update = bool_attr_or("auto_update", False)
    in_progress = bool_attr("in_progress")
    title = str_attr("title")
    release_summary = str_attr("release_summary")
    release_url = str_attr("release_url")

    async def async_install(self, version: str | None, backup: bool, **kwargs: Any) -> None:
        """On the remote (a backup only when asked for)."""
        data: dict[str, Any] = {}
        if version is not None:
            data["version"] = version
        if backup:
            data["backup"] = True
        await self._forward("install", data)

    # Final in UpdateEntity (they keep the skipped version here): the remote's entity keeps it.
    async_skip = forward("skip")  # type: ignore[misc,unused-ignore]
    async_clear_skipped = forward("clear_skipped")  # type: ignore[misc,unused-ignore]

    async def async_release_notes(self) -> str | None:
        """The remote's release notes of the entity."""
        if self._control is None:
            return None
        notes = await self._control.command(
            self.entity_id, {"type": "update/release_notes", "entity_id": self.remote_id}
        )
        return notes if isinstance(notes, str) else None


async_setup_entry = native_setup(UpdateMirror)
