"""The integration (config flow, entities, reauth, event capture) against a real remote `hass`."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
import pytest

from custom_components.ha_ingestion.client import ErrorCategory, LinkState
from custom_components.ha_ingestion.const import DOMAIN
from tests.e2e.helpers import PING_EVENT, record
from tests.harness import RemoteHass
from tests.harness.fixtures import LOGIN_ATTEMPTS_THRESHOLD

from .conftest import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Link, LinkFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SWITCH = "input_boolean.e2e_presence"
# The log line at a gap's close, with the Last outage sensor's value and attributes.
_GAP_CLOSED = re.compile(
    r"Gap of the link to .+ closed: outage (?P<value>[\d.]+) s \(from the last message received "
    r"at (?P<start>\S+) to the link's return at (?P<end>\S+)\), detection (?P<detection>[\d.]+) "
    r"s, recovery (?P<recovery>[\d.]+) s$"
)


def _ping(n: int) -> Any:
    def match(event: dict[str, Any]) -> bool:
        return event.get("event_type") == PING_EVENT and (event.get("data") or {}).get("n") == n

    return match


async def _events_flow_after(link: Link, remote: RemoteHass, n: int) -> dict[str, float]:
    """A custom event and a state change fired on the remote now both arrive locally, live."""
    fired = time.monotonic()
    await remote.fire_event(PING_EVENT, {"n": n})
    ping = await link.wait_event(_ping(n), 5, f"{PING_EVENT} {n} fired locally")
    assert ping["backfilled"] is False
    assert ping["remote_name"] == remote.name
    assert ping["origin"] == "REMOTE"  # the same for every captured event (issue 11)
    toggled = time.monotonic()
    await remote.toggle(SWITCH)
    change = await link.wait_event(
        lambda e: (
            e.get("event_type") == "state_changed"
            and e["data"].get("entity_id") == SWITCH
            and not e["backfilled"]
            and e["_received"] > toggled
        ),
        # After a (re)connect, live state changes wait until the gap's changes are fired: the
        # remote's commit interval (5 s) + 2 s at least.
        20,
        f"state_changed of {SWITCH} fired locally",
    )
    return {
        "event_latency_s": ping["_received"] - fired,
        "state_change_latency_s": change["_received"] - toggled,
    }


async def test_remote_killed_and_restarted(remote: RemoteHass, link_factory: LinkFactory) -> None:
    # The user step accepts host:port; the flow turns it into the WebSocket URL.
    link = await link_factory(f"127.0.0.1:{remote.port}")
    assert link.entry.data["url"] == remote.ws_url
    assert link.state_of(link.connection_state_id) == "connected"
    await _events_flow_after(link, remote, 1)

    killed = time.monotonic()
    remote.kill()
    detection = await link.wait_disconnected(10)
    start_s = await remote.start()
    running = time.monotonic()
    await link.wait_connected()
    connected = link.first_after(killed, "on")
    assert connected is not None
    # Resubscribed after the restart: events fired now arrive as ha_ingestion_event.
    latencies = await _events_flow_after(link, remote, 2)
    snap = link.snapshot()
    assert snap.reconnect_count == 1
    assert snap.subscriptions_confirmed
    assert link.state_of(f"binary_sensor.{link.slug}_subscriptions_active") == "on"
    record(
        "ha_1_kill_restart",
        detection_s=detection,
        remote_start_s=start_s,
        recovery_after_kill_s=connected - killed,
        connected_minus_remote_running_s=connected - running,
        reconnect_count=snap.reconnect_count,
        attempts_total=snap.attempts_total,
        sensor_states=[value for at, value in link.transitions if at >= killed],
        **latencies,
    )


async def test_remote_frozen_is_detected_by_heartbeat(
    remote: RemoteHass, link_factory: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.ha_ingestion")
    link = await link_factory()
    await asyncio.sleep(0.5)  # let the link settle (first ping)
    bound = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + 2

    frozen = time.monotonic()
    remote.freeze()
    try:
        detection = await link.wait_disconnected(bound)
    finally:
        thawed = time.monotonic()
        remote.thaw()
    await link.wait_connected()
    connected = link.first_after(thawed, "on")
    assert connected is not None
    latencies = await _events_flow_after(link, remote, 3)
    snap = link.snapshot()
    assert any(e.type == "HaHeartbeatTimeoutError" for e in snap.errors), snap.errors
    # Live changes waited for the gap: it is closed, the Last outage sensor shows it. The remote
    # was silent at least from the freeze to the thaw: the outage is no shorter, and the log
    # line at the gap's close says the sensor's numbers.
    outage = link.hass.states.get(f"sensor.{link.slug}_last_outage")
    assert outage is not None
    assert float(outage.state) >= thawed - frozen
    assert outage.attributes["detection"] >= HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT - 0.1
    closed = [m for r in caplog.records if (m := _GAP_CLOSED.match(r.getMessage()))]
    assert closed, caplog.text
    assert closed[-1].group("value") == outage.state
    assert float(closed[-1].group("detection")) == outage.attributes["detection"]
    assert float(closed[-1].group("recovery")) == outage.attributes["recovery"]
    assert (closed[-1].group("start"), closed[-1].group("end")) == (
        outage.attributes["start"],
        outage.attributes["end"],
    )
    record(
        "ha_2_freeze",
        heartbeat_interval_s=HEARTBEAT_INTERVAL,
        heartbeat_timeout_s=HEARTBEAT_TIMEOUT,
        detection_s=detection,
        detection_bound_s=bound,
        frozen_for_s=thawed - frozen,
        last_outage_s=float(outage.state),
        last_outage_detection_s=outage.attributes["detection"],
        last_outage_recovery_s=outage.attributes["recovery"],
        recovery_after_thaw_s=connected - thawed,
        **latencies,
    )


async def test_revoked_token_starts_reauth_fails_once_never_banned(
    hass: Any, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    link = await link_factory()
    mark = remote.log_mark()

    revoked = time.monotonic()
    await remote.revoke_token()
    to_failed = await link.wait_until(
        lambda: link.state_of(link.connection_state_id) == LinkState.FAILED.value,
        15,
        "connection_state failed",
    )
    to_reauth = await link.wait_until(
        lambda: any(
            flow["context"].get("source") == SOURCE_REAUTH
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        ),
        5,
        "a reauth flow in progress",
    )
    # Several backoff windows (max 2 s): a client that kept retrying would show it here.
    await asyncio.sleep(5)
    assert link.state_of(link.connection_state_id) == LinkState.FAILED.value
    assert link.state_of(link.connected_id) == "off"
    assert link.entry.state is ConfigEntryState.LOADED
    reauth = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"].get("source") == SOURCE_REAUTH
    ]
    assert len(reauth) == 1, reauth
    assert reauth[0]["context"]["entry_id"] == link.entry.entry_id
    snap = link.snapshot()
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    invalid_auth = remote.assert_not_hammered(mark)
    record(
        "ha_3_token_revoked",
        to_failed_s=to_failed,
        reauth_flow_after_failed_s=to_reauth,
        watched_for_s=time.monotonic() - revoked,
        failed_auth_lines_on_remote=invalid_auth,
        login_attempts_threshold=LOGIN_ATTEMPTS_THRESHOLD,
        ip_banned=bool(remote.ip_bans()),
        attempts_total=snap.attempts_total,
        reauth_flows=len(reauth),
        last_error=f"{snap.last_error.type}: {snap.last_error.message}",
    )
