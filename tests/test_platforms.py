"""Entities of each platform, snapshot-tested, and their behaviour through the link's life."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from enum import StrEnum
import itertools
import time
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed_exact,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import DOMAIN

from .conftest import entry_device, link_state, linked_entry, wait_for
from .fake_ha import FakeHA


def _plain(value: Any) -> Any:
    """Plain data, the same on every Home Assistant release (enum keys, read-only mappings differ)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _stable(entry: er.RegistryEntry, state: State) -> dict[str, Any]:
    """What a user sees of an entity, without per-run ids and clock readings."""
    attributes = dict(state.attributes)
    value: Any = state.state
    if attributes.get("device_class") == "timestamp" and value not in {"unknown", "unavailable"}:
        value = "<timestamp>"
    if "time" in attributes:
        attributes["time"] = "<timestamp>"
    return _plain(
        {
            "entity_id": entry.entity_id,
            "unique_id": entry.unique_id,
            "translation_key": entry.translation_key,
            "original_name": entry.original_name,
            "entity_category": entry.entity_category,
            "original_device_class": entry.original_device_class,
            "unit_of_measurement": entry.unit_of_measurement,
            "capabilities": entry.capabilities,
            "options": dict(entry.options),
            "state": value,
            "attributes": attributes,
        }
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR])
async def test_platform_snapshot(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    fake_ha: FakeHA,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
    platform: Platform,
) -> None:
    freezer.move_to("2026-11-28T12:00:00+00:00")
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.ha_ingestion.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        await wait_for(lambda: link_state(mock_config_entry) is LinkState.CONNECTED)
        mock_config_entry.runtime_data.coordinator.async_publish()
        await hass.async_block_till_done()
        entries = er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id)
        assert {entry.domain for entry in entries} == {platform.value}
        for entry in entries:
            state = hass.states.get(entry.entity_id)
            assert state is not None
            assert _stable(entry, state) == snapshot(name=entry.entity_id)
        await hass.config_entries.async_unload(mock_config_entry.entry_id)


async def test_device(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    device = entry_device(device_registry, init_integration)
    assert device.name == "Remote Home"
    assert device.manufacturer == "Home Assistant"
    assert device.sw_version == "2025.4.4"
    assert device.configuration_url is not None
    assert device.configuration_url.startswith("http://127.0.0.1:")


async def test_entities_report_the_link_down_and_back(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    assert hass.states.get("binary_sensor.remote_home_connected").state == STATE_ON
    assert hass.states.get("sensor.remote_home_connection_state").state == "connected"

    await fake_ha.go_down()
    await wait_for(lambda: link_state(init_integration) is not LinkState.CONNECTED)
    await hass.async_block_till_done()
    connected = hass.states.get("binary_sensor.remote_home_connected")
    assert connected.state == STATE_OFF  # never "unavailable": automations can trigger on it
    assert hass.states.get("sensor.remote_home_connection_state").state in {
        "reconnecting",
        "connecting",
    }
    assert hass.states.get("sensor.remote_home_last_error").state == "network"
    assert hass.states.get("sensor.remote_home_last_error").attributes["message"]
    assert hass.states.get("sensor.remote_home_last_disconnected").state not in {
        "unknown",
        "unavailable",
    }

    await fake_ha.go_up()
    await wait_for(lambda: link_state(init_integration) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.remote_home_connected").state == STATE_ON
    assert hass.states.get("sensor.remote_home_reconnects").state == "1"


async def test_reconnect_button_makes_an_immediate_attempt(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    before = len(fake_ha.ready_connections)
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.remote_home_reconnect"}, blocking=True
    )
    await wait_for(lambda: len(fake_ha.ready_connections) == before + 1)
    await wait_for(lambda: link_state(init_integration) is LinkState.CONNECTED)


async def _spin_until(predicate: Callable[[], bool], rounds: int = 2_000_000) -> None:
    """Let the loop run (sockets keep flowing while the clock stands still) until `predicate`.

    Bounded by rounds, not by time: the clock is frozen.
    """
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def _advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Move the frozen clock and run exactly the timers that are due by then."""
    freezer.tick(seconds)
    async_fire_time_changed_exact(hass)
    await hass.async_block_till_done()


async def test_counters_are_written_at_most_once_per_second(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    fake_ha: FakeHA,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Bursts of events: each counter entity is written at most once per second.

    The clock is frozen and moved by hand (HA's time helpers), so the outcome does not depend on
    how fast this machine runs the burst: events keep arriving over the socket while no time
    passes, and writes happen only when the test moves the clock past the throttle.
    """
    from custom_components.ha_ingestion.entity import HaIngestionEntity

    watched = ("sensor.remote_home_events_received", "sensor.remote_home_event_rate")
    writes: dict[str, list[float]] = {entity_id: [] for entity_id in watched}
    original = HaIngestionEntity.async_write_ha_state

    def _recording(self: HaIngestionEntity) -> None:
        if self.entity_id in writes:
            writes[self.entity_id].append(time.monotonic())  # the frozen clock
        original(self)

    engine = init_integration.runtime_data.coordinator.engine
    await _advance(hass, freezer, 10)  # well past any write made during setup
    with patch.object(HaIngestionEntity, "async_write_ha_state", _recording):
        start = time.monotonic()
        await fake_ha.fire_events(
            ("state_changed", {"entity_id": f"sensor.burst_{n % 10}", "n": n}) for n in range(1000)
        )
        await _spin_until(lambda: engine.snapshot().events_received == 1000)
        await hass.async_block_till_done()
        # 1,000 events and no time passed: nothing written yet.
        assert writes == {entity_id: [] for entity_id in watched}

        await _advance(hass, freezer, 0.5)
        assert writes == {entity_id: [] for entity_id in watched}
        await _advance(hass, freezer, 0.5)  # one second after the first event
        assert writes == {entity_id: [start + 1.0] for entity_id in watched}
        assert hass.states.get("sensor.remote_home_events_received").state == "1000"

        # A second burst right after the write: held back until a second has passed.
        await fake_ha.fire_events(
            ("state_changed", {"entity_id": "sensor.burst", "n": n}) for n in range(500)
        )
        await _spin_until(lambda: engine.snapshot().events_received == 1500)
        await _advance(hass, freezer, 0.9)
        assert all(len(times) == 1 for times in writes.values()), writes
        await _advance(hass, freezer, 0.1)
        assert writes == {entity_id: [start + 1.0, start + 2.0] for entity_id in watched}
        assert hass.states.get("sensor.remote_home_events_received").state == "1500"

        # Any other update within the second (a link change) is deferred to the second's end.
        await _advance(hass, freezer, 0.25)
        init_integration.runtime_data.coordinator.async_publish()
        await hass.async_block_till_done()
        assert all(len(times) == 2 for times in writes.values()), writes
        await _advance(hass, freezer, 0.75)
        assert writes == {
            entity_id: [start + 1.0, start + 2.0, start + 3.0] for entity_id in watched
        }
    for times in writes.values():
        for earlier, later in itertools.pairwise(times):
            assert later - earlier >= 1.0


async def test_link_entities_are_not_rewritten_by_event_traffic(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """Only the counters follow events; the link entities are written when the link changes."""
    from custom_components.ha_ingestion.binary_sensor import HaIngestionBinarySensor

    writes: list[str] = []
    original = HaIngestionBinarySensor.async_write_ha_state

    def _counting(self: HaIngestionBinarySensor) -> None:
        writes.append(self.entity_id)
        original(self)

    coordinator = init_integration.runtime_data.coordinator
    with patch.object(HaIngestionBinarySensor, "async_write_ha_state", _counting):
        await fake_ha.fire_events(
            ("state_changed", {"entity_id": "sensor.x", "n": n}) for n in range(200)
        )
        await wait_for(lambda: coordinator.data.snapshot.events_received == 200)
        await wait_for(lambda: coordinator.data.counters_only)
        assert writes == []
        await fake_ha.close_all()  # a link change is written at once
        await wait_for(lambda: "binary_sensor.remote_home_connected" in writes)


async def test_schedule_is_an_attribute_of_connection_state(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    entry = linked_entry(fake_ha, base_delay=30.0, max_delay=60.0)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    fake_ha.refuse = True  # accepted and dropped: a real failure, then a 30 s wait (no jitter)
    await fake_ha.close_all(1011)
    await wait_for(lambda: entry.runtime_data.coordinator.engine.snapshot().current_backoff)
    await hass.async_block_till_done()
    state = hass.states.get("sensor.remote_home_connection_state")
    assert state.state == "reconnecting"
    assert state.attributes["waiting_for"] == "backoff"
    assert state.attributes["current_backoff"] == 30.0
    assert state.attributes["next_attempt"] is not None
    assert "attempt_started" not in state.attributes  # does not apply while waiting: left out
    # Changes with every attempt: kept out of the recorder (and attributes never reach the
    # logbook); the entities that used to carry it are gone.
    entity = hass.data["sensor"].get_entity("sensor.remote_home_connection_state")
    assert {"waiting_for", "current_backoff", "next_attempt"} <= entity._unrecorded_attributes
    assert hass.states.get("sensor.remote_home_next_attempt") is None
    assert hass.states.get("sensor.remote_home_current_backoff") is None
    assert hass.states.get("sensor.remote_home_latency") is None or (
        hass.states.get("sensor.remote_home_latency").state == "unknown"
    )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_entities_that_became_attributes_are_removed_from_the_registry(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    fake_ha: FakeHA,
    entity_registry: er.EntityRegistry,
) -> None:
    mock_config_entry.add_to_hass(hass)
    for key in ("next_attempt", "current_backoff"):
        entity_registry.async_get_or_create(
            "sensor", DOMAIN, f"{fake_ha.user_id}_{key}", config_entry=mock_config_entry
        )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    for key in ("next_attempt", "current_backoff"):
        unique_id = f"{fake_ha.user_id}_{key}"
        assert entity_registry.async_get_entity_id("sensor", DOMAIN, unique_id) is None
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
