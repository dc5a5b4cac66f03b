"""Two real Home Assistants linked both ways, default options: no loop, no echo (issue 24).

A and B are each a `hass` process running this checkout's integration (`local_hass.py`); A's
entry links to B, B's to A, both through the real config flow with default options. Each has
the harness's default entities (input_booleans, input_numbers, the template `light.e2e_lamp`).

- Mirrors of mirrors are never made: B's mirrors on A (and A's link entities) are recognised
  from A's registry (platform `ha_ingestion`) and skipped, and the other way round; entity and
  device counts on both sides stay the same over 60 s of real changes on both sides.
- No event echo: each side fires exactly one `ha_ingestion_event` per change of the other's
  switch, none for anything of the integration there (mirrors, link entities, its own
  `ha_ingestion_event`s), and nothing more once the changes stop.
- A call on a mirror reaches the other side once and does not come back (each way).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import time
from typing import Any

import pytest

from tests.e2e.helpers import record
from tests.harness import RemoteHass

from .local_hass import EVENT, LocalLink, link_local, start_local, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DOMAIN = "ha_ingestion"
SWITCH = "input_boolean.e2e_switch"
LEVEL = "input_number.e2e_level"
LAMP = "light.e2e_lamp"
RUN = 60.0
STEP = 3.0
QUIET = 10.0


async def counts(side: RemoteHass) -> tuple[int, int, int]:
    """(registered entities, devices, states) as the side reports them."""
    entities = await side.command({"type": "config/entity_registry/list_for_display"})
    devices = await side.command({"type": "config/device_registry/list"})
    states = await side.command({"type": "get_states"})
    return len(entities["entities"]), len(devices), len(states)


async def integration_entities(side: RemoteHass) -> set[str]:
    """Entity ids the integration registered on `side` (its mirrors and link entities)."""
    entities = await side.command({"type": "config/entity_registry/list_for_display"})
    return {e["ei"] for e in entities["entities"] if e.get("pl") == DOMAIN}


def of(events: list[dict[str, Any]], entity_id: str) -> int:
    return sum(1 for e in events if e["data"]["data"].get("entity_id") == entity_id)


async def test_two_instances_linked_both_ways_neither_loop_nor_echo(
    tmp_path: Path, socket_enabled: None
) -> None:
    began = time.monotonic()
    a = await start_local(tmp_path / "a", name="E2E A")
    b: RemoteHass | None = None
    try:
        b = await start_local(tmp_path / "b", name="E2E B")
        a_to_b = await link_local(a, b.url, b.token or "")
        on_a = f"light.{a_to_b.slug}_e2e_lamp"  # A's mirror of B's lamp
        await wait_until(lambda: _has(a, on_a), 60, f"{on_a} mirrored on A", a)
        b_to_a = await link_local(b, a.url, a.token or "")
        on_b = f"light.{b_to_a.slug}_e2e_lamp"  # B's mirror of A's lamp
        await wait_until(lambda: _has(b, on_b), 60, f"{on_b} mirrored on B", b)
        # Both linked: B has seen A's mirrors, A is told of B's new ones (unknown entities).
        await wait_until(lambda: _skipped(b_to_a), 60, "B skips A's mirrors", b)
        await wait_until(lambda: _skipped(a_to_b), 60, "A skips B's mirrors", a)
        await asyncio.sleep(5)  # the link entities' first changes
        before = {"a": await counts(a), "b": await counts(b)}

        fired: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        calls: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        async with a.ws() as ws_a, b.ws() as ws_b:
            await ws_a.subscribe(EVENT, fired["a"].append)
            await ws_b.subscribe(EVENT, fired["b"].append)
            await ws_a.subscribe("call_service", calls["a"].append)
            await ws_b.subscribe("call_service", calls["b"].append)
            made = {"a": 0, "b": 0}
            level = 0
            end = time.monotonic() + RUN
            while time.monotonic() < end:
                await a.toggle(SWITCH)
                await b.toggle(SWITCH)
                level += 1
                await a.set_input_number(LEVEL, level)
                await b.set_input_number(LEVEL, level)
                made["a"] += 1
                made["b"] += 1
                await asyncio.sleep(STEP)

            # Each side's switch and level changes, once each, on the other side.
            def all_in() -> bool:
                return all(
                    of(fired[x], SWITCH) >= made[y] and of(fired[x], LEVEL) >= made[y]
                    for x, y in (("a", "b"), ("b", "a"))
                )

            await wait_until(all_in, 30, "every change captured on the other side", a)
            settled = {x: len(fired[x]) for x in fired}
            await asyncio.sleep(QUIET)  # an echo would go on by itself
            quiet = {x: len(fired[x]) - settled[x] for x in fired}

            # A forwarded call reaches the other side once and does not come back.
            calls["a"].clear()
            calls["b"].clear()
            await a.call_service("light", "turn_on", {"entity_id": on_a})
            await wait_until(lambda: _lamp(b, "on"), 30, "B's lamp on (from A)", b)
            await b.call_service("light", "turn_off", {"entity_id": on_b})
            await wait_until(lambda: _lamp(a, "off"), 30, "A's lamp off (from B)", a)
            await asyncio.sleep(QUIET)
            light_calls = {
                x: [
                    _one(c["data"]["service_data"].get("entity_id"))
                    for c in calls[x]
                    if c["data"].get("domain") == "light"
                ]
                for x in calls
            }
        after = {"a": await counts(a), "b": await counts(b)}
        ours = {"a": await integration_entities(a), "b": await integration_entities(b)}
        diagnostics = {"a": await a_to_b.diagnostics(), "b": await b_to_a.diagnostics()}
    finally:
        for side in (b, a):
            if side is not None:
                await side.close()
                side.cleanup()

    # What the other side's integration registered is never captured here.
    echoed = {
        x: [
            e["data"]["data"].get("entity_id")
            for e in fired[x]
            if e["data"]["data"].get("entity_id") in ours[y] or e["data"]["event_type"] == EVENT
        ]
        for x, y in (("a", "b"), ("b", "a"))
    }
    figures = {
        "run_s": RUN,
        "changes_made": made,
        "events_fired": {x: len(fired[x]) for x in fired},
        "switch_events": {x: of(fired[x], SWITCH) for x in fired},
        "level_events": {x: of(fired[x], LEVEL) for x in fired},
        "events_after_changes_stopped": quiet,
        "counts_before_after": {x: [before[x], after[x]] for x in before},
        "skipped_remote_mirrors": {
            x: diagnostics[x]["mirror"]["remote_mirrors"]["recognised"] for x in diagnostics
        },
        "registry": {x: diagnostics[x]["mirror"]["remote_mirrors"] for x in diagnostics},
        "other_events": {
            x: sorted(
                {
                    str(e["data"]["data"].get("entity_id") or e["data"]["event_type"])
                    for e in fired[x]
                }
                - {SWITCH, LEVEL}
            )
            for x in fired
        },
        "echo_skipped": {x: diagnostics[x]["capture"]["echo_skipped"] for x in diagnostics},
        "light_calls": light_calls,
        "test_s": round(time.monotonic() - began, 1),
    }
    record("both_ways", **figures)
    assert before == after, figures
    assert echoed == {"a": [], "b": []}, figures
    # Exactly one event per change made on the other side (no echo, nothing lost).
    assert figures["switch_events"] == {"a": made["b"], "b": made["a"]}, figures
    assert figures["level_events"] == {"a": made["b"], "b": made["a"]}, figures
    assert quiet == {"a": 0, "b": 0}, figures
    for x in diagnostics:
        assert diagnostics[x]["mirror"]["remote_mirrors"]["recognised"] > 0, figures
        assert diagnostics[x]["mirror"]["remote_mirrors"]["registry_failures"] == 0, figures
    # No mirror of a mirror on either side.
    assert not any(e.startswith(f"light.{a_to_b.slug}_{b_to_a.slug}") for e in ours["a"]), ours
    assert not any(e.startswith(f"light.{b_to_a.slug}_{a_to_b.slug}") for e in ours["b"]), ours
    # Each call: made on the mirror on one side, run once on the real lamp on the other,
    # nothing back.
    assert light_calls["a"] == [on_a, LAMP], figures
    assert light_calls["b"] == [LAMP, on_b], figures


def _one(entity_id: Any) -> Any:
    """A service call's entity id, given alone or as a list of one."""
    return entity_id[0] if isinstance(entity_id, list) and len(entity_id) == 1 else entity_id


async def _has(side: RemoteHass, entity_id: str) -> bool:
    return await side.get_state(entity_id) is not None


async def _lamp(side: RemoteHass, state: str) -> bool:
    lamp = await side.get_state(LAMP)
    return lamp is not None and lamp["state"] == state


async def _skipped(link: LocalLink) -> bool:
    diagnostics = await link.diagnostics()
    return bool(diagnostics["mirror"]["skipped"].get("remote_mirror"))
