"""Binary sensors: is the link up, are all subscriptions confirmed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .compat import BinarySensorDeviceClass
from .coordinator import IngestionData
from .data import HaIngestionConfigEntry
from .entity import HaIngestionEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HaIngestionBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor and how to read it."""

    is_on_fn: Callable[[IngestionData], bool]
    attributes_fn: Callable[[IngestionData], dict[str, Any] | None] = lambda _: None


BINARY_SENSORS: tuple[HaIngestionBinarySensorDescription, ...] = (
    HaIngestionBinarySensorDescription(
        key="connected",
        translation_key="connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        is_on_fn=lambda data: data.snapshot.connected,
    ),
    HaIngestionBinarySensorDescription(
        key="subscription_active",
        translation_key="subscription_active",
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda data: data.snapshot.connected and data.snapshot.subscriptions_confirmed,
        attributes_fn=lambda data: (
            {"refused": {s.event_type: s.refused for s in data.snapshot.subscriptions if s.refused}}
            if data.snapshot.refused_subscriptions
            else None
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HaIngestionConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of one link."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        HaIngestionBinarySensor(coordinator, description) for description in BINARY_SENSORS
    )
    entry.runtime_data.mirror.async_add_platform("binary_sensor", async_add_entities)


class HaIngestionBinarySensor(HaIngestionEntity, BinarySensorEntity):
    """A binary sensor of the link."""

    entity_description: HaIngestionBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """On or off, never unavailable."""
        return self.entity_description.is_on_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details (e.g. which subscriptions the remote refused)."""
        return self.entity_description.attributes_fn(self.coordinator.data)
