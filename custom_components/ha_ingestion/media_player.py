"""Media player platform: mirrors of the remote's media players, controlled through the link.

Media browsing is the remote's (its `browse_media` response, as it tells it: thumbnails are paths
on the remote). Media search and the media image proxy are not forwarded (README, domain table):
the remote's `entity_picture` is shown as the remote tells it.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.media_player import MediaPlayerEntity
from homeassistant.components.media_player.browse_media import BrowseMedia

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import bool_attr, float_attr, str_list_attr

__all__ = ["PARALLEL_UPDATES", "MediaPlayerMirror", "async_setup_entry"]


class MediaPlayerMirror(NativeMirror, MediaPlayerEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote media player."""

    _features = feature_flags("media_player")

    volume_level = float_attr("volume_level", 0, 1)
    is_volume_muted = bool_attr("is_volume_muted")
    source_list = str_list_attr("source_list")
    sound_mode_list = str_list_attr("sound_mode_list")
    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_toggle = forward("toggle")
    async_volume_up = forward("volume_up")
    async_volume_down = forward("volume_down")
    async_media_play_pause = forward("media_play_pause")
    async_media_play = forward("media_play")
    async_media_pause = forward("media_pause")
    async_media_stop = forward("media_stop")
    async_media_next_track = forward("media_next_track")
    async_media_previous_track = forward("media_previous_track")
    async_clear_playlist = forward("clear_playlist")

    async def async_set_volume_level(self, volume: float) -> None:
        """On the remote, with the service's own field name."""
        await self._forward("volume_set", {"volume_level": volume})

    async def async_mute_volume(self, mute: bool) -> None:
        """On the remote, with the service's own field name."""
        await self._forward("volume_mute", {"is_volume_muted": mute})

    async def async_media_seek(self, position: float) -> None:
        """On the remote, with the service's own field name."""
        await self._forward("media_seek", {"seek_position": position})

    async_select_source = forward("select_source", "source")
    async_select_sound_mode = forward("select_sound_mode", "sound_mode")
    async_set_shuffle = forward("shuffle_set", "shuffle")
    async_set_repeat = forward("repeat_set", "repeat")
    async_unjoin_player = forward("unjoin")

    async def async_play_media(self, media_type: Any, media_id: str, **kwargs: Any) -> None:
        """On the remote, with the service's own field names."""
        await self._forward(
            "play_media",
            {"media_content_type": media_type, "media_content_id": media_id, **kwargs},
        )

    async def async_join_players(self, group_members: list[str]) -> None:
        """On the remote: mirrors of this link named by their remote entity ids."""
        control = self._control
        members = [
            (control.remote_entity_id(member) if control else None) or member
            for member in group_members
        ]
        await self._forward("join", {"group_members": members})

    async def async_browse_media(
        self, media_content_type: Any = None, media_content_id: str | None = None
    ) -> BrowseMedia:
        """The remote's media library at this node (its `browse_media` response)."""
        node = {"media_content_type": media_content_type, "media_content_id": media_content_id}
        answer = await self._forward(
            "browse_media",
            {k: v for k, v in node.items() if v is not None},
            response=True,
            read=True,
        )
        if not isinstance(answer, dict) or not answer:
            self._bad("browse_media", answer)
            return RemoteBrowseMedia({})
        return RemoteBrowseMedia(answer)

    async def async_internal_search_media(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override,misc,unused-ignore]  # refused
        """Not forwarded: refused with a translated error."""
        return await self._refuse_unforwarded("media search")


class RemoteBrowseMedia(BrowseMedia):
    """A node of the remote's media library, as the remote answered it."""

    def __init__(self, node: dict[str, Any]) -> None:
        """Keep the remote's answer; the typed fields as far as it tells them."""
        super().__init__(
            media_class=str(node.get("media_class") or "directory"),
            media_content_id=str(node.get("media_content_id") or ""),
            media_content_type=str(node.get("media_content_type") or ""),
            title=str(node.get("title") or ""),
            can_play=node.get("can_play") is True,
            can_expand=node.get("can_expand") is True,
        )
        self.node = node

    def as_dict(self, *, parent: bool = True) -> dict[str, Any]:
        """The remote's answer as it is."""
        return dict(self.node)


async_setup_entry = native_setup(MediaPlayerMirror)
