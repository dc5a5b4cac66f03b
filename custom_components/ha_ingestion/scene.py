"""Scene platform: mirrors of the remote's scenes, activated through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.scene import Scene

from .mirror.entity import NativeMirror, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "SceneMirror", "async_setup_entry"]


class SceneMirror(NativeMirror, Scene):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote scene: activated here, it is activated on the remote (`scene.turn_on`)."""

    async_activate = forward("turn_on")


async_setup_entry = native_setup(SceneMirror)
