"""The engine linked to a real Home Assistant: restarts, freezes, revoked tokens, faults, bursts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time
from typing import Any

import pytest

from custom_components.ha_ingestion.client import ErrorCategory, LinkState
from tests.harness import FaultProxy, RemoteHass
from tests.harness.remote import CANNOT_KEEP_UP_LOG

from .conftest import LOGIN_ATTEMPTS_THRESHOLD, LinkFactory
from .helpers import BURST_EVENT, PING_EVENT, link_config, record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CONNECT_TIMEOUT = 30.0


async def ping(remote: RemoteHass, n: int) -> float:
    """Fire e2e_ping {n} on the remote; return when it was fired."""
    fired = time.monotonic()
    await remote.fire_event(PING_EVENT, {"n": n})
    return fired


def has_n(n: int) -> Callable[[dict[str, Any]], bool]:
    """Match the e2e_ping event number `n`."""
    return lambda event: event.get("data", {}).get("n") == n


async def test_remote_killed_and_restarted(remote: RemoteHass, make_link: LinkFactory) -> None:
    sup, watch = await make_link(link_config(remote.ws_url, remote.token or ""))
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    await ping(remote, 1)
    await watch.wait_event(PING_EVENT, 5, has_n(1))

    killed = time.monotonic()
    remote.kill()
    detection = await watch.wait_left_connected(10)
    start_s = await remote.start()
    ready = time.monotonic()
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    connected = watch.first_after(killed, lambda s: s is LinkState.CONNECTED)
    assert connected is not None

    # Resubscribed: an event and a state change fired after the restart both arrive.
    fired = await ping(remote, 2)
    event = await watch.wait_event(PING_EVENT, 5, has_n(2))
    await remote.toggle("input_boolean.e2e_switch")
    await watch.wait_event(
        "state_changed",
        5,
        lambda e: e["data"]["entity_id"] == "input_boolean.e2e_switch" and e["_received"] > fired,
    )
    snap = sup.snapshot()
    assert snap.reconnect_count == 1
    assert snap.subscriptions_confirmed
    record(
        "1_kill_restart",
        detection_s=detection,
        remote_start_s=start_s,
        remote_running_after_kill_s=ready - killed,
        recovery_after_kill_s=connected - killed,
        # HA accepts WebSocket clients before it reports RUNNING: the link may come back first.
        connected_minus_running_s=connected - ready,
        event_latency_s=event["_received"] - fired,
        reconnect_count=snap.reconnect_count,
        attempts_total=snap.attempts_total,
        states=[str(s) for s in watch.states_since(killed)],
    )


async def test_remote_frozen_is_detected_by_heartbeat(
    remote: RemoteHass, make_link: LinkFactory
) -> None:
    interval, timeout = 2.0, 2.0
    sup, watch = await make_link(
        link_config(
            remote.ws_url,
            remote.token or "",
            heartbeat_interval=interval,
            heartbeat_timeout=timeout,
            connect_timeout=3.0,
        )
    )
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    await asyncio.sleep(0.5)  # let the link settle (first ping)

    frozen = time.monotonic()
    remote.freeze()
    try:
        detection = await watch.wait_left_connected(interval + timeout + 2)
    finally:
        thawed = time.monotonic()
        remote.thaw()
    frozen_for = thawed - frozen
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    connected = watch.first_after(thawed, lambda s: s is LinkState.CONNECTED)
    assert connected is not None
    fired = await ping(remote, 3)
    event = await watch.wait_event(PING_EVENT, 5, has_n(3))
    snap = sup.snapshot()
    assert snap.errors[-1].category in (ErrorCategory.TIMEOUT, ErrorCategory.NETWORK)
    assert any(e.type == "HaHeartbeatTimeoutError" for e in snap.errors)
    record(
        "2_freeze",
        heartbeat_interval_s=interval,
        heartbeat_timeout_s=timeout,
        detection_s=detection,
        detection_bound_s=interval + timeout + 2,
        frozen_for_s=frozen_for,
        recovery_after_thaw_s=connected - thawed,
        event_latency_s=event["_received"] - fired,
        errors=[e.type for e in snap.errors],
    )


async def test_revoked_token_fails_once_and_is_never_banned(
    remote: RemoteHass, make_link: LinkFactory
) -> None:
    sup, watch = await make_link(link_config(remote.ws_url, remote.token or ""))
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    mark = remote.log_mark()

    revoked = time.monotonic()
    await remote.revoke_token()
    to_failed = await watch.wait_state(LinkState.FAILED, 15)
    # Several backoff windows (max 2 s): a client that kept retrying would show it here.
    await asyncio.sleep(5)
    snap = sup.snapshot()
    assert snap.state is LinkState.FAILED
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    invalid_auth = remote.assert_not_hammered(mark)
    record(
        "3_token_revoked",
        to_failed_s=to_failed,
        since_revoke_s=time.monotonic() - revoked,
        failed_auth_lines_on_remote=invalid_auth,
        login_attempts_threshold=LOGIN_ATTEMPTS_THRESHOLD,
        ip_banned=bool(remote.ip_bans()),
        attempts_total=snap.attempts_total,
        failed_connections=snap.failed_connections,
        last_error=f"{snap.last_error.type}: {snap.last_error.message}",
    )


async def test_proxy_blackhole_is_detected_and_recovered(
    remote: RemoteHass, proxy: FaultProxy, make_link: LinkFactory
) -> None:
    interval, timeout = 2.0, 2.0
    sup, watch = await make_link(
        link_config(
            proxy.url(),
            remote.token or "",
            heartbeat_interval=interval,
            heartbeat_timeout=timeout,
            connect_timeout=3.0,
        )
    )
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    await asyncio.sleep(0.5)

    began = time.monotonic()
    proxy.blackhole()
    try:
        detection = await watch.wait_left_connected(interval + timeout + 2)
    finally:
        ended = time.monotonic()
        proxy.blackhole(False)
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    connected = watch.first_after(ended, lambda s: s is LinkState.CONNECTED)
    assert connected is not None
    fired = await ping(remote, 4)
    await watch.wait_event(PING_EVENT, 5, has_n(4))
    snap = sup.snapshot()
    assert any(e.type == "HaHeartbeatTimeoutError" for e in snap.errors)
    record(
        "4a_proxy_blackhole",
        detection_s=detection,
        detection_bound_s=interval + timeout + 2,
        blackholed_for_s=ended - began,
        recovery_after_blackhole_s=connected - ended,
        bytes_dropped=proxy.stats.bytes_dropped,
        event_received_after_s=watch.events[-1]["_received"] - fired,
        errors=[e.type for e in snap.errors],
    )


async def test_proxy_latency_causes_no_false_disconnect(
    remote: RemoteHass, proxy: FaultProxy, make_link: LinkFactory
) -> None:
    latency = 2.0
    interval, timeout = 2.0, 2 * latency + 2.0  # timeout > the 4 s round trip
    sup, watch = await make_link(
        link_config(
            proxy.url(), remote.token or "", heartbeat_interval=interval, heartbeat_timeout=timeout
        )
    )
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    began = time.monotonic()
    proxy.latency = latency

    fired = await ping(remote, 5)
    event = await watch.wait_event(PING_EVENT, latency + 5, has_n(5))
    # At least one heartbeat answered through the slow path, and a full cycle without loss.
    await watch.wait_until(
        lambda: (sup.snapshot().last_ping_rtt or 0) >= 2 * latency - 0.1,
        interval + timeout + 4,
        "a ping answered through the slow path",
    )
    cycle_end = began + interval + timeout + 1
    if (rest := cycle_end - time.monotonic()) > 0:
        await asyncio.sleep(rest)
    states = watch.states_since(began)
    snap = sup.snapshot()
    assert states == [], f"state changed under latency: {states}, errors {snap.errors}"
    assert snap.state is LinkState.CONNECTED
    record(
        "4b_proxy_latency",
        one_way_latency_s=latency,
        heartbeat_interval_s=interval,
        heartbeat_timeout_s=timeout,
        watched_for_s=time.monotonic() - began,
        last_ping_rtt_s=snap.last_ping_rtt,
        event_latency_s=event["_received"] - fired,
        false_disconnects=len(states),
    )


async def test_proxy_reset_and_refusal_are_recovered(
    remote: RemoteHass, proxy: FaultProxy, make_link: LinkFactory
) -> None:
    sup, watch = await make_link(link_config(proxy.url(), remote.token or ""))
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)

    reset_at = time.monotonic()
    assert proxy.reset_connections() == 1
    detection = await watch.wait_left_connected(5)
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    recovered = watch.first_after(reset_at, lambda s: s is LinkState.CONNECTED)
    assert recovered is not None
    await ping(remote, 6)
    await watch.wait_event(PING_EVENT, 5, has_n(6))

    # Reset and refuse new connections for 3 s: the engine retries by its backoff, then recovers.
    await proxy.refuse()
    refused_at = time.monotonic()
    proxy.reset_connections()
    await watch.wait_left_connected(5)
    await asyncio.sleep(3)
    failed_while_refused = sup.snapshot().failed_connections
    await proxy.refuse(False)
    accepting = time.monotonic()
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    recovered2 = watch.first_after(accepting, lambda s: s is LinkState.CONNECTED)
    assert recovered2 is not None
    await ping(remote, 7)
    await watch.wait_event(PING_EVENT, 5, has_n(7))
    snap = sup.snapshot()
    assert snap.reconnect_count == 2
    assert failed_while_refused >= 1
    record(
        "4c_proxy_reset",
        detection_s=detection,
        recovery_after_reset_s=recovered - reset_at,
        refused_for_s=accepting - refused_at,
        failed_attempts_while_refused=failed_while_refused,
        recovery_after_accepting_again_s=recovered2 - accepting,
        reconnect_count=snap.reconnect_count,
    )


async def test_burst_of_5000_events_all_counted(remote: RemoteHass, make_link: LinkFactory) -> None:
    count = 5000
    sup, watch = await make_link(
        link_config(remote.ws_url, remote.token or "", event_types=("state_changed", BURST_EVENT))
    )
    await watch.wait_state(LinkState.CONNECTED, CONNECT_TIMEOUT)
    seen: set[int] = set()
    unsubscribe = sup.add_event_listener(
        lambda e: seen.add(e["data"]["n"]) if e.get("event_type") == BURST_EVENT else None
    )
    mark = remote.log_mark()
    began = time.monotonic()
    fire_s = await remote.fire_events(BURST_EVENT, count)
    await watch.wait_until(
        lambda: sup.snapshot().events_by_type.get(BURST_EVENT, 0) >= count,
        60,
        f"{count} burst events counted",
    )
    received_s = time.monotonic() - began
    unsubscribe()
    await asyncio.sleep(0.5)  # anything extra (duplicates) would show now
    snap = sup.snapshot()
    assert snap.events_by_type.get(BURST_EVENT) == count
    assert seen == set(range(count))
    assert snap.state is LinkState.CONNECTED
    assert snap.reconnect_count == 0
    log = remote.log_since(mark)
    assert CANNOT_KEEP_UP_LOG not in log, log[-3000:]
    record(
        "6_burst",
        events_fired=count,
        events_counted=snap.events_by_type.get(BURST_EVENT),
        distinct=len(seen),
        fire_s=fire_s,
        all_received_s=received_s,
        events_per_s=count / received_s,
        cannot_keep_up_lines=log.count(CANNOT_KEEP_UP_LOG),
        reconnects=snap.reconnect_count,
    )
