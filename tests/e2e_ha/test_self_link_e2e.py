"""A real Home Assistant linked to itself (the README offers it) stays quiet when idle.

One `hass` process runs this checkout's integration; the entry is made through the config flow
over REST with the instance's own URL and a long-lived token it issued. Idle for 60 s (nobody
changes anything), it must capture nothing: no `ha_ingestion_event` (subscribed over its own
WebSocket API), the captured counters in its diagnostics unchanged, and its *Events received*
sensor unchanged (the loop of the issue: its own counters' changes received, counted and changed
again). Then a real change of an entity that is not the integration's is captured, exactly once,
so the quiet is not a dead link.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import time
from typing import Any

import pytest

from tests.e2e.helpers import record

from .local_hass import EVENT, link_local, start_local, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

IDLE = 60.0
SWITCH = "input_boolean.e2e_switch"


async def test_idle_self_link_captures_nothing(tmp_path: Path, socket_enabled: None) -> None:
    began = time.monotonic()
    local = await start_local(tmp_path / "self", name="E2E Self")
    try:
        linked = await link_local(local, local.url, local.token or "")
        received = f"sensor.{linked.slug}_events_received"
        captured: list[dict[str, Any]] = []
        async with local.ws() as ws:
            await ws.subscribe(EVENT, captured.append)
            before = (await linked.diagnostics())["capture"]
            received_before = await linked.state(received)
            await asyncio.sleep(IDLE)
            idle = list(captured)
            after = (await linked.diagnostics())["capture"]
            received_after = await linked.state(received)
            await local.toggle(SWITCH)

            def switch_captured() -> bool:
                return any(e["data"]["data"].get("entity_id") == SWITCH for e in captured)

            await wait_until(switch_captured, 15, "the switch's change captured", local)
            await asyncio.sleep(2)  # anything its capture would set off comes within this
            final = (await linked.diagnostics())["capture"]
            changed = list(captured[len(idle) :])
    finally:
        await local.close()
        local.cleanup()

    figures = {
        "idle_s": IDLE,
        "idle_events": len(idle),
        "idle_forwarded": after["forwarded"] - before["forwarded"],
        "idle_backfilled": after["backfilled"] - before["backfilled"],
        "events_received_before_after": [received_before, received_after],
        "change_events": len(changed),
        "change_forwarded": final["forwarded"] - after["forwarded"],
        "test_s": round(time.monotonic() - began, 1),
    }
    record("ha_11_self_link_idle", **figures)
    assert idle == [], idle[:3]
    assert figures["idle_forwarded"] == 0, figures
    assert figures["idle_backfilled"] == 0, figures
    assert received_before is not None, figures
    assert received_before == received_after, figures
    assert [e["data"]["data"]["entity_id"] for e in changed] == [SWITCH], changed
    assert figures["change_forwarded"] == 1, figures
