"""Typed runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

if TYPE_CHECKING:
    from .capture import EventCapture
    from .coordinator import HaIngestionCoordinator
    from .mirror import EntityMirror


@dataclass(kw_only=True)
class HaIngestionRuntimeData:
    """What a loaded entry owns."""

    coordinator: HaIngestionCoordinator
    capture: EventCapture
    mirror: EntityMirror


type HaIngestionConfigEntry = ConfigEntry[HaIngestionRuntimeData]
