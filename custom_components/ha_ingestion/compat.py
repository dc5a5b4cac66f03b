"""What differs between the Home Assistant releases this integration supports (hacs.json floor … newest).

One place for every version difference; each note says from which floor release a shim can go.
"""

from __future__ import annotations

from homeassistant.helpers import entity_registry as er

# Schema validation runs on probatio from 2026.9 (`voluptuous` is an alias of it there). Can go when
# the floor reaches 2026.9: import probatio directly.
try:
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - Home Assistant before 2026.9
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

# Repairs flows have their own result type from 2026.x. Can go when the floor has it.
try:
    from homeassistant.components.repairs import (  # type: ignore[attr-defined, unused-ignore]
        RepairsFlowResult,
    )
except ImportError:  # pragma: no cover - Home Assistant before RepairsFlowResult
    from homeassistant.data_entry_flow import (  # type: ignore[assignment, unused-ignore]
        FlowResult as RepairsFlowResult,
    )

# BinarySensorDeviceClass lives in binary_sensor.const from 2026.x, re-exported (not explicitly) by the
# package. Can go when the floor has binary_sensor.const: import it from there.
from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined, unused-ignore]
    BinarySensorDeviceClass,
)

# Statistics import (mirror/gap_statistics.py): `StatisticMetaData` needs `mean_type` and `unit_class` on
# every supported release (2026.3 already; `has_mean` is deprecated), and `Recorder.async_import_statistics`
# (metadata, rows, table) has the same signature on both: nothing to shim. A remote older than
# mean_type (2025.x) answers `has_mean`; the engine reads either (client/remote_statistics.py).

# A config entry may hold at most so many enabled entities from 2026.x (entity_platform refuses the
# next new one, logging once that this is a bug to report). None before. Can go when the floor has
# it: import the constant and count with get_enabled_count_for_config_entry_id directly.
try:
    from homeassistant.helpers.entity_platform import (  # type: ignore[attr-defined, unused-ignore]
        MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY as _ENTITY_LIMIT,
    )
except ImportError:  # pragma: no cover - Home Assistant before the limit
    _ENTITY_LIMIT = None  # type: ignore[assignment, unused-ignore]
ENTITY_LIMIT: int | None = _ENTITY_LIMIT


def enabled_entities(registry: er.EntityRegistry, entry_id: str) -> int:
    """The enabled entities of a config entry, as the registry counts them against the limit."""
    count = getattr(registry.entities, "get_enabled_count_for_config_entry_id", None)
    if count is not None:
        return int(count(entry_id))
    return sum(  # pragma: no cover - Home Assistant before the limit (the floor's tests)
        1 for reg in er.async_entries_for_config_entry(registry, entry_id) if not reg.disabled
    )


__all__ = [
    "ENTITY_LIMIT",
    "BinarySensorDeviceClass",
    "RepairsFlowResult",
    "enabled_entities",
    "vol",
]
