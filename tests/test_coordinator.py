"""Coordinator: periodic refresh, event rate window, device version follows the remote."""

from __future__ import annotations

from datetime import timedelta
import logging

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.ha_ingestion import coordinator as coordinator_module
from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import DOMAIN

from .conftest import entry_device, link_state, linked_entry, wait_for
from .fake_ha import FakeHA


async def test_event_rate_decays_to_zero_when_events_stop(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    fake_ha: FakeHA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [coordinator_module.monotonic() + 1]  # after every sample taken so far
    monkeypatch.setattr(coordinator_module, "monotonic", lambda: clock[0])
    coordinator = init_integration.runtime_data.coordinator
    engine = coordinator.engine

    await fake_ha.fire_events(
        ("state_changed", {"entity_id": "sensor.x", "n": n}) for n in range(30)
    )
    await wait_for(lambda: engine.snapshot().events_received == 30)
    clock[0] += 2
    await wait_for(lambda: coordinator._pending_publish is None)  # the throttled publish ran
    await hass.async_block_till_done()
    assert coordinator.data.event_rate is not None
    assert coordinator.data.event_rate > 0

    # No more events: the periodic refresh keeps the rate current until it reaches 0.
    for tick in range(1, 15):
        clock[0] += 5
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=5 * tick))
        await hass.async_block_till_done()
    assert coordinator.data.event_rate == 0.0
    await wait_for(lambda: hass.states.get("sensor.remote_home_event_rate").state == "0.0")


async def test_publish_now_supersedes_a_pending_throttled_publish(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    await fake_ha.fire_state_changed("input_boolean.porch", "on")
    await wait_for(lambda: coordinator._pending_publish is not None)
    coordinator.async_publish()
    assert coordinator._pending_publish is None
    assert coordinator.data.snapshot.events_received == 1


async def test_device_version_follows_the_remote(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    fake_ha: FakeHA,
    device_registry: dr.DeviceRegistry,
) -> None:
    fake_ha.version = "2026.11.0"
    await fake_ha.close_all()
    await wait_for(lambda: fake_ha.auth_ok_count >= 2)
    await wait_for(lambda: link_state(init_integration) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    device = entry_device(device_registry, init_integration)
    assert device.sw_version == "2026.11.0"


async def test_engine_loop_is_the_entrys_background_task(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    engine = init_integration.runtime_data.coordinator.engine
    task = engine._task
    assert task is not None
    assert task in init_integration._background_tasks  # tracked (and cancelled) by HA


async def test_forbidden_is_retried_with_a_repair_never_a_reauth(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    issues = ir.async_get(hass)
    issue_id = f"forbidden_{init_integration.entry_id}"
    fake_ha.http_status = 403  # an IP ban on the remote, or a proxy rule
    await fake_ha.close_all(1011)
    engine = init_integration.runtime_data.coordinator.engine
    await wait_for(lambda: engine.snapshot().failed_connections >= 2)
    await hass.async_block_till_done()
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "forbidden"
    assert issue.translation_placeholders == {"remote": "Remote Home"}
    assert link_state(init_integration) is LinkState.RECONNECTING  # retried, not failed
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)  # no reauth
    assert hass.states.get("sensor.remote_home_last_error").state == "forbidden"

    fake_ha.http_status = None
    await wait_for(lambda: link_state(init_integration) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_forbidden_repair_goes_with_the_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    issues = ir.async_get(hass)
    issue_id = f"forbidden_{init_integration.entry_id}"
    fake_ha.http_status = 403
    await fake_ha.close_all(1011)
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_refused_subscription_leaves_the_link_up_with_a_repair(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    fake_ha.fail_subscriptions = {"call_service"}  # admin-only for this token
    entry = linked_entry(fake_ha, event_types=["state_changed", "call_service"])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.remote_home_connected").state == "on"
    active = hass.states.get("binary_sensor.remote_home_subscriptions_active")
    assert active.state == "off"
    assert list(active.attributes["refused"]) == ["call_service"]
    issues = ir.async_get(hass)
    issue_id = f"subscription_refused_{entry.entry_id}"
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["event_types"] == "call_service"
    assert "Unauthorized" in issue.translation_placeholders["error"]

    # The user fixes it (an admin token, say): next connection accepts both, the repair goes.
    fake_ha.fail_subscriptions = set()
    fake_ha.expected_subscriptions = 2
    engine = entry.runtime_data.coordinator.engine
    await engine.reconnect()
    await wait_for(lambda: engine.snapshot().subscriptions_confirmed)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get("binary_sensor.remote_home_subscriptions_active").state == "on"

    fake_ha.fail_subscriptions = {"call_service"}
    await engine.reconnect()
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # goes with the entry


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
