"""storm: 200 engines, one server that goes down for D seconds and comes back.

Three policies, one run each, side by side (backoff base 1, multiplier 2, max 60 for all):

- `probes`: the default policy: full jitter, TCP readiness probes every 1 s while waiting, and
  once the server listens again the attempt after U(0, reconnect_spread);
- `full jitter`: the policy before readiness probes (probe_interval 0): wait U(0, window);
- `jitter off`: no probes, wait the window itself.

The breaker threshold is set far above anything the outage can reach (1,000,000) so that only
the policy shapes the storm (the old policies would otherwise also wait out the breaker's 60 s;
refused connects no longer count against it anyway).

Counted on the server: WebSocket upgrade requests per 1 s bucket after it listens again (peak as %
of the clients), and per client the time from "listening again" to CONNECTED (median, max).
Counted on the clients: every attempt and every readiness probe (the plot shows attempts).
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from typing import Any

import aiohttp

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
    ConnectionConfig,
    EngineConfig,
    HaWebSocketSession,
    LinkEngine,
    LinkSnapshot,
    LinkState,
    ProbeResult,
    tcp_probe,
)

from .common import RESULTS, Result, ServerProcess, log, wait_for
from .plot import Panel, bar_panels
from .server import TOKEN

CLIENTS = 200
FULL_OUTAGE = 30.0
QUICK_OUTAGE = 5.0
PEAK_TARGET = 0.15
BREAKER_THRESHOLD = 1_000_000
MEDIAN_TARGET = 5.0
DEFAULTS = EngineConfig(connection=ConnectionConfig(url="ws://x", token="x"))  # noqa: S106
# name -> (jitter, probe interval); the reconnect spread is the default one.
POLICIES: dict[str, tuple[bool, float]] = {
    "probes": (True, DEFAULTS.probe_interval),
    "full jitter": (True, 0.0),
    "jitter off": (False, 0.0),
}
COLORS = {"probes": (44, 160, 44), "full jitter": (31, 119, 180), "jitter off": (255, 127, 14)}


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
    server: ServerProcess, *, policy: str, outage: float, clients: int
) -> dict[str, Any]:
    jitter, probe_interval = POLICIES[policy]
    attempts: list[float] = []
    probes: list[float] = []

    def factory(*args: Any, **kwargs: Any) -> HaWebSocketSession:
        attempts.append(time.monotonic())
        return HaWebSocketSession(*args, **kwargs)

    async def probe(host: str, port: int, limit: float) -> ProbeResult:
        probes.append(time.monotonic())
        return await tcp_probe(host, port, limit)

    config = EngineConfig(
        connection=ConnectionConfig(url=server.url, token=TOKEN),
        backoff=_backoff(jitter),
        breaker=BreakerConfig(failure_threshold=BREAKER_THRESHOLD),
        probe_interval=probe_interval,
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
        sup = LinkEngine(
            http, config, rng=random.Random(1000 + i), session_factory=factory, probe=probe
        )
        sup.add_listener(listener_for(i))
        sups.append(sup)

    def all_connected() -> bool:
        return all(s.state is LinkState.CONNECTED for s in sups)

    try:
        for sup in sups:
            await sup.start()
        if not await wait_for(all_connected, 60, 0.05):
            raise RuntimeError("not every engine connected before the outage")
        await asyncio.sleep(1.0)
        await server.reset()
        attempts.clear()
        probes.clear()
        t_down = await server.down()
        if not await wait_for(lambda: not any(s.state is LinkState.CONNECTED for s in sups), 10):
            raise RuntimeError("some engines did not notice the outage")
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
    back_after = sorted(t - t_up for t in connected_at if t > t_up)
    all_back = max(connected_at) - t_up if back else None
    timeline_start = -2.0
    timeline = _buckets(attempts, t_down, timeline_start, t_end - t_down + 1)
    attempts_during = sum(1 for t in attempts if t_down <= t < t_up)
    probes_during = sum(1 for t in probes if t_down <= t < t_up)
    return {
        "policy": policy,
        "jitter": jitter,
        "probe_interval_s": probe_interval,
        "reconnect_spread_s": config.reconnect_spread,
        "outage_s": round(t_up - t_down, 3),
        "all_back": back,
        "all_back_s": all_back,
        "median_back_s": statistics.median(back_after) if back_after else None,
        "back_after_up_s": [round(t, 3) for t in back_after],
        "peak_attempts_per_s": peak,
        "peak_pct": 100.0 * peak / clients,
        "peak_second": after.index(peak),
        "upgrades_after_recovery": len(upgrades),
        "client_attempts_during_outage": attempts_during,
        "attempts_per_client_during_outage": attempts_during / clients,
        "probes_per_client_during_outage": probes_during / clients,
        "probes_per_client_after_recovery": sum(1 for t in probes if t >= t_up) / clients,
        "client_attempts_total": len(attempts),
        "server_buckets_after_recovery": after,
        "client_timeline_start_s": timeline_start,
        "client_timeline": timeline,
    }


def _plot(runs: list[dict[str, Any]], clients: int, outage: float) -> None:
    panels = []
    for r in runs:
        back = f"{r['all_back_s']:.1f} s" if r["all_back_s"] is not None else "not all back"
        median = f"{r['median_back_s']:.1f} s" if r["median_back_s"] is not None else "n/a"
        panels.append(
            Panel(
                title=(
                    f"{r['policy']}: peak after recovery {r['peak_attempts_per_s']} attempts/s = "
                    f"{r['peak_pct']:.1f} % of {clients} clients, back after median {median}, "
                    f"max {back}; {r['attempts_per_client_during_outage']:.1f} attempts + "
                    f"{r['probes_per_client_during_outage']:.1f} probes per client while down"
                ),
                x0=r["client_timeline_start_s"],
                width=1.0,
                counts=r["client_timeline"],
                color=COLORS[r["policy"]],
                vlines=[(0.0, "server down"), (r["outage_s"], "server up")],
                hlines=[(PEAK_TARGET * clients, f"{PEAK_TARGET:.0%} of clients")],
            )
        )
    bar_panels(
        RESULTS / "storm.png",
        f"Reconnect storm: {clients} engines, {outage:g} s outage, backoff 1 s x2 up to 60 s",
        panels,
        "seconds since the server went down",
        "connection attempts per second (client side)",
    )


async def run(quick: bool) -> Result:
    """The three policies, one after the other against the same server."""
    outage = QUICK_OUTAGE if quick else FULL_OUTAGE
    result = Result(
        "storm",
        quick,
        params={
            "clients": CLIENTS,
            "outage_s": outage,
            "backoff": {"base": 1.0, "multiplier": 2.0, "max_delay": 60.0},
            "breaker_failure_threshold": BREAKER_THRESHOLD,
            "policies": {
                name: {"jitter": j, "probe_interval": p} for name, (j, p) in POLICIES.items()
            },
            "reconnect_spread": DEFAULTS.reconnect_spread,
        },
    )
    runs = []
    async with ServerProcess() as server:
        for policy in POLICIES:
            log(f"storm: {CLIENTS} clients, {policy}, {outage:g} s outage")
            r = await _storm(server, policy=policy, outage=outage, clients=CLIENTS)
            log(
                f"storm: {policy}: peak {r['peak_attempts_per_s']}/s ({r['peak_pct']:.1f} %), "
                f"median back {r['median_back_s']}, all back after {r['all_back_s']}, "
                f"{r['attempts_per_client_during_outage']:.2f} attempts and "
                f"{r['probes_per_client_during_outage']:.2f} probes per client while down"
            )
            runs.append(r)
    _plot(runs, CLIENTS, outage)
    result.details["runs"] = runs
    result.details["plot"] = "bench/results/storm.png"
    for r in runs:
        name = r["policy"]
        result.add(
            f"{name}: peak attempts/s after recovery",
            r["peak_pct"],
            "% of clients",
            target=f"<= {PEAK_TARGET:.0%}" if r["jitter"] else "",
            ok=r["peak_pct"] <= 100 * PEAK_TARGET if r["jitter"] else None,
            digits=1,
        )
        median = r["median_back_s"]
        result.add(
            f"{name}: median time back after the server listens",
            median,
            "s",
            target=f"<= {MEDIAN_TARGET:g} s" if name == "probes" else "",
            ok=(median is not None and median <= MEDIAN_TARGET) if name == "probes" else None,
            digits=1,
        )
        result.add(f"{name}: time until all back", r["all_back_s"], "s", digits=1)
        result.add(
            f"{name}: attempts per client while down",
            r["attempts_per_client_during_outage"],
            digits=1,
        )
        result.add(
            f"{name}: probes per client while down", r["probes_per_client_during_outage"], digits=1
        )
    return result
