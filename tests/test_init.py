"""Setup, unload, reload, HA stop, authentication failures."""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components import ha_ingestion
from custom_components.ha_ingestion.client import ErrorCategory, LinkState
from custom_components.ha_ingestion.const import (
    CONF_REJECTED_TOKEN,
    DOMAIN,
)
from custom_components.ha_ingestion.token_gate import token_fingerprint

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
    # The entry loads (its entities report the failure: Connected off, never unavailable).
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert link_state(mock_config_entry) is LinkState.FAILED
    assert hass.states.get(CONNECTED).state == STATE_OFF
    assert hass.states.get("sensor.remote_home_connection_state").state == "failed"
    assert hass.states.get("sensor.remote_home_last_error").state == "authentication"
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert fake_ha.auth_invalid_count == 1
    # Remembered durably, as a fingerprint (never the token itself).
    token = mock_config_entry.data["access_token"]
    assert mock_config_entry.data[CONF_REJECTED_TOKEN] == token_fingerprint(token)
    assert token not in mock_config_entry.data[CONF_REJECTED_TOKEN]
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert not _ha_ingestion_tasks()


async def test_a_rejected_token_is_never_sent_again_after_reloads_and_restarts(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    fake_ha: FakeHA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_ha.token = "another-token"  # the entry's token was revoked
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert fake_ha.auth_invalid_count == 1
    # Nothing to wait for: setup must not hold Home Assistant for the first-attempt wait (were it
    # waited, these reloads would hang for an hour).
    monkeypatch.setattr(ha_ingestion, "FIRST_ATTEMPT_WAIT", 3600.0)
    for _ in range(2):  # a reload, and an unload + setup as at a restart
        async with asyncio.timeout(60):
            assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        assert mock_config_entry.state is ConfigEntryState.LOADED
        assert link_state(mock_config_entry) is LinkState.FAILED
        assert hass.states.get(CONNECTED).state == STATE_OFF
        assert hass.states.get("sensor.remote_home_last_error").state == "authentication"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    # The reconnect button does not send it either: it asks for a new token instead.
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.remote_home_reconnect"}, blocking=True
    )
    await hass.async_block_till_done()
    assert fake_ha.auth_invalid_count == 1  # exactly one failed login on the remote, ever
    assert fake_ha.upgrade_count == 1  # nor even a connection
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]

    # A new token (what reauth stores): sent, accepted, and the rejection is forgotten.
    fake_ha.token = "new-token"
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, "access_token": "new-token"}
    )
    assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await wait_for(lambda: link_state(mock_config_entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert CONF_REJECTED_TOKEN not in mock_config_entry.data
    assert hass.states.get(CONNECTED).state == STATE_ON


async def test_auth_failure_at_runtime_starts_reauth_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    fake_ha.token = "revoked-and-replaced"
    await fake_ha.close_all()
    await wait_for(lambda: link_state(init_integration) is LinkState.FAILED)
    await hass.async_block_till_done()
    snapshot = init_integration.runtime_data.coordinator.engine.snapshot()
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
