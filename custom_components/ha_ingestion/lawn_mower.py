"""Lawn mower platform: mirrors of the remote's lawn mowers, controlled through the link (see mirror/)."""

from __future__ import annotations

from homeassistant.components.lawn_mower import LawnMowerEntity

from .mirror.entity import NativeMirror, feature_flags, forward
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "LawnMowerMirror", "async_setup_entry"]


class LawnMowerMirror(NativeMirror, LawnMowerEntity):  # type: ignore[misc,unused-ignore]  # state and attributes: the remote's
    """A remote lawn mower."""

    _features = feature_flags("lawn_mower")

    async_start_mowing = forward("start_mowing")
    async_pause = forward("pause")
    async_dock = forward("dock")
    async_stop = forward("stop")  # a service of earlier releases


async_setup_entry = native_setup(LawnMowerMirror)
