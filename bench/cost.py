"""cost: CPU of an idle link, and memory growth over many failed attempts.

CPU: the process CPU time (`time.process_time`: every thread, user + system; the split from
`getrusage` is in the JSON) of this process while one engine holds an idle link to the server
process (heartbeat only), over a fixed window; once with heartbeat_interval=30 (the default) and
once with heartbeat_interval=1, plus a baseline without any link. The two link runs give the base
cost of a connected link and the cost of one ping, which model an hour:
base x 3600 s + pings/h x per-ping.

Memory: 10,000 failed attempts against a port with nothing listening, with an injected clock and
an instant sleep (so backoff runs at full speed; refused connects never open the breaker, and
readiness probes are off here); traced by tracemalloc
after a warm-up, the error history must stay at its bound.
"""

from __future__ import annotations

import asyncio
import gc
import random
import resource
import time
import tracemalloc
from typing import Any

import aiohttp
import psutil

from custom_components.ha_ingestion.client import (
    ConnectionConfig,
    EngineConfig,
    LinkEngine,
    LinkState,
)

from .common import Result, ServerProcess, free_port, log, wait_for
from .server import TOKEN

FULL = {"cpu_window_s": 20.0, "attempts": 10_000, "warmup_attempts": 500}
QUICK = {"cpu_window_s": 5.0, "attempts": 2_000, "warmup_attempts": 300}
MEMORY_TARGET = 1024 * 1024


# ---------------------------------------------------------------------- CPU


async def _cpu_window(
    window: float, server: ServerProcess | None, interval: float | None
) -> dict[str, Any]:
    """CPU seconds used by this process over `window` s, with an idle link when `interval` is set."""
    async with aiohttp.ClientSession() as http:
        sup = None
        if server is not None and interval is not None:
            config = EngineConfig(
                connection=ConnectionConfig(
                    url=server.url, token=TOKEN, heartbeat_interval=interval
                )
            )
            sup = LinkEngine(http, config)
            await sup.start()
            if not await wait_for(lambda: sup.state is LinkState.CONNECTED, 15):
                raise RuntimeError("link did not come up")
            await asyncio.sleep(1.0)
        pings_before = (await server.stats())["commands"].get("ping", 0) if server else 0
        gc.collect()
        cpu0, use0, t0 = time.process_time(), _usage(), time.monotonic()
        await asyncio.sleep(window)
        cpu1, use1, t1 = time.process_time(), _usage(), time.monotonic()
        pings_after = (await server.stats())["commands"].get("ping", 0) if server else 0
        rtt = sup.snapshot().last_ping_rtt if sup else None
        if sup is not None:
            await sup.close()
    return {
        "heartbeat_interval": interval,
        "window_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        "user_s": use1[0] - use0[0],
        "system_s": use1[1] - use0[1],
        "pings": pings_after - pings_before,
        "last_ping_rtt_ms": None if rtt is None else rtt * 1000,
    }


def _usage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _model(slow: dict[str, Any], fast: dict[str, Any]) -> tuple[float, float]:
    """Solve cpu = base_rate * window + per_ping * pings from the two link runs."""
    w1, n1, c1 = slow["window_s"], slow["pings"], slow["cpu_s"]
    w2, n2, c2 = fast["window_s"], fast["pings"], fast["cpu_s"]
    det = w1 * n2 - w2 * n1
    if det == 0 or n2 == 0:
        return c1 / w1, 0.0
    base = (c1 * n2 - c2 * n1) / det
    per_ping = (w1 * c2 - w2 * c1) / det
    return base, per_ping


# ---------------------------------------------------------------------- memory


class _FakeTime:
    """Monotonic and wall clocks that only move when the engine sleeps; sleeping is instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_750_000_000.0 + self.now

    async def sleep(self, delay: float) -> None:
        # At least 1 ms, as real time would: the breaker's `state` (clock - opened_at >= timeout)
        # and `retry_in()` (opened_at + timeout - clock) can disagree by one float rounding, which
        # makes the engine ask for a 0.0 s pause while the breaker still reads OPEN; a clock
        # that advances by exactly 0.0 would then never reach half-open.
        self.now += max(delay, 0.001)
        await asyncio.sleep(0)


async def _failed_attempts(warmup: int, attempts: int) -> dict[str, Any]:
    port = free_port()  # bound and released: connecting is refused at once
    fake = _FakeTime()
    async with aiohttp.ClientSession() as http:
        # No readiness probes: on fake time every 60 s backoff window would hold 120 real TCP
        # probes, and this measures what attempts leave behind (probes: bench storm).
        config = EngineConfig(
            connection=ConnectionConfig(url=f"ws://127.0.0.1:{port}/api/websocket", token=TOKEN),
            probe_interval=0.0,
        )
        sup = LinkEngine(
            http, config, rng=random.Random(3), clock=fake.clock, wall=fake.wall, sleep=fake.sleep
        )

        def made() -> int:
            return sup._attempts_total

        await sup.start()
        if not await wait_for(lambda: made() >= warmup, 300, 0.05):
            raise RuntimeError(f"warm-up reached only {made()} attempts")
        process = psutil.Process()
        gc.collect()
        tracemalloc.start(1)
        first = made()
        before = tracemalloc.get_traced_memory()[0]
        snap_before = tracemalloc.take_snapshot()
        rss_before = process.memory_info().rss
        started = time.perf_counter()
        if not await wait_for(lambda: made() >= first + attempts, 900, 0.05):
            raise RuntimeError(f"reached only {made() - first} attempts")
        elapsed = time.perf_counter() - started
        done = made() - first
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        peak = tracemalloc.get_traced_memory()[1]
        snap_after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        rss_after = process.memory_info().rss
        snap = sup.snapshot()
        await sup.close()
    top = [
        f"{stat.size_diff:+,} B in {stat.count_diff:+,} blocks: {stat.traceback.format()[-1].strip()}"
        for stat in snap_after.compare_to(snap_before, "lineno")[:5]
    ]
    return {
        "warmup_attempts": first,
        "attempts": done,
        "seconds": elapsed,
        "traced_growth_bytes": after - before,
        "traced_peak_bytes": peak,
        "rss_growth_bytes": rss_after - rss_before,
        "errors_kept": len(snap.errors),
        "error_history_size": config.error_history_size,
        "failed_connections": snap.failed_connections,
        "breaker_times_opened": snap.breaker.times_opened,
        "top_growth": top,
    }


async def run(quick: bool) -> Result:
    """CPU windows, then the failed-attempt memory run."""
    size = QUICK if quick else FULL
    window = size["cpu_window_s"]
    result = Result("cost", quick, params=dict(size))
    async with ServerProcess() as server:
        log(f"cost: CPU over {window:g} s windows: no link, heartbeat 30 s, heartbeat 1 s")
        baseline = await _cpu_window(window, None, None)
        slow = await _cpu_window(window, server, 30.0)
        fast = await _cpu_window(window, server, 1.0)
    base, per_ping = _model(slow, fast)
    per_hour_30 = base * 3600 + per_ping * 3600 / 30
    result.details["cpu"] = {
        "baseline_no_link": baseline,
        "heartbeat_30": slow,
        "heartbeat_1": fast,
        "base_cpu_s_per_s": base,
        "per_ping_cpu_s": per_ping,
    }
    log(f"cost: {attempts_text(size)}")
    memory = await _failed_attempts(size["warmup_attempts"], size["attempts"])
    result.details["memory"] = memory

    result.add("idle link, heartbeat 30 s: CPU", per_hour_30, "s/h", digits=3)
    result.add(
        "  measured over window (no ping in it)",
        slow["cpu_s"] / slow["window_s"] * 3600,
        "s/h",
        digits=3,
    )
    result.add(
        "idle link, heartbeat 1 s: CPU", fast["cpu_s"] / fast["window_s"] * 3600, "s/h", digits=3
    )
    result.add("CPU per ping (user + system)", per_ping * 1e6, "µs", digits=0)
    result.add(
        "process without link: CPU",
        baseline["cpu_s"] / baseline["window_s"] * 3600,
        "s/h",
        digits=3,
    )
    growth = memory["traced_growth_bytes"]
    result.add(
        f"memory growth after {memory['attempts']:,} failed attempts",
        growth / 1024,
        "KiB",
        target="< 1024 KiB",
        ok=growth < MEMORY_TARGET,
        digits=1,
    )
    result.add(
        "error history kept",
        f"{memory['errors_kept']} of max {memory['error_history_size']}",
        target="bounded",
        ok=memory["errors_kept"] <= memory["error_history_size"],
    )
    result.add(
        "failed attempts per second (instant sleep)",
        memory["attempts"] / memory["seconds"],
        "/s",
        digits=0,
    )
    return result


def attempts_text(size: dict[str, Any]) -> str:
    """Progress line for the memory run."""
    return (
        f"{size['attempts']:,} failed attempts after {size['warmup_attempts']} warm-up ones, traced"
    )
