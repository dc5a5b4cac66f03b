"""A remote with 20,000 entities (get_states above 16 MiB) recovers a gap completely (issue 11).

A remote of its own (default recorder settings) gets 20,000 entities with ~1 KB of attributes
each through its REST API while linked, so its `get_states` is far above the 16 MiB message cap
the old backfill asked for in one message. During an outage (the proxy in front of it refuses and
resets connections) 500 of them change; the link is restored at once and every change must arrive
exactly once, flagged backfilled, while no request or reply ever ends the live link.
"""

from __future__ import annotations

import asyncio
from collections import Counter
import time
from typing import Any

import aiohttp
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
import orjson
import pytest

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import CONF_VERIFY_SSL, DOMAIN, EVENT_INGESTED
from tests.e2e.helpers import record
from tests.harness import FaultProxy, RemoteHass

from .conftest import _configure_options

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ENTITIES = 20_000
CHANGED = 500
PAD = "x" * 900
CONCURRENCY = 16


async def _set_states(remote: RemoteHass, numbers: list[int], value: str) -> None:
    """POST /api/states for each sensor.big_<n> (bounded concurrency)."""
    headers = {"Authorization": f"Bearer {remote.admin_token}"}
    queue = list(numbers)

    async def worker(http: aiohttp.ClientSession) -> None:
        while queue:
            n = queue.pop()
            body = {"state": value, "attributes": {"n": n, "pad": PAD}}
            async with http.post(
                f"{remote.url}/api/states/sensor.big_{n}", json=body, headers=headers
            ) as resp:
                assert resp.status in (200, 201), await resp.text()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))


async def _wait(predicate: Any, timeout: float, what: str) -> float:
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def test_twenty_thousand_entities_recover_a_gap(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    async with RemoteHass(name="E2E Big Remote") as big, FaultProxy(big.port) as proxy:
        events: list[dict[str, Any]] = []

        @callback
        def on_event(event: Event) -> None:
            data = event.data.get("data") or {}
            if str(data.get("entity_id", "")).startswith("sensor.big_"):
                events.append(dict(event.data))

        hass.bus.async_listen(EVENT_INGESTED, on_event)
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_URL: f"{proxy.host}:{proxy.port}",
                CONF_ACCESS_TOKEN: big.token or "",
                CONF_VERIFY_SSL: True,
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        entry = result["result"]
        await hass.async_block_till_done()
        await _configure_options(hass, entry)
        capture = entry.runtime_data.capture
        engine = entry.runtime_data.coordinator.engine
        await _wait(lambda: engine.state is LinkState.CONNECTED, 30, "linked")
        await _wait(lambda: not capture.recovering, 60, "the reload's gap closed")

        began = time.monotonic()
        await _set_states(big, list(range(ENTITIES)), "0")
        created_s = time.monotonic() - began
        await _wait(lambda: len(events) >= ENTITIES, 120, "20,000 live creations")
        states = await big.command({"type": "get_states"})
        get_states_bytes = len(orjson.dumps(states))
        assert get_states_bytes > 16 * 1024 * 1024, get_states_bytes

        await proxy.refuse()
        proxy.reset_connections()
        await _wait(lambda: engine.state is not LinkState.CONNECTED, 10, "link down")
        changed = list(range(0, ENTITIES, ENTITIES // CHANGED))
        await _set_states(big, changed, "1")
        requests_before = capture.recovery.requests
        sessions_before = capture.recovery.session.sessions_opened
        restored = time.monotonic()
        await proxy.refuse(False)  # restored the moment the outage ends
        await _wait(lambda: engine.state is LinkState.CONNECTED, 60, "link back")
        await _wait(lambda: not capture.recovering, 300, "the gap recovered")
        recovered_s = time.monotonic() - restored
        backfilled = [e for e in events if e["backfilled"]]
        counts = Counter(e["data"]["entity_id"] for e in backfilled)
        wanted = {f"sensor.big_{n}" for n in changed}
        snap = engine.snapshot()
        gap = capture.state.gaps[-1]
        record(
            "ha_11_big_remote",
            entities=ENTITIES,
            get_states_mib=round(get_states_bytes / 1024 / 1024, 1),
            created_s=round(created_s, 1),
            changed_during_outage=len(changed),
            recovered=len(wanted & set(counts)),
            lost=len(wanted - set(counts)),
            duplicated=sum(c - 1 for c in counts.values()),
            unexpected=len(set(counts) - wanted),
            recovered_after_restore_s=round(recovered_s, 1),
            requests_for_the_gap=capture.recovery.requests - requests_before,
            backfill_sessions_for_the_gap=capture.recovery.session.sessions_opened
            - sessions_before,
            remote_recorder_backlog_max=capture.recovery.recorder_backlog_max,
            gap_error=gap.backfill_error,
            live_reconnects=snap.reconnect_count,
            unrecoverable=list(gap.unrecoverable),
        )
        assert wanted == set(counts)
        assert all(count == 1 for count in counts.values())
        assert all(e["data"]["new_state"]["state"] == "1" for e in backfilled)
        assert gap.unrecoverable == ()
        assert snap.reconnect_count == 1  # only the outage itself: no reply ever ended the link
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
