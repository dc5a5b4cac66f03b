"""control: service calls on mirrors against a real remote, side by side with the same calls made there.

Two real `hass` processes: the remote (`RemoteHass(demo=True)`: Home Assistant's demo lights) and
a local one running this checkout's integration, linked through the real config flow with
default options (`tests.e2e_ha.local_hass`). N calls alternate `light.turn_on` / `light.turn_off`
on one demo light, each changing it, interleaved (same run, same light, one at a time):

- **direct**: `call_service` on the remote's own WebSocket API; timed from sending the call to
  the remote's `state_changed` of that light arriving on a WebSocket subscribed to the remote;
- **mirrored**: `call_service` on the local WebSocket API, targeting the light's local mirror;
  timed from sending the call to the local `state_changed` of the mirror showing the remote's
  new state (forwarded, done on the remote, its update mirrored back).

Reported: median and p99 of both, the median overhead (mirrored - direct), and calls lost (no
change within `LOST_AFTER` s) or doubled (the remote changed the light more often than it was
called). Without control forwarding (a checkout whose mirrors do not include lights, or whose
mirrors refuse calls) only the direct side is measured, and the table says why.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import statistics
import tempfile
import time
from typing import Any

from tests.harness.remote import RemoteHass, RemoteHassError, RemoteWs

from .common import Result, log

FULL = {"calls": 200}
QUICK = {"calls": 20}
LIGHT = "light.bed_light"
LOST_AFTER = 5.0  # s without the expected change: the call counts as lost
MIRROR_MARK = "_mirror:"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class StateWatch:
    """`state_changed` of one entity on one WebSocket: waits for its next state."""

    def __init__(self, entity_id: str) -> None:
        """Watch `entity_id`."""
        self.entity_id = entity_id
        self.changes = 0
        self._waiter: tuple[str, asyncio.Future[float]] | None = None

    def on_event(self, event: dict[str, Any]) -> None:
        """A `state_changed` event from the subscription."""
        data = event.get("data", {})
        if data.get("entity_id") != self.entity_id or not data.get("new_state"):
            return
        old, new = data.get("old_state") or {}, data["new_state"]
        if old.get("state") == new["state"]:
            return  # an attribute-only write
        self.changes += 1
        waiter = self._waiter
        if waiter is not None and new["state"] == waiter[0] and not waiter[1].done():
            waiter[1].set_result(time.perf_counter())

    def expect(self, state: str) -> asyncio.Future[float]:
        """A future resolved with the time the entity next shows `state`."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiter = (state, future)
        return future


async def _timed_call(ws: RemoteWs, watch: StateWatch, entity_id: str, on: bool) -> float | None:
    """One call; seconds from sending it to the watched change (None: lost)."""
    target = "on" if on else "off"
    arrived = watch.expect(target)
    began = time.perf_counter()
    await ws.command(
        {
            "type": "call_service",
            "domain": entity_id.split(".", 1)[0],
            "service": "turn_on" if on else "turn_off",
            "target": {"entity_id": entity_id},
        }
    )
    try:
        async with asyncio.timeout(LOST_AFTER):
            return await arrived - began
    except TimeoutError:
        return None


async def _mirror_of(local: RemoteHass, remote_id: str) -> str | None:
    registry = await local.command({"type": "config/entity_registry/list"})
    for entry in registry:
        unique_id = str(entry.get("unique_id", ""))
        if entry.get("platform") == "ha_ingestion" and unique_id.endswith(MIRROR_MARK + remote_id):
            return str(entry["entity_id"])
    return None


async def run(quick: bool) -> Result:
    """Both sides, interleaved; figures for what could be measured."""
    from custom_components.ha_ingestion.mirror.choice import MIRROR_DOMAINS
    from tests.e2e_ha.local_hass import link_local, start_local

    n = (QUICK if quick else FULL)["calls"]
    result = Result("control", quick, params={"calls_per_side": n, "entity": LIGHT})
    direct: list[float | None] = []
    mirrored: list[float | None] = []
    why_not = ""
    with tempfile.TemporaryDirectory(prefix="bench-control-") as tmp:
        log("control: setting up the remote (demo) and the local hass")
        remote = RemoteHass(Path(tmp) / "remote", name="Bench Control Remote", demo=True)
        local: RemoteHass | None = None
        try:
            await remote.setup()
            mirror: str | None = None
            domain = LIGHT.split(".", 1)[0]
            if domain not in MIRROR_DOMAINS:
                why_not = f"{domain} is not mirrored by this checkout (no control forwarding yet)"
            else:
                local = await start_local(
                    Path(tmp) / "local", name="Bench Control Local", entities_yaml=""
                )
                await link_local(local, remote.url, remote.token or "")
                deadline = time.monotonic() + 30
                while mirror is None and time.monotonic() < deadline:
                    mirror = await _mirror_of(local, LIGHT)
                    await asyncio.sleep(0.2)
                if mirror is None:
                    why_not = f"no mirror of {LIGHT} appeared within 30 s"
            remote_watch = StateWatch(LIGHT)
            local_watch = StateWatch(mirror or "")
            async with remote.ws() as remote_ws:
                await remote_ws.subscribe("state_changed", remote_watch.on_event)
                state = (await remote.get_state(LIGHT) or {}).get("state")
                on = state != "on"
                if local is not None and mirror is not None:
                    async with local.ws() as local_ws:
                        await local_ws.subscribe("state_changed", local_watch.on_event)
                        log(f"control: {n} calls each side, interleaved")
                        for _ in range(n):
                            direct.append(await _timed_call(remote_ws, remote_watch, LIGHT, on))
                            on = not on
                            try:
                                mirrored.append(
                                    await _timed_call(local_ws, local_watch, mirror, on)
                                )
                            except RemoteHassError as err:
                                why_not = f"the mirror refused the call: {str(err)[:160]}"
                                break
                            on = not on
                if why_not:
                    log(f"control: mirrored side not measured: {why_not}")
                    mirrored.clear()
                    while len(direct) < n:
                        direct.append(await _timed_call(remote_ws, remote_watch, LIGHT, on))
                        on = not on
                await asyncio.sleep(1.0)  # a late doubled change would show up here
                remote_changes = remote_watch.changes
        finally:
            for server in (local, remote):
                if server is not None:
                    await server.close()
    return _report(result, direct, mirrored, remote_changes, why_not)


def _report(
    result: Result,
    direct: list[float | None],
    mirrored: list[float | None],
    remote_changes: int,
    why_not: str,
) -> Result:
    d_ok = [s * 1000 for s in direct if s is not None]
    m_ok = [s * 1000 for s in mirrored if s is not None]
    calls = len(direct) + len(mirrored)
    lost = (len(direct) - len(d_ok)) + (len(mirrored) - len(m_ok))
    doubled = max(0, remote_changes - calls)
    result.details.update(
        {
            "direct_ms": [round(v, 2) for v in d_ok],
            "mirrored_ms": [round(v, 2) for v in m_ok],
            "remote_changes": remote_changes,
            "calls": calls,
            "mirrored_not_measured": why_not or None,
        }
    )
    result.add(
        "direct: call -> remote state (median)", statistics.median(d_ok) if d_ok else None, "ms"
    )
    result.add("direct: call -> remote state (p99)", _pct(d_ok, 0.99), "ms")
    if why_not:
        result.add("mirrored: not measured", why_not)
    else:
        d_med = statistics.median(d_ok) if d_ok else None
        m_med = statistics.median(m_ok) if m_ok else None
        result.add("mirrored: call here -> mirror shows it (median)", m_med, "ms")
        result.add("mirrored: call here -> mirror shows it (p99)", _pct(m_ok, 0.99), "ms")
        overhead = m_med - d_med if m_med is not None and d_med is not None else None
        result.add(
            "median overhead (mirrored - direct)",
            overhead,
            "ms",
            target="<= 15 ms",
            ok=overhead is not None and overhead <= 15,
        )
    result.add("calls lost", lost, target="0", ok=lost == 0, digits=0)
    result.add("calls doubled", doubled, target="0", ok=doubled == 0, digits=0)
    return result
