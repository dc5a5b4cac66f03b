"""storm: 200 supervisors, one server that goes down for D seconds and comes back.

Backoff base 1, multiplier 2, max 60, with full jitter and without. The breaker threshold is set
far above anything the outage can reach (1,000,000) so that only the backoff policy shapes the
storm; the default breaker (5 failures, 60 s) would add its own fixed recovery wait.

Counted on the server: WebSocket upgrade requests per 1 s bucket after it listens again (peak as %
of the clients), and the time until every supervisor is CONNECTED again. Counted on the clients
(for the plot): every attempt, including the refused ones during the outage.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import aiohttp

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
    ConnectionConfig,
    HaWebSocketSession,
    LinkSnapshot,
    LinkState,
    Supervisor,
    SupervisorConfig,
)

from .common import RESULTS, Result, ServerProcess, log, wait_for
from .plot import Panel, bar_panels
from .server import TOKEN

CLIENTS = 200
FULL_OUTAGE = 30.0
QUICK_OUTAGE = 5.0
PEAK_TARGET = 0.15
BREAKER_THRESHOLD = 1_000_000


def _backoff(jitter: bool) -> BackoffConfig:
    return BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=jitter)


def _buckets(times: list[float], origin: float, start: float, end: float) -> list[int]:
    """Counts per 1 s bucket of `times` (relative to `origin`) over [start, end)."""
    counts = [0] * max(1, math.ceil(end - start))
    for t in times:
        index = math.floor(t - origin - start)
        if 0 <= index < len(counts):
            counts[index] += 1
    return counts


async def _storm(
    server: ServerProcess, *, jitter: bool, outage: float, clients: int
) -> dict[str, Any]:
    attempts: list[float] = []

    def factory(*args: Any, **kwargs: Any) -> HaWebSocketSession:
        attempts.append(time.monotonic())
        return HaWebSocketSession(*args, **kwargs)

    config = SupervisorConfig(
        connection=ConnectionConfig(url=server.url, token=TOKEN),
        backoff=_backoff(jitter),
        breaker=BreakerConfig(failure_threshold=BREAKER_THRESHOLD),
    )
    connected_at = [0.0] * clients

    def listener_for(i: int) -> Any:
        def listener(snap: LinkSnapshot) -> None:
            if snap.state is LinkState.CONNECTED:
                connected_at[i] = time.monotonic()

        return listener

    https = [aiohttp.ClientSession() for _ in range(clients)]
    sups = []
    for i, http in enumerate(https):
        sup = Supervisor(http, config, rng=random.Random(1000 + i), session_factory=factory)
        sup.add_listener(listener_for(i))
        sups.append(sup)

    def all_connected() -> bool:
        return all(s.state is LinkState.CONNECTED for s in sups)

    try:
        for sup in sups:
            await sup.start()
        if not await wait_for(all_connected, 60, 0.05):
            raise RuntimeError("not every supervisor connected before the outage")
        await asyncio.sleep(1.0)
        await server.reset()
        attempts.clear()
        t_down = await server.down()
        if not await wait_for(lambda: not any(s.state is LinkState.CONNECTED for s in sups), 10):
            raise RuntimeError("some supervisors did not notice the outage")
        await asyncio.sleep(max(0.0, t_down + outage - time.monotonic()))
        t_up = await server.up()
        limit = 60.0 + 30.0
        back = await wait_for(lambda: all_connected() and min(connected_at) > t_up, limit, 0.05)
        t_end = time.monotonic()
        stats = await server.stats()
    finally:
        await asyncio.gather(*(s.close() for s in sups), return_exceptions=True)
        await asyncio.gather(*(h.close() for h in https), return_exceptions=True)

    upgrades = [t for t in stats["upgrades"] if t >= t_up]
    after = _buckets(upgrades, t_up, 0.0, t_end - t_up + 1)
    peak = max(after)
    all_back = max(connected_at) - t_up if back else None
    timeline_start = -2.0
    timeline = _buckets(attempts, t_down, timeline_start, t_end - t_down + 1)
    return {
        "jitter": jitter,
        "outage_s": round(t_up - t_down, 3),
        "all_back": back,
        "all_back_s": all_back,
        "peak_attempts_per_s": peak,
        "peak_pct": 100.0 * peak / clients,
        "peak_second": after.index(peak),
        "upgrades_after_recovery": len(upgrades),
        "client_attempts_during_outage": sum(1 for t in attempts if t_down <= t < t_up),
        "client_attempts_total": len(attempts),
        "server_buckets_after_recovery": after,
        "client_timeline_start_s": timeline_start,
        "client_timeline": timeline,
    }


def _plot(runs: list[dict[str, Any]], clients: int, outage: float) -> None:
    panels = []
    for r in runs:
        back = f"{r['all_back_s']:.1f} s" if r["all_back_s"] is not None else "not all back"
        panels.append(
            Panel(
                title=(
                    f"jitter {'on (full jitter)' if r['jitter'] else 'off'}: peak after recovery "
                    f"{r['peak_attempts_per_s']} attempts/s = {r['peak_pct']:.1f} % of "
                    f"{clients} clients, all back after {back}"
                ),
                x0=r["client_timeline_start_s"],
                width=1.0,
                counts=r["client_timeline"],
                color=(31, 119, 180) if r["jitter"] else (255, 127, 14),
                vlines=[(0.0, "server down"), (r["outage_s"], "server up")],
                hlines=[(PEAK_TARGET * clients, f"{PEAK_TARGET:.0%} of clients")],
            )
        )
    bar_panels(
        RESULTS / "storm.png",
        f"Reconnect storm: {clients} supervisors, {outage:g} s outage, backoff 1 s x2 up to 60 s",
        panels,
        "seconds since the server went down",
        "connection attempts per second (client side)",
    )


async def run(quick: bool) -> Result:
    """Jitter on, then jitter off."""
    outage = QUICK_OUTAGE if quick else FULL_OUTAGE
    result = Result(
        "storm",
        quick,
        params={
            "clients": CLIENTS,
            "outage_s": outage,
            "backoff": {"base": 1.0, "multiplier": 2.0, "max_delay": 60.0},
            "breaker_failure_threshold": BREAKER_THRESHOLD,
        },
    )
    runs = []
    async with ServerProcess() as server:
        for jitter in (True, False):
            log(
                f"storm: {CLIENTS} clients, jitter {'on' if jitter else 'off'}, {outage:g} s outage"
            )
            r = await _storm(server, jitter=jitter, outage=outage, clients=CLIENTS)
            log(
                f"storm: jitter {'on' if jitter else 'off'}: peak {r['peak_attempts_per_s']}/s "
                f"({r['peak_pct']:.1f} %), all back after {r['all_back_s']}"
            )
            runs.append(r)
    _plot(runs, CLIENTS, outage)
    result.details["runs"] = runs
    result.details["plot"] = "bench/results/storm.png"
    for r in runs:
        name = "jitter on" if r["jitter"] else "jitter off"
        result.add(
            f"{name}: peak attempts/s after recovery",
            r["peak_pct"],
            "% of clients",
            target=f"<= {PEAK_TARGET:.0%}" if r["jitter"] else "",
            ok=r["peak_pct"] <= 100 * PEAK_TARGET if r["jitter"] else None,
            digits=1,
        )
        result.add(f"{name}: time until all back", r["all_back_s"], "s", digits=1)
    return result
