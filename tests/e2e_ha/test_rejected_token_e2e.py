"""A token the remote rejected is never sent again: not after reloads, not after a local restart.

The real remote runs with `login_attempts_threshold` (tests/harness/fixtures.py): each failed
login counts towards an IP ban. The token is revoked; the entry is then reloaded, and unloaded and
set up again (what a restart of the local Home Assistant does to it), twice each: exactly one
failed login on the remote, no ban, and the entry stays loaded with Connected off.
"""

from __future__ import annotations

import time
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
import pytest

from custom_components.ha_ingestion.client import ErrorCategory, LinkState
from custom_components.ha_ingestion.const import CONF_REJECTED_TOKEN, DOMAIN
from tests.e2e.helpers import record
from tests.harness import RemoteHass
from tests.harness.fixtures import LOGIN_ATTEMPTS_THRESHOLD

from .conftest import LinkFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_rejected_token_is_not_sent_after_reloads_and_restarts(
    hass: Any, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    link = await link_factory()
    mark = remote.log_mark()
    await remote.revoke_token()
    await link.wait_until(
        lambda: link.state_of(link.connection_state_id) == LinkState.FAILED.value,
        15,
        "connection_state failed",
    )
    assert CONF_REJECTED_TOKEN in link.entry.data
    began = time.monotonic()
    for _ in range(2):
        assert await hass.config_entries.async_reload(link.entry.entry_id)
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(link.entry.entry_id)
        assert await hass.config_entries.async_setup(link.entry.entry_id)
        await hass.async_block_till_done()
        assert link.entry.state is ConfigEntryState.LOADED
        assert link.state_of(link.connection_state_id) == LinkState.FAILED.value
        assert link.state_of(link.connected_id) == "off"  # never unavailable
    snap = link.entry.runtime_data.coordinator.engine.snapshot()
    assert snap.attempts_total == 0  # this setup never connected at all
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    assert any(
        flow["context"].get("source") == SOURCE_REAUTH
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    )
    failed_logins = remote.assert_not_hammered(mark)  # at most one, and no ban
    assert failed_logins == 1
    record(
        "ha_12_rejected_token_not_resent",
        reloads_and_restarts=4,
        failed_logins_on_remote=failed_logins,
        login_attempts_threshold=LOGIN_ATTEMPTS_THRESHOLD,
        ip_banned=bool(remote.ip_bans()),
        seconds=time.monotonic() - began,
    )
