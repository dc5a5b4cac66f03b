"""Sensors: link state, breaker, counters, timings, event flow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import BreakerState, ErrorCategory, LinkState
from .const import DOMAIN
from .coordinator import IngestionData
from .data import HaIngestionConfigEntry
from .entity import HaIngestionEntity

PARALLEL_UPDATES = 0

type SensorValue = str | int | float | datetime | None


@dataclass(frozen=True, kw_only=True)
class HaIngestionSensorDescription(SensorEntityDescription):
    """A sensor and how to read it."""

    value_fn: Callable[[IngestionData], SensorValue]
    attributes_fn: Callable[[IngestionData], dict[str, Any] | None] = lambda _: None
    throttled: bool = False


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _schedule_attributes(data: IngestionData) -> dict[str, Any]:
    """What the link does right now: waiting (why, how long, until when) or attempting."""
    snap = data.snapshot
    return {
        "waiting_for": None if snap.waiting_for is None else snap.waiting_for.value,
        "current_backoff": _rounded(snap.current_backoff, 3),
        "next_attempt": _iso(snap.next_attempt),
        "attempt_started": _iso(snap.attempt_started),
        "attempt_deadline": _iso(snap.attempt_deadline),
    }


# They change with every attempt: in the state machine for templates and the UI, not in the
# recorder (and, being attributes, never in the logbook).
SCHEDULE_ATTRIBUTES = frozenset(
    {"waiting_for", "current_backoff", "next_attempt", "attempt_started", "attempt_deadline"}
)
# Entities that used to exist; their registry entries are removed at setup.
REMOVED_SENSOR_KEYS = ("current_backoff", "next_attempt")


def _last_error_attributes(data: IngestionData) -> dict[str, Any] | None:
    error = data.snapshot.last_error
    if error is None:
        return None
    return {"message": error.message, "type": error.type, "time": error.time.isoformat()}


def _last_outage(data: IngestionData) -> float | None:
    """From the remote's last sign of life to the link's return (s); None when not known."""
    outage = data.capture.last_outage
    return None if outage is None else outage.length


def _last_outage_attributes(data: IngestionData) -> dict[str, Any] | None:
    """The outage's start and end, its detection and recovery (the log's numbers)."""
    outage = data.capture.last_outage
    return None if outage is None else outage.figures()


SENSORS: tuple[HaIngestionSensorDescription, ...] = (
    HaIngestionSensorDescription(
        key="connection_state",
        translation_key="connection_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in LinkState],
        value_fn=lambda data: data.snapshot.state.value,
        attributes_fn=_schedule_attributes,
    ),
    HaIngestionSensorDescription(
        key="circuit_breaker",
        translation_key="circuit_breaker",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in BreakerState],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.snapshot.breaker.state.value,
    ),
    HaIngestionSensorDescription(
        key="reconnect_count",
        translation_key="reconnect_count",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        # Reconnects before the last reload or restart come from the capture checkpoint.
        value_fn=lambda data: data.snapshot.reconnect_count + data.capture.reconnects_base,
    ),
    HaIngestionSensorDescription(
        key="consecutive_failures",
        translation_key="consecutive_failures",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.snapshot.consecutive_failures,
    ),
    HaIngestionSensorDescription(
        key="last_connected",
        translation_key="last_connected",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.snapshot.last_connected,
    ),
    HaIngestionSensorDescription(
        key="last_disconnected",
        translation_key="last_disconnected",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.snapshot.last_disconnected,
    ),
    HaIngestionSensorDescription(
        key="last_error",
        translation_key="last_error",
        device_class=SensorDeviceClass.ENUM,
        options=[category.value for category in ErrorCategory],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: (
            data.snapshot.last_error.category.value if data.snapshot.last_error else None
        ),
        attributes_fn=_last_error_attributes,
    ),
    HaIngestionSensorDescription(
        key="latency",
        translation_key="latency",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda data: (
            None
            if data.snapshot.last_ping_rtt is None
            else round(data.snapshot.last_ping_rtt * 1000, 2)
        ),
    ),
    HaIngestionSensorDescription(
        key="events_received",
        translation_key="events_received",
        state_class=SensorStateClass.TOTAL_INCREASING,
        throttled=True,
        value_fn=lambda data: data.events_received,
    ),
    HaIngestionSensorDescription(
        key="event_rate",
        translation_key="event_rate",
        native_unit_of_measurement="events/min",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        throttled=True,
        value_fn=lambda data: _rounded(data.event_rate, 1),
    ),
    HaIngestionSensorDescription(
        key="last_event",
        translation_key="last_event",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        throttled=True,
        value_fn=lambda data: data.last_event_time,
    ),
    HaIngestionSensorDescription(
        key="uptime",
        translation_key="uptime",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda data: _percent(data.snapshot.uptime_ratio),
    ),
    HaIngestionSensorDescription(
        key="average_reconnect_time",
        translation_key="average_reconnect_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda data: _rounded(data.snapshot.average_reconnect_time, 3),
    ),
    HaIngestionSensorDescription(
        key="reconnect_success_rate",
        translation_key="reconnect_success_rate",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda data: _percent(data.snapshot.reconnect_success_rate),
    ),
    HaIngestionSensorDescription(
        key="backfilled_changes",
        translation_key="backfilled_changes",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.capture.backfilled,
        attributes_fn=lambda data: {"backfill_available": data.capture.backfill_available},
    ),
    HaIngestionSensorDescription(
        key="last_gap",
        translation_key="last_gap",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_last_outage,
        attributes_fn=_last_outage_attributes,
    ),
    HaIngestionSensorDescription(
        key="dropped_events",
        translation_key="dropped_events",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        throttled=True,
        value_fn=lambda data: data.capture.overflow,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HaIngestionConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one link (and forget the ones that became attributes)."""
    coordinator = entry.runtime_data.coordinator
    registry = er.async_get(hass)
    for key in REMOVED_SENSOR_KEYS:
        unique_id = f"{entry.unique_id or entry.entry_id}_{key}"
        if entity_id := registry.async_get_entity_id("sensor", DOMAIN, unique_id):
            registry.async_remove(entity_id)
    async_add_entities(HaIngestionSensor(coordinator, description) for description in SENSORS)
    entry.runtime_data.mirror.async_add_platform("sensor", async_add_entities)


class HaIngestionSensor(HaIngestionEntity, SensorEntity):
    """A sensor of the link."""

    entity_description: HaIngestionSensorDescription
    _unrecorded_attributes = SCHEDULE_ATTRIBUTES

    def __init__(self, coordinator: Any, description: HaIngestionSensorDescription) -> None:
        """Throttle the sensors that move with every event."""
        super().__init__(coordinator, description)
        self._throttled = description.throttled

    @property
    def native_value(self) -> SensorValue:
        """The sensor's value."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details (e.g. the last error's message); one that does not apply now is left out.

        (The frontend would show it as "Unknown".)
        """
        attributes = self.entity_description.attributes_fn(self.coordinator.data)
        if attributes is None:
            return None
        return {key: value for key, value in attributes.items() if value is not None} or None
