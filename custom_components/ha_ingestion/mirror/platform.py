"""The platform of a mirrored domain: one setup for every domain a mirror is registered under.

Each top-level `<domain>.py` that hosts only mirrors re-exports this module's names; the domain
is the platform's own (`async_get_current_platform().domain`), so no module repeats it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import (
    AddConfigEntryEntitiesCallback,
    async_get_current_platform,
)

from .entity import NativeMirror

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252

# Read-only mirrors: no service call reaches the remote. Native mirrors forward calls over one
# link that runs them concurrently: no limit either.
PARALLEL_UPDATES = 0

type SetupEntry = Callable[
    [HomeAssistant, "HaIngestionConfigEntry", AddConfigEntryEntitiesCallback], Awaitable[None]
]


def native_setup(mirror: type[NativeMirror] | None) -> SetupEntry:
    """The platform setup of a domain whose mirrors are of the native class `mirror`.

    None: the domain's mirrors are read-only (`async_setup_entry` below).
    """

    async def async_setup_entry(
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        """The mirrors of this platform's domain (set up only while mirroring)."""
        domain = async_get_current_platform().domain
        entry.runtime_data.mirror.async_add_platform(domain, async_add_entities, mirror)

    return async_setup_entry


# The setup of a domain with read-only mirrors (`air_quality`, `event`).
async_setup_entry = native_setup(None)
