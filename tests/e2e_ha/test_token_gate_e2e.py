"""One rejected token, one failed login: every connection with the entry's token shares its gate.

The real remote counts each failed login towards an IP ban (`login_attempts_threshold`,
tests/harness/fixtures.py). The token is revoked while a second connection with it is at work
(or about to be): the backfill's history session after a freeze, the options form's check, a
statistics fill. Each time the remote logs exactly one failed login, nobody is banned, and the
entry stays loaded with Connected off and reauth offered.

The revocation is sent on a WebSocket opened beforehand (one command, so it lands where it is
meant to); the link is restored the moment each fault ends; the remote keeps Home Assistant's
default recorder settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import time
from typing import Any

from homeassistant.components.recorder import Recorder
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.ha_ingestion.client import ErrorCategory, LinkState
from custom_components.ha_ingestion.const import CONF_MIRROR_ENTITIES, DOMAIN
from custom_components.ha_ingestion.engine_config import options_with_defaults
from custom_components.ha_ingestion.options_flow import sectioned
from custom_components.ha_ingestion.token_gate import token_rejected
from tests.e2e.helpers import record
from tests.harness import RemoteHass
from tests.harness.fixtures import LOGIN_ATTEMPTS_THRESHOLD

from .conftest import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Link, LinkFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DETECTION_BOUND = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + 2
WATCH = 5.0  # several backoff windows (at most 2 s): a connection that sent it again would show
POWER = "sensor.e2e_gate_power"
POWER_ATTRIBUTES: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """A local recorder (the statistics fill needs one): set up before `hass`."""


type Revoke = Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def _revoker(remote: RemoteHass) -> AsyncIterator[Revoke]:
    """`revoke()`: the client token deleted with one command on a WebSocket opened beforehand."""
    async with remote.ws() as ws:
        tokens = await ws.command({"type": "auth/refresh_tokens"})
        ids = [t["id"] for t in tokens if t.get("client_name") == remote.token_name]
        assert ids, tokens

        async def revoke() -> None:
            for token_id in ids:
                await ws.command(
                    {"type": "auth/delete_refresh_token", "refresh_token_id": token_id}
                )
            remote.token_revoked = True  # the next test gets a new token

        yield revoke


async def _one_failed_login(hass: HomeAssistant, link: Link, mark: int) -> dict[str, Any]:
    """The link failed on the rejection, reauth is offered, and the remote logged one failure."""
    await link.wait_until(
        lambda: link.state_of(link.connection_state_id) == LinkState.FAILED.value,
        15,
        "connection_state failed",
    )
    await asyncio.sleep(WATCH)
    assert link.entry.state is ConfigEntryState.LOADED
    assert link.state_of(link.connected_id) == "off"
    assert link.state_of(link.connection_state_id) == LinkState.FAILED.value
    snap = link.snapshot()
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    assert token_rejected(dict(link.entry.data))
    reauth = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"].get("source") == SOURCE_REAUTH
    ]
    assert len(reauth) == 1, reauth
    failed_logins = link.remote.assert_not_hammered(mark)  # at most one, and no ban
    assert failed_logins == 1, link.remote.log_since(mark)
    return {
        "failed_logins_on_remote": failed_logins,
        "login_attempts_threshold": LOGIN_ATTEMPTS_THRESHOLD,
        "ip_banned": bool(link.remote.ip_bans()),
        "attempts_total": snap.attempts_total,
        "last_error": snap.last_error.message,
    }


async def test_freeze_thaw_revoke_at_once(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    """The issue's sequence: link frozen, thawed, token revoked at once: one failed login."""
    link = await link_factory()
    await asyncio.sleep(0.5)
    async with _revoker(remote) as revoke:
        mark = remote.log_mark()
        remote.freeze()
        try:
            await link.wait_disconnected(DETECTION_BOUND)
        finally:
            remote.thaw()
        await revoke()
        figures = await _one_failed_login(hass, link, mark)
    record("gate_1_freeze_thaw_revoke", **figures)


async def test_revoke_as_the_backfill_opens_its_session(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    """Frozen (a gap), thawed; revoked as the backfill opens its own session: one failed login."""
    link = await link_factory()
    history = link.entry.runtime_data.capture.recovery.session
    await asyncio.sleep(0.5)
    async with _revoker(remote) as revoke:
        command = history.command
        revoked: list[float] = []

        async def revoke_first(payload: dict[str, Any]) -> Any:
            if not revoked:
                revoked.append(time.monotonic())
                await revoke()
            return await command(payload)

        history.command = revoke_first  # type: ignore[method-assign]
        mark = remote.log_mark()
        remote.freeze()
        try:
            await link.wait_disconnected(DETECTION_BOUND)
        finally:
            remote.thaw()
        await link.wait_until(lambda: bool(revoked), 30, "the backfill at work")
        figures = await _one_failed_login(hass, link, mark)
    record(
        "gate_2_revoke_during_backfill",
        backfill_sessions=history.sessions_opened,
        **figures,
    )


async def test_revoke_during_an_options_check(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    """The options form's check connects with the token as it is revoked: one failed login."""
    link = await link_factory()
    entry = link.entry
    async with _revoker(remote) as revoke:
        result = await hass.config_entries.options.async_init(entry.entry_id)
        assert result["type"] is FlowResultType.FORM, result
        mark = remote.log_mark()
        check = asyncio.ensure_future(
            hass.config_entries.options.async_configure(
                result["flow_id"], user_input=sectioned(options_with_defaults(dict(entry.options)))
            )
        )
        await revoke()
        result = await check
        # Unchanged options save at once (nothing to check); changed ones meet the rejection.
        assert result["type"] in (FlowResultType.FORM, FlowResultType.CREATE_ENTRY), result
        await hass.async_block_till_done()
        figures = await _one_failed_login(hass, link, mark)
    record("gate_3_revoke_during_options_check", form=str(result.get("errors")), **figures)


async def test_revoke_during_a_statistics_fill(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    """A gap closed with a mirrored sensor: revoked as its statistics fill sends its first request."""
    await remote.set_state(POWER, "1000", POWER_ATTRIBUTES)
    try:
        link = await link_factory(**{CONF_MIRROR_ENTITIES: True})
        local_id = f"sensor.{link.slug}_e2e_gate_power"
        await link.wait_until(lambda: link.state_of(local_id) == "1000", 20, "mirrored")
        filler = link.entry.runtime_data.mirror.gap_statistics
        started = time.monotonic()
        async with _revoker(remote) as revoke:
            command = filler._command
            revoked: list[float] = []

            async def revoke_first(payload: dict[str, Any]) -> Any:
                if not revoked:
                    revoked.append(time.monotonic())
                    await revoke()
                return await command(payload)

            # The fill's own wait for the remote's compile is not what this is about.
            filler._sleep = lambda _seconds: asyncio.sleep(0)
            filler._command = revoke_first  # type: ignore[method-assign]
            mark = remote.log_mark()
            remote.freeze()
            try:
                await link.wait_disconnected(DETECTION_BOUND)
            finally:
                remote.thaw()
            await link.wait_until(lambda: bool(revoked), 90, "the statistics fill at work")
            figures = await _one_failed_login(hass, link, mark)
        await link.wait_until(lambda: not filler._tasks, 60, "the fill ended")
        assert filler.failed == 1, filler.as_dict()
    finally:
        with contextlib.suppress(Exception):
            await remote.remove_state(POWER)
    record(
        "gate_4_revoke_during_statistics_fill",
        fill_error=filler.last_error,
        seconds=time.monotonic() - started,
        **figures,
    )
