"""entity_writes: state writes per counter entity while events flow at 1,000/s.

The integration is set up in a test Home Assistant (every entity enabled) and linked to the server
process, which streams `state_changed` events paced at 1,000/s for 10 s (quick: 3 s). Every write
of one of the entry's entities is counted from the local bus (`state_changed`, and
`state_reported` for writes that change nothing), in 1 s buckets from the first event. The counter
entities (those the integration throttles because they move with every event) must be written at
most once per second.

Pending (prints "pending: needs coordinator") while custom_components/ha_ingestion/coordinator.py
does not exist.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
import itertools
import math
import time
from typing import Any

from .common import Result, ServerProcess, log, wait_for
from .hass_env import TestHass, integration_available

FULL = {"rate": 1000, "seconds": 10}
QUICK = {"rate": 1000, "seconds": 3}
TARGET = 1
STREAM_DELAY = 1.5  # s after the subscription: setup's own writes are over before events flow


def _counter_keys() -> list[str]:
    """The sensors the integration throttles: the ones that move with every event."""
    from custom_components.ha_ingestion.sensor import SENSORS

    return [d.key for d in SENSORS if getattr(d, "throttled", False)]


async def run(quick: bool) -> Result:
    """Stream at `rate` for `seconds`, count writes per entity per second."""
    size = QUICK if quick else FULL
    result = Result("entity_writes", quick, params=dict(size))
    if not integration_available():
        print("pending: needs coordinator", flush=True)
        result.add("state writes per counter entity", "pending: needs coordinator")
        return result

    from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
    from homeassistant.core import callback
    from homeassistant.helpers import entity_registry as er

    from custom_components.ha_ingestion.const import EVENT_INGESTED

    rate, seconds = size["rate"], size["seconds"]
    n = rate * seconds
    writes: list[tuple[float, str]] = []
    arrivals: list[float] = []

    @callback
    def on_write(event: Any) -> None:
        writes.append((time.monotonic(), event.data["entity_id"]))

    @callback
    def any_entity(_data: Any) -> bool:
        return True

    @callback
    def on_event(_event: Any) -> None:
        arrivals.append(time.monotonic())

    log(f"entity_writes: {n:,} events at {rate:,}/s")
    async with ServerProcess(events=n, rate=rate, delay=STREAM_DELAY) as server, TestHass() as env:
        hass = env.hass
        unsubs = [
            hass.bus.async_listen(EVENT_STATE_CHANGED, on_write),
            hass.bus.async_listen(EVENT_STATE_REPORTED, on_write, event_filter=any_entity),
            hass.bus.async_listen(EVENT_INGESTED, on_event),
        ]
        entry = await env.add_entry(server.url, all_entities=True)
        try:
            done = await wait_for(lambda: len(arrivals) >= n, seconds + STREAM_DELAY + 60, 0.05)
            await asyncio.sleep(1.5)  # writes deferred past the last event
            registry = er.async_get(hass)
            entities = {
                e.entity_id: e.unique_id.removeprefix(f"{entry.unique_id}_")
                for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            }
        finally:
            for unsub in unsubs:
                unsub()
            await env.remove_entry(entry)
    if not done:
        raise RuntimeError(f"only {len(arrivals)} of {n} events arrived")

    t0 = arrivals[0]
    achieved = (len(arrivals) - 1) / (arrivals[-1] - t0)
    buckets: dict[str, list[int]] = defaultdict(lambda: [0] * math.ceil(seconds))
    times: dict[str, list[float]] = defaultdict(list)
    for stamp, entity_id in writes:
        key = entities.get(entity_id)
        if key is None or not t0 <= stamp < t0 + seconds:
            continue
        buckets[key][math.floor(stamp - t0)] += 1
        times[key].append(stamp)
    per_entity = {
        key: {
            "writes": sum(buckets[key]),
            "writes_per_s": sum(buckets[key]) / seconds,
            "max_in_1s_bucket": max(buckets[key]),
            "min_spacing_s": min((b - a for a, b in itertools.pairwise(ts)), default=None),
            "buckets": buckets[key],
        }
        for key, ts in sorted(times.items())
    }
    result.details["entities"] = per_entity
    result.details["events"] = len(arrivals)
    counters = _counter_keys()
    result.details["counter_entities"] = counters
    result.add("event rate achieved", achieved, "ev/s", digits=0)
    for key in counters:
        stats = per_entity.get(key)
        if stats is None:
            result.add(f"{key}: writes in busiest second", "no writes")
            continue
        result.add(
            f"{key}: writes in busiest second (mean {stats['writes_per_s']:.2f}/s)",
            stats["max_in_1s_bucket"],
            target=f"<= {TARGET}",
            ok=stats["max_in_1s_bucket"] <= TARGET,
            digits=0,
        )
    total = sum(v["writes"] for v in per_entity.values()) / seconds
    result.add(f"all {len(per_entity)} entities together", total, "writes/s", digits=1)
    others = {k: v for k, v in per_entity.items() if k not in counters}
    if others:
        busiest = max(others, key=lambda k: others[k]["max_in_1s_bucket"])
        result.add(
            f"other entities: busiest second ({busiest})",
            others[busiest]["max_in_1s_bucket"],
            digits=0,
        )
    return result
