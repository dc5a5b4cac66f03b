"""Setup, unload, reload, HA stop, authentication failures."""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.client import ErrorCategory, LinkState
from custom_components.ha_ingestion.const import DOMAIN

from .conftest import link_state, wait_for
from .fake_ha import FakeHA

CONNECTED = "binary_sensor.remote_home_connected"


def _ha_ingestion_tasks() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("ha_ingestion") and not task.done()
    ]


async def test_setup_connects_and_unload_closes(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get(CONNECTED).state == STATE_ON
    assert fake_ha.last_connection is not None
    assert fake_ha.last_connection.subscriptions == ["state_changed"]

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    await wait_for(lambda: not fake_ha.open_connections)
    assert not _ha_ingestion_tasks()


async def test_setup_does_not_wait_for_a_down_remote(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    await fake_ha.go_down()
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    # The health entities exist and report the link down instead of going unavailable.
    state = hass.states.get(CONNECTED)
    assert state is not None
    assert state.state == STATE_OFF

    await fake_ha.go_up()
    await wait_for(lambda: link_state(mock_config_entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert hass.states.get(CONNECTED).state == STATE_ON


async def test_auth_failure_at_setup_starts_reauth(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    fake_ha.token = "another-token"
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert fake_ha.auth_invalid_count == 1
    assert not _ha_ingestion_tasks()


async def test_auth_failure_at_runtime_starts_reauth_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    fake_ha.token = "revoked-and-replaced"
    await fake_ha.close_all()
    await wait_for(lambda: link_state(init_integration) is LinkState.FAILED)
    await hass.async_block_till_done()
    snapshot = init_integration.runtime_data.coordinator.supervisor.snapshot()
    assert snapshot.last_error is not None
    assert snapshot.last_error.category is ErrorCategory.AUTHENTICATION
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    # Never retried on its own: one failed authentication, however long we wait.
    await asyncio.sleep(0.3)
    assert fake_ha.auth_invalid_count == 1
    assert hass.states.get(CONNECTED).state == STATE_OFF


async def test_home_assistant_stop_closes_the_link(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert link_state(init_integration) is LinkState.DISCONNECTED
    await wait_for(lambda: not fake_ha.open_connections)
