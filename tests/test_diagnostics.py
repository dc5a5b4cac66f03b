"""Diagnostics: everything about the link, no secrets."""

from __future__ import annotations

import json

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL, __version__ as ha_version
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.ha_ingestion.const import (
    CONF_DISCOVERY_URL,
    CONF_EVENT_TYPES,
    CONF_REMOTE_USER_ID,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from custom_components.ha_ingestion.diagnostics import (
    _host_pattern,
    _scrub,
    async_get_config_entry_diagnostics,
)

from .conftest import TEST_OPTIONS, wait_for
from .fake_ha import FakeHA

VOLATILE = (
    "time",
    "last_connected",
    "last_seen",
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
    "last_time_fired",
    "last_size_bytes",
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
    engine = init_integration.runtime_data.coordinator.engine
    await wait_for(lambda: engine.snapshot().events_received == 1)
    await hass.async_block_till_done()

    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)

    text = json.dumps(diagnostics, default=str)
    assert fake_ha.token not in text
    assert diagnostics["entry"]["data"]["access_token"] == "**REDACTED**"
    assert diagnostics["snapshot"]["remote"]["user_id"] == "**REDACTED**"
    assert diagnostics["capture"]["event_types"]["state_changed"]["count"] == 1
    assert "input_boolean.porch" not in text  # no event payload
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


# Values a real remote sends that must never reach a diagnostics file.
HOME = (52.516275, 13.377704)
PHONE = (48.137154, 11.576124)
ALARM_CODE = "Q7x4711z"  # never a digit run that a port, size or time could contain by chance
LOCK_CODE = "Zk86429q"
INTERNAL = "http://192.168.77.10:8123"
EXTERNAL = "https://myhome.duckdns.example"
REMOTE_USER = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


async def test_diagnostics_realistic_payload_leaks_nothing(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """person/device_tracker positions, alarm and lock codes in service calls, the remote's
    URLs, the token and user ids: none of them appears anywhere in the file."""
    fake_ha.user_id = REMOTE_USER
    fake_ha.internal_url = INTERNAL
    fake_ha.external_url = EXTERNAL
    fake_ha.expected_subscriptions = 2
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Remote Home",
        unique_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        data={
            CONF_URL: fake_ha.url,
            CONF_ACCESS_TOKEN: fake_ha.token,
            CONF_VERIFY_SSL: True,
            CONF_REMOTE_USER_ID: REMOTE_USER,
            CONF_DISCOVERY_URL: fake_ha.url,
        },
        options={**TEST_OPTIONS, CONF_EVENT_TYPES: ["state_changed", "call_service"]},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    engine = entry.runtime_data.coordinator.engine
    await wait_for(lambda: engine.snapshot().subscriptions_confirmed)

    await fake_ha.fire_state_changed(
        "person.anna",
        "home",
        {
            "latitude": HOME[0],
            "longitude": HOME[1],
            "gps_accuracy": 12,
            "source": "device_tracker.anna_phone",
            "user_id": REMOTE_USER,
            "friendly_name": "Anna",
        },
    )
    await fake_ha.fire_state_changed(
        "device_tracker.anna_phone",
        "not_home",
        {
            "source_type": "gps",
            "latitude": PHONE[0],
            "longitude": PHONE[1],
            "gps_accuracy": 5,
            "altitude": 519,
            "battery_level": 80,
        },
    )
    await fake_ha.fire_event(
        "call_service",
        {
            "domain": "alarm_control_panel",
            "service": "alarm_disarm",
            "service_data": {"entity_id": "alarm_control_panel.home", "code": ALARM_CODE},
        },
    )
    await fake_ha.fire_event(
        "call_service",
        {
            "domain": "lock",
            "service": "unlock",
            "service_data": {"entity_id": "lock.front_door", "code": LOCK_CODE},
        },
    )
    await wait_for(lambda: engine.snapshot().events_received == 4)
    await hass.async_block_till_done()

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    text = json.dumps(diagnostics, default=str)

    secrets = [
        fake_ha.token,
        REMOTE_USER,
        ALARM_CODE,
        LOCK_CODE,
        "192.168.77.10",
        "myhome.duckdns.example",
        "127.0.0.1",  # the address this entry reaches the remote at
        "anna",
        "front_door",
        *(f"{value:.4f}".rstrip("0")[:7] for value in (*HOME, *PHONE)),
        "52.52",  # the remote's own home position (get_config)
    ]
    leaked = [secret for secret in secrets if secret.lower() in text.lower()]
    assert not leaked, leaked
    # Per event type: type, count, time and size of the last one; nothing else.
    types = diagnostics["capture"]["event_types"]
    assert set(types) == {"state_changed", "call_service"}
    for info in types.values():
        assert set(info) == {"count", "last_time_fired", "last_size_bytes"}
        assert info["count"] == 2
        assert info["last_time_fired"]
        assert info["last_size_bytes"] > 100
    # What stays useful: scheme, port and path of the URL, the remote's name and version.
    assert diagnostics["entry"]["data"][CONF_URL] == (
        f"ws://**REDACTED**:{fake_ha.port}/api/websocket"
    )
    assert diagnostics["snapshot"]["remote"]["location_name"] == fake_ha.location_name
    assert diagnostics["snapshot"]["remote"]["internal_url"] == "**REDACTED**"
    await hass.config_entries.async_unload(entry.entry_id)


def test_scrub_removes_whole_host_names_only() -> None:
    pattern = _host_pattern({"ha", "192.168.1.5"})
    assert _scrub(
        {"a": ["ws://ha:8123 failed", ("HA down", 3)], "b": "ha_ingestion at 192.168.1.5:80"},
        pattern,
    ) == {
        "a": ["ws://**REDACTED**:8123 failed", ("**REDACTED** down", 3)],
        "b": "ha_ingestion at **REDACTED**:80",
    }
    assert _host_pattern(set()) is None
    assert _scrub({"a": "ha"}, None) == {"a": "ha"}
