"""remote: the integration behind a real Home Assistant that fires events as fast as it can.

One real `hass` process (`tests.harness.remote.RemoteHass`, on 127.0.0.1) is set up; the
integration is set up in a test HA (`bench/hass_env.py`) and linked to it with the remote's
long-lived token, subscribed to `state_changed` and `BURST_EVENT`. The remote is then made to
fire N events of about 1 KB (the `data` of a realistic `state_changed` event from
`bench/frames.py`) with pipelined `fire_event` WebSocket commands. Measured: how many arrive
locally as `ha_ingestion_event`, the sustained rate at the integration (first to last), the
rate at which the remote accepted the commands, and whether the remote ever dropped us (its log
lines about a client that cannot keep up, and the engine's reconnect count).
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from unittest.mock import patch

import orjson

from tests.harness.remote import CANNOT_KEEP_UP_LOG, RemoteHass

from . import frames, hass_env
from .common import Result, log, wait_for
from .hass_env import TestHass

FULL = {"events": 20_000}
QUICK = {"events": 5_000}
# Excluded from the remote's recorder by the harness configuration: the remote's own database
# writes are not what is measured here.
BURST_EVENT = "e2e_burst"
WINDOW = 256  # unanswered fire_event commands at most
EXCEEDED_LOG = "Client exceeded max pending messages"
SETTLE = 5.0  # s to wait after the last arrival for late reconnects or log lines


async def run(quick: bool) -> Result:
    """Set up the remote and the integration, fire N events, count what arrives."""
    from homeassistant.core import callback

    from custom_components.ha_ingestion.const import CONF_EVENT_TYPES, EVENT_INGESTED

    n = (QUICK if quick else FULL)["events"]
    result = Result("remote", quick, params={"events": n, "event_type": BURST_EVENT})
    payloads = [event["data"] for event in frames.make_events(n, seed=7)]
    sizes = [len(orjson.dumps(p)) for p in payloads[:2_000]]
    result.params["mean_event_data_bytes"] = round(statistics.fmean(sizes))
    result.params["pipeline_window"] = WINDOW

    arrived = {"count": 0, "first": 0.0, "last": 0.0}

    @callback
    def on_bus(event: Any) -> None:
        if event.data.get("event_type") != BURST_EVENT:
            return
        arrived["count"] += 1
        arrived["last"] = time.perf_counter()
        if arrived["count"] == 1:
            arrived["first"] = arrived["last"]

    log("remote: setting up a real hass (onboarding, tokens, one restart)")
    async with RemoteHass(name="Bench Remote") as remote, TestHass() as env:
        result.details["remote_timings_s"] = dict(remote.timings)
        mark = remote.log_mark()
        unsubscribe = env.hass.bus.async_listen(EVENT_INGESTED, on_bus)
        try:
            with patch.object(hass_env, "TOKEN", remote.token):
                entry = await env.add_entry(
                    remote.ws_url,
                    {CONF_EVENT_TYPES: ["state_changed", BURST_EVENT]},
                    unique_id="bench-remote",
                )
            engine = entry.runtime_data.coordinator.engine
            capture = entry.runtime_data.capture
            # Let the link settle (subscriptions confirmed, backfill of the quiet remote done).
            await wait_for(lambda: False, 2.0)
            before = engine.snapshot()
            log(f"remote: firing {n} events of ~{result.params['mean_event_data_bytes']} B")
            async with remote.ws() as ws:
                started = time.perf_counter()
                accepted = await ws.pipeline(
                    (
                        {"type": "fire_event", "event_type": BURST_EVENT, "event_data": data}
                        for data in payloads
                    ),
                    window=WINDOW,
                    timeout=max(120.0, n / 50),
                )
                fired_s = time.perf_counter() - started
            log(f"remote: remote accepted {accepted} in {fired_s:.2f} s; waiting for arrivals")
            done = await wait_for(
                lambda: arrived["count"] + capture.state.overflow >= n, max(60.0, n / 200), 0.01
            )
            await wait_for(lambda: False, SETTLE)  # late drops/reconnects would show up here
            after = engine.snapshot()
            dropped = capture.state.overflow
        finally:
            unsubscribe()
        unable = remote.log_count(CANNOT_KEEP_UP_LOG, mark)
        exceeded = remote.log_count(EXCEEDED_LOG, mark)

    count = arrived["count"]
    span = arrived["last"] - arrived["first"]
    rate = (count - 1) / span if count > 1 and span > 0 else None
    fire_rate = accepted / fired_s
    reconnects = after.reconnect_count - before.reconnect_count
    result.details.update(
        {
            "received": count,
            "all_arrived_in_time": done,
            "integration_span_s": round(span, 3),
            "fire_s": round(fired_s, 3),
            "capture_dropped": dropped,
            "reconnects_total": after.reconnect_count,
            "events_received_by_engine": after.events_received - before.events_received,
            "remote_log_unable_to_keep_up": unable,
            "remote_log_exceeded_max_pending": exceeded,
        }
    )
    result.add("events received locally", f"{count:,} / {n:,}", target="all", ok=count == n)
    result.add("rate at the integration", rate, "ev/s", digits=0)
    result.add("remote firing rate (accepted)", fire_rate, "ev/s", digits=0)
    result.add(
        "events dropped (capture queue full)", dropped, target="0", ok=dropped == 0, digits=0
    )
    result.add(
        "remote dropped us (log lines)",
        unable + exceeded,
        target="0",
        ok=unable + exceeded == 0,
        digits=0,
    )
    result.add("engine reconnects", reconnects, target="0", ok=reconnects == 0, digits=0)
    return result
