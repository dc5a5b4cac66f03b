"""The entry's token gate: the link, the backfill's history session and the statistics fill.

Every connection that sends the entry's token shares one gate: a rejection met by any of them is
the last time the token reaches the remote, until the user gives a new one.
"""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.client import (
    HaAuthenticationError,
    HaConnectionClosedError,
    LinkState,
)
from custom_components.ha_ingestion.const import CONF_REJECTED_TOKEN, DOMAIN
from custom_components.ha_ingestion.token_gate import (
    entry_token_gate,
    token_fingerprint,
    token_rejected,
)

from .conftest import link_state, wait_for
from .fake_ha import FakeHA

RECORDER_INFO = {"type": "recorder/info"}


def _reauth_flows(hass: HomeAssistant) -> list[str]:
    return [
        flow["context"]["source"]
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    ]


async def test_link_and_history_session_at_once_send_a_revoked_token_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The issue's race: the link reconnects while the backfill's session opens; one `auth`."""
    entry = init_integration
    history = entry.runtime_data.capture.recovery.session
    sent = fake_ha.auth_messages
    fake_ha.auth_answer_delay = 0.3  # the link's authentication is in flight for a while
    fake_ha.token = "rotated"
    await fake_ha.close_all()
    await wait_for(lambda: fake_ha.auth_messages == sent + 1)  # the link's `auth` is out
    upgrades = fake_ha.upgrade_count
    with pytest.raises(HaAuthenticationError, match="not sent again"):
        await history.command(RECORDER_INFO)
    assert fake_ha.upgrade_count == upgrades + 1  # it connected, waited, and did not send
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    await hass.async_block_till_done()
    assert fake_ha.auth_messages == sent + 1
    assert fake_ha.auth_invalid_count == 1
    assert token_rejected(dict(entry.data))
    assert _reauth_flows(hass) == [SOURCE_REAUTH]


async def test_history_session_after_the_links_rejection_sends_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    fake_ha.token = "rotated"
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    upgrades = fake_ha.upgrade_count
    with pytest.raises(HaAuthenticationError, match="not sent again"):
        await entry.runtime_data.capture.recovery.session.command(RECORDER_INFO)
    # The statistics fill uses the link itself: nothing to send either.
    with pytest.raises(HaConnectionClosedError):
        await entry.runtime_data.mirror.gap_statistics.engine.command(RECORDER_INFO)
    assert fake_ha.upgrade_count == upgrades  # not even a connection
    assert fake_ha.auth_invalid_count == 1


async def test_history_sessions_rejection_stops_the_link_and_is_remembered(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The backfill meets the rejection first (the link still up): the link never sends it."""
    entry = init_integration
    fake_ha.token = "rotated"
    with pytest.raises(HaAuthenticationError):
        await entry.runtime_data.capture.recovery.session.command(RECORDER_INFO)
    await hass.async_block_till_done()
    assert entry.runtime_data.token_gate.closed
    assert entry.data[CONF_REJECTED_TOKEN] == token_fingerprint(entry.data[CONF_ACCESS_TOKEN])
    assert _reauth_flows(hass) == [SOURCE_REAUTH]
    await fake_ha.close_all()  # now the remote closes the link
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    await hass.async_block_till_done()
    assert fake_ha.auth_invalid_count == 1
    assert _reauth_flows(hass) == [SOURCE_REAUTH]  # one reauth flow
    # The reconnect button asks for a new token instead.
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.remote_home_reconnect"}, blocking=True
    )
    await hass.async_block_till_done()
    assert fake_ha.auth_invalid_count == 1
    # A reload does not send it either (remembered in the entry).
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.token_gate.closed
    assert link_state(entry) is LinkState.FAILED
    assert fake_ha.auth_invalid_count == 1


async def test_link_authenticated_before_the_rejection_keeps_it_remembered(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Another connection's rejection lands while the link finishes connecting: not forgotten."""
    entry = init_integration
    coordinator = entry.runtime_data.coordinator
    # A stale fingerprint (an older token's) is replaced by this token's ...
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_REJECTED_TOKEN: token_fingerprint("older")}
    )
    entry.runtime_data.token_gate.close()
    assert token_rejected(dict(entry.data))
    # ... and not forgotten when the link reports connected (it authenticated before).
    coordinator._handle_state(coordinator.engine.snapshot())
    assert link_state(entry) is LinkState.CONNECTED
    assert token_rejected(dict(entry.data))


async def test_entry_gate_of_an_entry_not_loaded(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Outside a loaded entry: a gate of its own, closed for a remembered rejection, remembering one."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    assert entry.state is ConfigEntryState.NOT_LOADED
    gate = entry_token_gate(hass, entry)
    assert not gate.closed
    assert entry_token_gate(hass, entry) is not gate  # nothing holds it
    gate.close()
    assert token_rejected(dict(entry.data))
    assert entry_token_gate(hass, entry).closed


async def test_http_401_at_the_upgrade_closes_the_gate_too(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """Refused before the token was sent: the link and the remembered state still agree."""
    entry = mock_config_entry
    fake_ha.http_status = 401
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert link_state(entry) is LinkState.FAILED
    assert entry.runtime_data.token_gate.closed
    assert token_rejected(dict(entry.data))
    assert _reauth_flows(hass) == [SOURCE_REAUTH]
    assert fake_ha.auth_messages == 0
    assert await hass.config_entries.async_unload(entry.entry_id)
