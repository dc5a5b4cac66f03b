"""`homeassistant.update_entity` on any of the link's entities refreshes it (push coordinator)."""

from __future__ import annotations

import logging

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry


async def test_update_entity_refreshes_without_error(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await async_setup_component(hass, "homeassistant", {})
    coordinator = init_integration.runtime_data.coordinator
    published: list[object] = []

    @callback
    def _listener() -> None:
        published.append(coordinator.data)

    remove = coordinator.async_add_listener(_listener)
    entity_ids = [
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            er.async_get(hass), init_integration.entry_id
        )
        if entry.disabled_by is None
    ]
    assert "sensor.remote_home_connection_state" in entity_ids
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": entity_ids}, blocking=True
    )
    await hass.async_block_till_done()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert coordinator.last_update_success
    assert published  # the entities got the current snapshot
    assert published[-1].snapshot.connected
    remove()
