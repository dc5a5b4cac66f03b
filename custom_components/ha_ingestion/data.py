"""Typed runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

if TYPE_CHECKING:
    from .capture import EventCapture
    from .client import LinkEngine, TokenGate
    from .coordinator import HaIngestionCoordinator
    from .mirror import EntityMirror


@dataclass(kw_only=True)
class HaIngestionRuntimeData:
    """What a loaded entry owns: the engine, the paths fed by it, and the entities' coordinator.

    Data flows one way: the engine feeds capture and mirror (each given it at construction);
    the coordinator reads the engine's snapshots and capture's totals for the entities. The token
    gate is shared by every connection that sends the entry's token (token_gate.py).
    """

    engine: LinkEngine
    capture: EventCapture
    mirror: EntityMirror
    coordinator: HaIngestionCoordinator
    token_gate: TokenGate


type HaIngestionConfigEntry = ConfigEntry[HaIngestionRuntimeData]
