"""Base entity: one device per remote Home Assistant; health entities never go unavailable."""

from __future__ import annotations

import time
from typing import Any

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, THROTTLE_SECONDS
from .coordinator import HaIngestionCoordinator
from .remote_url import configuration_url


class HaIngestionEntity(CoordinatorEntity[HaIngestionCoordinator]):
    """An entity describing the link to one remote."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HaIngestionCoordinator, description: EntityDescription) -> None:
        """Attach to the entry's device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.unique_id or entry.entry_id}_{description.key}"
        remote = coordinator.data.snapshot.remote
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="Home Assistant",
            model="Remote instance",
            sw_version=remote.version if remote else None,
            configuration_url=configuration_url(entry.data["url"]),
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def available(self) -> bool:
        """Always: these entities report the link, including when it is down."""
        return True

    # Entities whose value moves with every remote event set this: their state is written at
    # most once per THROTTLE_SECONDS, whatever the event rate, so the recorder is not flooded.
    _throttled = False
    _last_write = 0.0
    _deferred: CALLBACK_TYPE | None = None

    @callback
    def _handle_coordinator_update(self) -> None:
        if not self._throttled:
            if not self.coordinator.data.counters_only:
                self.async_write_ha_state()
            return
        if self._deferred is not None:
            return  # a write is already scheduled and will carry the newest data
        wait = self._last_write + THROTTLE_SECONDS - time.monotonic()
        if wait <= 0:
            self._write_now()
            return
        self._deferred = async_call_later(self.hass, wait, self._deferred_write)

    @callback
    def _deferred_write(self, _now: Any) -> None:
        self._deferred = None
        self._write_now()

    @callback
    def _write_now(self) -> None:
        self._last_write = time.monotonic()
        self.async_write_ha_state()

    async def async_will_remove_from_hass(self) -> None:
        """Cancel a pending write."""
        if self._deferred is not None:
            self._deferred()
            self._deferred = None
        await super().async_will_remove_from_hass()
