"""Image platform: mirrors of the remote's images, read from the remote's image proxy.

The image is read from the remote's `/api/image_proxy/<entity id>` with the link's token, so
this instance's own image proxy (the mirror's `entity_picture`) serves it.
"""

from __future__ import annotations

import collections
from datetime import datetime
from typing import Any

from homeassistant.components.image import ImageEntity
from homeassistant.util import dt as dt_util

from .mirror.entity import NativeMirror
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "ImageMirror", "async_setup_entry"]


class ImageMirror(NativeMirror, ImageEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote image entity."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """A mirror, and an image (its access tokens for this instance's proxy)."""
        NativeMirror.__init__(self, *args, **kwargs)
        self.access_tokens: collections.deque[str] = collections.deque(maxlen=2)
        self.async_update_token()

    @property
    def entity_picture(self) -> str | None:
        """This instance's image proxy (it reads the remote's)."""
        return f"/api/image_proxy/{self.entity_id}?token={self.access_tokens[-1]}"

    @property
    def image_last_updated(self) -> datetime | None:
        """The remote's state."""
        return None if self.state is None else dt_util.parse_datetime(self.state)

    async def async_image(self) -> bytes | None:
        """The remote's image, read through its image proxy."""
        if self._control is None:
            return None
        return await self._control.fetch(self.entity_id, f"/api/image_proxy/{self.remote_id}", {})


async_setup_entry = native_setup(ImageMirror)
