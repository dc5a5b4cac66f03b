"""Diagnostics: everything about the link, no secrets."""

from __future__ import annotations

import json

from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.ha_ingestion.diagnostics import async_get_config_entry_diagnostics

from .conftest import wait_for
from .fake_ha import FakeHA

VOLATILE = (
    "time",
    "last_connected",
    "last_disconnected",
    "last_failed",
    "last_event_time",
    "next_attempt",
    "opened_at",
    "retry_at",
    "uptime_ratio",
    "last_ping_rtt",
    "average_reconnect_time",
    "url",
    "time_fired",
    "last_changed",
    "last_updated",
    "event_rate_per_minute",
    "start",
    "end",
    "duration",
    "message",
    "context",
    "last_reported",
)


async def test_diagnostics(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    fake_ha: FakeHA,
    snapshot: SnapshotAssertion,
) -> None:
    await fake_ha.fire_state_changed("input_boolean.porch", "on")
    supervisor = init_integration.runtime_data.coordinator.supervisor
    await wait_for(lambda: supervisor.snapshot().events_received == 1)
    await hass.async_block_till_done()

    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)

    text = json.dumps(diagnostics, default=str)
    assert fake_ha.token not in text
    assert diagnostics["entry"]["data"]["access_token"] == "**REDACTED**"
    assert diagnostics["snapshot"]["remote"]["user_id"] == "**REDACTED**"
    assert diagnostics["capture"]["events_by_type"] == {"state_changed": 1}
    assert "state_changed" in diagnostics["capture"]["last_event_by_type"]
    assert diagnostics["snapshot"]["subscriptions"][0]["confirmed"] is True
    # The snapshot holds for every Home Assistant release under test: only the version differs.
    assert diagnostics["versions"]["home_assistant"] == ha_version
    diagnostics["versions"]["home_assistant"] = "<home assistant version>"
    assert diagnostics == snapshot(exclude=props(*VOLATILE))


async def test_diagnostics_redacts_url_credentials(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    url = fake_ha.url.replace("ws://", "ws://admin:hunter2@")
    entry = MockConfigEntry(
        domain=mock_config_entry.domain,
        title="Creds",
        unique_id="other",
        data={**mock_config_entry.data, "url": url},
        options=mock_config_entry.options,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    text = json.dumps(await async_get_config_entry_diagnostics(hass, entry), default=str)
    assert "hunter2" not in text
    assert fake_ha.token not in text
    await hass.config_entries.async_unload(entry.entry_id)
