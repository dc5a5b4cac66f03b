"""The platform of a mirrored domain: one setup for every domain a mirror is registered under.

Each top-level `<domain>.py` that hosts only mirrors re-exports this module's names; the domain
is the platform's own (`async_get_current_platform().domain`), so no module repeats it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import (
    AddConfigEntryEntitiesCallback,
    async_get_current_platform,
)

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252

# Mirrors are read-only: no service call reaches the remote, nothing to serialize.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HaIngestionConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The mirrors of this platform's domain (set up only while mirroring)."""
    domain = async_get_current_platform().domain
    entry.runtime_data.mirror.async_add_platform(domain, async_add_entities)
