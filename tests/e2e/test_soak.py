"""20 SIGKILL/restart cycles in a row: every one recovered, nothing left behind, memory flat."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc

import aiohttp
import psutil
import pytest

from custom_components.ha_ingestion.client import LinkEngine, LinkState
from tests.harness import RemoteHass

from .helpers import PING_EVENT, LinkWatch, link_config, record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

CYCLES = 20
WARMUP = 3
# Python heap growth allowed between the warm-up and the last cycle (bounded error history,
# bounded logs: a leak of one session or task per cycle would exceed it quickly).
MAX_TRACED_GROWTH = 1_000_000
MAX_RSS_GROWTH = 40_000_000


def _measure() -> tuple[int, int, tracemalloc.Snapshot]:
    gc.collect()
    return (
        tracemalloc.get_traced_memory()[0],
        psutil.Process().memory_info().rss,
        tracemalloc.take_snapshot(),
    )


def _top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> list[str]:
    """Where the heap grew most, for the record (and the failure message)."""
    ignore = (tracemalloc.Filter(False, tracemalloc.__file__),)
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    return [str(stat) for stat in stats[:5] if stat.size_diff > 0]


async def test_twenty_kill_restart_cycles(remote: RemoteHass, http: aiohttp.ClientSession) -> None:
    tasks_before = asyncio.all_tasks()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    sup = LinkEngine(http, link_config(remote.ws_url, remote.token or ""))
    watch = LinkWatch(sup, keep_types=frozenset({PING_EVENT}))
    detections: list[float] = []
    recoveries: list[float] = []
    starts: list[float] = []
    baseline: tuple[int, int, tracemalloc.Snapshot] | None = None
    try:
        await sup.start()
        await watch.wait_state(LinkState.CONNECTED, 30)
        for cycle in range(1, CYCLES + 1):
            killed = time.monotonic()
            remote.kill()
            detections.append(await watch.wait_left_connected(10))
            starts.append(await remote.start())
            await watch.wait_state(LinkState.CONNECTED, 30)
            connected = watch.first_after(killed, lambda s: s is LinkState.CONNECTED)
            assert connected is not None, f"cycle {cycle}: no CONNECTED transition"
            recoveries.append(connected - killed)
            await remote.fire_event(PING_EVENT, {"n": cycle})
            await watch.wait_event(
                PING_EVENT, 5, lambda e, c=cycle: e.get("data", {}).get("n") == c
            )
            watch.events.clear()
            if cycle == WARMUP:
                baseline = _measure()
        final = _measure()
        snap = sup.snapshot()
    finally:
        await sup.close()
        if not tracing:
            tracemalloc.stop()

    lingering = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert not lingering, f"lingering tasks after close: {lingering}"
    assert snap.reconnect_count == CYCLES
    assert baseline is not None
    traced_growth = final[0] - baseline[0]
    rss_growth = final[1] - baseline[1]
    top_growth = _top_growth(baseline[2], final[2])
    record(
        "5_twenty_kill_restart_cycles",
        cycles=CYCLES,
        recovered=len(recoveries),
        reconnect_count=snap.reconnect_count,
        attempts_total=snap.attempts_total,
        detection_s_max=max(detections),
        detection_s_median=statistics.median(detections),
        recovery_after_kill_s_min=min(recoveries),
        recovery_after_kill_s_median=statistics.median(recoveries),
        recovery_after_kill_s_max=max(recoveries),
        remote_start_s_median=statistics.median(starts),
        average_reconnect_time_s=snap.average_reconnect_time,
        lingering_tasks=len(lingering),
        traced_heap_growth_bytes=traced_growth,
        rss_growth_bytes=rss_growth,
        traced_heap_after_warmup_bytes=baseline[0],
        errors_kept=len(snap.errors),
        top_heap_growth=top_growth,
    )
    assert traced_growth < MAX_TRACED_GROWTH, f"heap grew by {traced_growth} bytes: {top_growth}"
    assert rss_growth < MAX_RSS_GROWTH, f"RSS grew by {rss_growth} bytes"
