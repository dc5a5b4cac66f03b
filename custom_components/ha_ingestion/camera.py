"""Camera platform: mirrors of the remote's cameras; stills read from the remote's camera proxy.

A still is read from the remote's `/api/camera_proxy/<entity id>` with the link's token, so this
instance's own camera proxy (the mirror's `entity_picture`, with this instance's access token)
serves it. Streams are not forwarded: a mirror does not support `stream` here (its
`supported_features` leaves that flag out), so the frontend shows stills.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.camera import Camera

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "CameraMirror", "async_setup_entry"]

STREAM = 2  # CameraEntityFeature.STREAM


class CameraMirror(NativeMirror, Camera):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote camera."""

    _features = feature_flags("camera")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """A mirror, and a camera (its access tokens for this instance's proxy)."""
        NativeMirror.__init__(self, *args, **kwargs)
        Camera.__init__(self)

    @property
    def supported_features(self) -> Any:
        """The remote's, without `stream` (not forwarded)."""
        features = super().supported_features
        return None if features is None else features & ~STREAM

    @property
    def entity_picture(self) -> str:
        """This instance's camera proxy (it reads the remote's)."""
        return f"/api/camera_proxy/{self.entity_id}?token={self.access_tokens[-1]}"

    @property
    def is_on(self) -> bool:
        """From the remote's state."""
        return self.state not in ("off", None)

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The remote's still, read through its camera proxy."""
        params = {
            key: str(value)
            for key, value in (("width", width), ("height", height))
            if value is not None
        }
        if self._control is None:
            return None
        return await self._control.fetch(
            self.entity_id, f"/api/camera_proxy/{self.remote_id}", params
        )

    async_turn_on = forward("turn_on")
    async_turn_off = forward("turn_off")
    async_enable_motion_detection = forward("enable_motion_detection")
    async_disable_motion_detection = forward("disable_motion_detection")


async_setup_entry = native_setup(CameraMirror)
