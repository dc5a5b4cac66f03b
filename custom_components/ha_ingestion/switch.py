"""Switch platform: only mirrored remote switches (read-only, see mirror/)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import HaIngestionConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HaIngestionConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Mirrored switches of one link (set up only while mirroring)."""
    entry.runtime_data.mirror.async_add_platform("switch", async_add_entities)
