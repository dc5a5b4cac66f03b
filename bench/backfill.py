"""backfill: one long outage of a big real remote, recovered by the integration.

A real `hass` (`tests.harness.remote.RemoteHass`, Home Assistant's default recorder settings) gets
N entities (`sensor.bf_<n>`, made through its REST API while linked, so each is seen live here).
The integration runs in a test HA (`bench/hass_env.py`, default options) linked to it through a
`FaultProxy` (`tests/harness/proxy.py`) running in a process of its own, so the proxy's copying
counts neither against this process's memory nor its event loop. The proxy refuses and resets
connections (the outage); M changes are made on the remote (round robin over the entities,
`POST /api/states` from a separate sender process, as fast as the remote takes them); the proxy
listens again the moment the last change is answered, and the integration recovers the gap.

Measured here, in the benchmark's process (the local side):
- lost / duplicated: every change is identified by (entity, value); each must arrive once;
- time to recover: link back (CONNECTED again) -> the last change fired locally, and -> the gap
  closed (the second read after the remote's commit);
- changes/s: fired changes per second from the link back to the last one fired;
- RSS peak above baseline: /proc/self/statm sampled every 20 ms from the restore until the gap
  closed, above the RSS just before the restore (target < 64 MB);
- longest event-loop block: a task sleeping 5 ms and recording its overshoot, from the restore
  until the gap closed (target < 50 ms);
- requests and bytes asked of the remote: the capture's command count, and the bytes the proxy
  carried from the remote to us, from the restore until the gap closed.

The local side has Home Assistant's recorder with its defaults (SQLite, commit every 5 s), as a
user's instance has, so the recovered changes of mirrored entities are written as the mirrors'
past states (`mirror/past_states.py`), the others fired as `ha_ingestion_event`s. A change counts
as recovered once: fired (counted on the bus), or a row of its mirror in the local `states`
table at a time before the restore (read from the database once committed; the mirror's live
row at the relink, written after it, is counted apart). Also measured with the history:
- link back -> history written: every past-state and mend task done on the recorder's thread,
  and -> committed (the rows readable in the database, polled every 0.5 s: the recorder commits
  every 5 s);
- CPU of this process (every thread) and of the recorder's thread, from the restore until the
  recorder has done everything queued (history written and committed, events recorded); the
  samplers run until the history is written;
- `unavailable` rows of the mirrors left inside the outage (the mend removes them).
`--no-recorder` runs the local side without a recorder (every recovered change fired).

`python -m bench.backfill --send` and `--proxy` are the two helper processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
from pathlib import Path
import sqlite3
import statistics
import sys
import threading
import time
from typing import Any, Self
from unittest.mock import patch

import aiohttp

from .common import ROOT, Result, log, reap, wait_for
from .local_cost import db_bytes, thread_cpu

FULL = {"entities": 20_000, "changes": 200_000}
QUICK = {"entities": 2_000, "changes": 20_000}
PREFIX = "sensor.bf_"
SEND_CONCURRENCY = 48
LAG_STEP = 0.005  # s: the loop-lag sampler's sleep
RSS_STEP = 0.02  # s
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE


# ---------------------------------------------------------------------- helper processes


async def _send(url: str, token: str, entities: int, first: int, last: int) -> dict[str, Any]:
    """Set every entity to `first`, then every entity to first + 1, ... up to `last`."""
    headers = {"Authorization": f"Bearer {token}"}
    todo = ((n, value) for value in range(first, last + 1) for n in range(entities))
    sent = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal sent
        for n, value in todo:
            body = {
                "state": str(value),
                "attributes": {"unit_of_measurement": "W", "friendly_name": f"Bench {n}"},
            }
            async with http.post(f"{url}/api/states/{PREFIX}{n}", json=body, headers=headers) as r:
                if r.status not in (200, 201):
                    raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
            sent += 1

    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=SEND_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(SEND_CONCURRENCY)))
    return {"sent": sent, "seconds": round(time.monotonic() - began, 3)}


async def _proxy(target_port: int) -> None:
    """A FaultProxy driven by lines on stdin: refuse, restore, stats; one JSON line per answer."""
    from dataclasses import asdict

    from tests.harness.proxy import FaultProxy

    loop = asyncio.get_running_loop()
    async with FaultProxy(target_port, max_connections=256) as proxy:
        print(json.dumps({"port": proxy.port}), flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = line.strip()
            if command == "refuse":
                await proxy.refuse()
                proxy.reset_connections()
            elif command == "restore":
                await proxy.refuse(False)
            print(json.dumps(asdict(proxy.stats)), flush=True)


class ProxyProcess:
    """`python -m bench.backfill --proxy PORT` and its stdin/stdout protocol."""

    def __init__(self, target_port: int) -> None:
        """Nothing runs until `async with`."""
        self.target_port = target_port
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        """Start it and read its port."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.backfill",
            "--proxy",
            str(self.target_port),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.port = int((await self._line())["port"])
        return self

    async def _line(self) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async with asyncio.timeout(60):
            line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError("bench proxy ended")
        result: dict[str, Any] = json.loads(line)
        return result

    async def do(self, command: str) -> dict[str, Any]:
        """refuse | restore | stats; returns the proxy's counters after it."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{command}\n".encode())
        await self._proc.stdin.drain()
        return await self._line()

    async def __aexit__(self, *exc: object) -> None:
        """Close its stdin (it ends) and reap it."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        await reap(proc)


async def send_changes(
    url: str, token: str, entities: int, first: int, last: int, within: float
) -> dict[str, Any]:
    """Run the sender process (its CPU and memory are not this process's)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.backfill",
        "--send",
        url,
        str(entities),
        str(first),
        str(last),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "BENCH_TOKEN": token},
    )
    async with asyncio.timeout(within):
        out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"sender failed with exit status {proc.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


# ---------------------------------------------------------------------- samplers


class Samplers:
    """The loop-lag sampler and the RSS sampler, as two tasks."""

    def __init__(self) -> None:
        """Start with `start()`; stop with `stop()`."""
        self.lags: list[float] = []
        # (perf_counter at the end, seconds, CPU seconds of this thread meanwhile), over 20 ms:
        # a block with little CPU is this process waiting for a core (a busy machine).
        self.blocks: list[tuple[float, float, float]] = []
        self.gc_pauses: list[tuple[int, float, float]] = []  # (generation, end, seconds)
        # The same, of the collections run on the loop's thread (a collection runs on the thread
        # that allocated: the recorder's own ones cost the loop no CPU, only the GIL).
        self.loop_gc_pauses: list[tuple[float, float]] = []  # (end, seconds)
        self._loop_thread = threading.get_ident()
        self.rss_peak = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._gc_began = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_began = now
        else:
            self.gc_pauses.append((int(info["generation"]), now, now - self._gc_began))
            if threading.get_ident() == self._loop_thread:
                self.loop_gc_pauses.append((now, now - self._gc_began))

    def start(self) -> None:
        """Begin sampling."""
        gc.callbacks.append(self._on_gc)
        self._tasks = [
            asyncio.create_task(self._lag(), name="bench loop lag"),
            asyncio.create_task(self._rss(), name="bench rss"),
        ]

    async def _lag(self) -> None:
        while True:
            began = time.perf_counter()
            cpu = time.thread_time()
            await asyncio.sleep(LAG_STEP)
            now = time.perf_counter()
            lag = now - began - LAG_STEP
            self.lags.append(lag)
            if lag > 0.02:
                self.blocks.append((now, lag, time.thread_time() - cpu))

    async def _rss(self) -> None:
        while True:
            self.rss_peak = max(self.rss_peak, rss_bytes())
            await asyncio.sleep(RSS_STEP)

    async def stop(self) -> None:
        """End sampling (one last RSS reading)."""
        self.rss_peak = max(self.rss_peak, rss_bytes())
        gc.callbacks.remove(self._on_gc)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class StackSampler(threading.Thread):
    """`--profile`: the event loop's thread's stack every 2 ms, to name what a block ran.

    Sampling needs the GIL: inside one long C call (a collection) no sample is taken.
    """

    def __init__(self) -> None:
        """Samples the calling thread (the loop's) once started."""
        super().__init__(name="bench stack sampler", daemon=True)
        self._target_id = threading.get_ident()
        self._stop_flag = threading.Event()
        self.samples: list[tuple[float, tuple[str, ...]]] = []

    def run(self) -> None:
        """Until `stop()`."""
        while not self._stop_flag.wait(0.002):
            frame = sys._current_frames().get(self._target_id)
            stack = []
            while frame is not None and len(stack) < 40:
                code = frame.f_code
                stack.append(
                    f"{code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {code.co_name}"
                )
                frame = frame.f_back
            self.samples.append((time.perf_counter(), tuple(stack)))

    def stop(self) -> None:
        """End sampling."""
        self._stop_flag.set()
        self.join()

    def blocks(self, blocks: list[tuple[float, float, float]], over: float) -> list[dict[str, Any]]:
        """For each block longer than `over` s: its samples' most common stacks."""
        named = []
        for at, lag, _ in blocks:
            if lag < over:
                continue
            inside = [stack for t, stack in self.samples if at - lag - LAG_STEP <= t <= at]
            counts: dict[tuple[str, ...], int] = {}
            for stack in inside:
                counts[stack] = counts.get(stack, 0) + 1
            top = sorted(counts.items(), key=lambda item: -item[1])[:3]
            named.append(
                {
                    "ms": round(lag * 1000, 1),
                    "samples": len(inside),
                    "top": [{"n": n, "stack": list(stack[:25])} for stack, n in top],
                }
            )
        return named


# ---------------------------------------------------------------------- the benchmark


def _paused_within(at: float, lag: float, pauses: list[tuple[float, float]]) -> float:
    """Seconds of the collections `pauses` ((end, seconds) each) within the block that ended at
    `at` after `lag` (its sampler's sleep before it)."""
    return sum(
        max(0.0, min(end, at) - max(end - pause, at - lag - LAG_STEP)) for end, pause in pauses
    )


def _mirror_metadata(db: sqlite3.Connection, local_ids: dict[str, int]) -> dict[int, int]:
    """The mirrors' `metadata_id`s -> the remote entity's number."""
    return {
        metadata_id: local_ids[entity_id]
        for metadata_id, entity_id in db.execute("SELECT metadata_id, entity_id FROM states_meta")
        if entity_id in local_ids
    }


def read_history(
    path: Path, local_ids: dict[str, int], restored_wall: float, down_wall: float
) -> dict[str, Any]:
    """The mirrors' committed rows: values before the restore, rows after it, `unavailable` left.

    `local_ids`: mirror entity id -> the remote entity's number.
    """
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        meta = _mirror_metadata(db, local_ids)
        rows = db.execute(
            "SELECT metadata_id, state, last_updated_ts FROM states "
            "ORDER BY metadata_id, last_updated_ts, state_id"
        ).fetchall()
    past: list[tuple[int, int]] = []  # (entity number, value) of the rows before the restore
    after = unavailable_left = out_of_order = 0
    previous: tuple[int, int] | None = None
    for metadata_id, state, updated in rows:
        number = meta.get(metadata_id)
        if number is None:
            continue
        if updated >= restored_wall:
            after += 1
        elif state == "unavailable":
            unavailable_left += updated >= down_wall
        elif state is not None and state.isdigit():
            value = int(state)
            if previous is not None and previous[0] == number and value < previous[1]:
                out_of_order += 1
            previous = (number, value)
            past.append(previous)
    return {
        "past": past,
        "rows_after_restore": after,
        "unavailable_left": unavailable_left,
        "out_of_order": out_of_order,
    }


def _past_rows_committed(
    path: Path, local_ids: dict[str, int], down_wall: float, restored_wall: float
) -> int:
    """Committed rows of the mirrors within the outage, `unavailable` ones aside."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        meta = _mirror_metadata(db, local_ids)
        rows = db.execute(
            "SELECT metadata_id FROM states WHERE last_updated_ts > ? AND last_updated_ts < ? "
            "AND state != 'unavailable'",
            (down_wall, restored_wall),
        )
        return sum(1 for (metadata_id,) in rows if metadata_id in meta)


async def wait_committed(
    path: Path, local_ids: dict[str, int], span: tuple[float, float], written: int
) -> float | None:
    """perf_counter when `written` past states are readable in the database (None: not in 60 s)."""
    for _ in range(120):
        if await asyncio.to_thread(_past_rows_committed, path, local_ids, *span) >= written:
            return time.perf_counter()
        await asyncio.sleep(0.5)
    return None


def process_cpu() -> tuple[float, float]:
    """(CPU seconds of this process, of its recorder's thread)."""
    threads = thread_cpu(os.getpid())
    return sum(threads.values()), threads.get("Recorder", 0.0)


async def run(quick: bool, profile: bool = False, with_recorder: bool = True) -> Result:
    """Remote with N entities, one outage with M changes, the integration recovers it."""
    from homeassistant.core import callback

    from custom_components.ha_ingestion.client import LinkState
    from custom_components.ha_ingestion.const import EVENT_INGESTED
    from tests.harness.remote import RemoteHass

    from . import hass_env
    from .hass_env import TestHass

    sizes = QUICK if quick else FULL
    entities, changes = sizes["entities"], sizes["changes"]
    rounds = changes // entities
    result = Result("backfill", quick, params={"entities": entities, "changes": rounds * entities})
    result.params["recorder"] = "Home Assistant defaults (commit_interval 5 s)"
    result.params["integration_options"] = "defaults"
    result.params["local_recorder"] = (
        "Home Assistant defaults (SQLite, commit_interval 5 s)" if with_recorder else "none"
    )
    width = rounds + 1  # values 0 (created) .. rounds
    live = bytearray(entities * width)
    back = bytearray(entities * width)
    fired = {"count": 0, "first": 0.0, "last": 0.0, "bad": 0}

    @callback
    def on_bus(event: Any) -> None:
        data = event.data.get("data") or {}
        entity_id = data.get("entity_id")
        if type(entity_id) is not str or not entity_id.startswith(PREFIX):
            return
        try:
            index = int(entity_id[len(PREFIX) :]) * width + int(data["new_state"]["state"])
        except KeyError, TypeError, ValueError:
            fired["bad"] += 1
            return
        if event.data.get("backfilled"):
            back[index] = min(255, back[index] + 1)
            fired["count"] += 1
            fired["last"] = time.perf_counter()
            if fired["count"] == 1:
                fired["first"] = fired["last"]
        else:
            live[index] = min(255, live[index] + 1)

    log("backfill: setting up a real hass (onboarding, tokens, one restart)")
    async with (
        RemoteHass(name="Bench Backfill Remote") as remote,
        ProxyProcess(remote.port) as proxy,
        TestHass(recorder=with_recorder) as env,
    ):
        token = remote.admin_token or ""
        unsubscribe = env.hass.bus.async_listen(EVENT_INGESTED, on_bus)
        try:
            with patch.object(hass_env, "TOKEN", remote.token):
                entry = await env.add_entry(
                    f"ws://127.0.0.1:{proxy.port}/api/websocket", unique_id="bench-backfill"
                )
            capture = entry.runtime_data.capture
            engine = entry.runtime_data.coordinator.engine
            await wait_for(lambda: not capture.recovering, 60)
            log(f"backfill: creating {entities:,} entities on the remote (seen live here)")
            created = await send_changes(remote.url, token, entities, 0, 0, 600)
            if not await wait_for(lambda: sum(live[::width]) >= entities, 120):
                raise RuntimeError(f"only {sum(live[::width])} creations arrived live")
            await wait_for(lambda: False, 2.0)
            mirror = entry.runtime_data.mirror
            local_ids = {
                local_id: n
                for n in range(entities)
                if (local_id := mirror.local_entity_id(f"{PREFIX}{n}")) is not None
            }
            down_wall = time.time()
            await proxy.do("refuse")
            if not await wait_for(lambda: engine.state is not LinkState.CONNECTED, 30):
                raise RuntimeError("the link did not go down")
            log(f"backfill: outage; making {rounds * entities:,} changes on the remote")
            sent = await send_changes(remote.url, token, entities, 1, rounds, 3600)
            log(f"backfill: {sent['sent']:,} changes in {sent['seconds']:.1f} s; restoring")
            requests_before = capture.recovery.requests
            sessions_before = capture.recovery.session.sessions_opened
            gc.collect()
            # What a full collection walks: every object the process keeps (after a full one).
            long_lived = len(gc.get_objects(2))
            baseline = rss_bytes()
            samplers = Samplers()
            samplers.start()
            stacks = StackSampler() if profile else None
            if stacks is not None:
                stacks.start()
            cpu_before = process_cpu()
            db_before = db_bytes(env.db_path) if with_recorder else 0
            stats_before = await proxy.do("restore")
            restored = time.perf_counter()
            restored_wall = time.time()
            await wait_for(lambda: engine.state is LinkState.CONNECTED, 120)
            linked = time.perf_counter()
            closed_in_time = await wait_for(
                lambda: not capture.recovering, 300 if quick else 1800, 0.05
            )
            closed = time.perf_counter()
            # The code before the recovered history (issue 25) has no `history`: `--before`.
            sink = getattr(mirror, "history", None)
            if sink is not None:
                await sink.async_drain()
            written = time.perf_counter()
            await samplers.stop()
            if stacks is not None:
                stacks.stop()
                result.details["blocks_over_50ms_stacks"] = stacks.blocks(samplers.blocks, 0.05)
            history = sink.as_dict() if sink is not None else {"taken": 0, "written": 0}
            committed = None
            if with_recorder and history["taken"]:
                # Every change of a mirrored bench entity (the remote's own entities aside).
                expected = rounds * len(local_ids)
                committed = await wait_committed(
                    env.db_path, local_ids, (down_wall, restored_wall), expected
                )
            if with_recorder:
                await env.recorder_idle()  # what is queued there is part of the recovery's cost
            cpu_after = process_cpu()
            db_after = db_bytes(env.db_path) if with_recorder else 0
            mirrored_rows: dict[str, Any] = {"past": [], "rows_after_restore": 0}
            mirrored_rows.update(unavailable_left=0, out_of_order=0)
            if with_recorder:
                mirrored_rows = await asyncio.to_thread(
                    read_history, env.db_path, local_ids, restored_wall, down_wall
                )
            stats_after = await proxy.do("stats")
            requests = capture.recovery.requests - requests_before
            sessions = capture.recovery.session.sessions_opened - sessions_before
            gap = capture.state.gaps[-1] if capture.state.gaps else None
            backlog_max = capture.recovery.recorder_backlog_max
        finally:
            unsubscribe()

    for number, value in mirrored_rows["past"]:
        if value >= 1:  # 0: the live row of the entity's creation
            back[number * width + value] = min(255, back[number * width + value] + 1)
    wanted = [n * width + v for n in range(entities) for v in range(1, width)]
    lost = sum(1 for i in wanted if not back[i] and not live[i])
    duplicated = sum(max(0, live[i] + back[i] - 1) for i in range(len(live)))
    recovered = sum(1 for i in wanted if back[i] or live[i])
    recover_s = fired["last"] - linked if fired["count"] else None
    rate = fired["count"] / recover_s if recover_s else None
    lags = sorted(samplers.lags)
    lag_max = lags[-1] * 1000 if lags else None
    full_gcs = [(at - pause, at) for gen, at, pause in samplers.gc_pauses if gen == 2]
    outside_gc = [
        (lag, cpu)
        for at, lag, cpu in samplers.blocks
        if not any(begin < at and end > at - lag - LAG_STEP for begin, end in full_gcs)
    ]
    lag_outside_gc = max((lag for lag, _ in outside_gc), default=0.02)
    # The same blocks counted in CPU time of the loop's thread (not waiting for a core).
    cpu_outside_gc = max((cpu for _, cpu in outside_gc), default=0.02)
    # Each block less the collector's pauses within it: the longest stretch of code (ours and
    # Home Assistant's) that did not yield; the collector's own pauses are the interpreter's.
    all_pauses = [(end, pause) for _, end, pause in samplers.gc_pauses]
    code_only = [lag - _paused_within(at, lag, all_pauses) for at, lag, _ in samplers.blocks]
    lag_code_only = max(code_only, default=0.02)
    # In CPU time of the loop's thread, less the collections run on it: code (ours and Home
    # Assistant's) that ran without a yield, whatever the machine's load or the GIL's holder.
    cpu_code_only = max(
        (
            cpu - _paused_within(at, lag, samplers.loop_gc_pauses)
            for at, lag, cpu in samplers.blocks
        ),
        default=0.02,
    )
    rss_mb = (samplers.rss_peak - baseline) / 1024 / 1024
    down = stats_after["bytes_down"] - stats_before["bytes_down"]
    up = stats_after["bytes_up"] - stats_before["bytes_up"]
    result.details.update(
        {
            "create": created,
            "outage_changes": sent,
            "remote_change_rate_per_s": round(sent["sent"] / sent["seconds"], 1),
            "recovered": recovered,
            "backfilled_fired": fired["count"],
            "unparsable_events": fired["bad"],
            "link_back_after_restore_s": round(linked - restored, 3),
            "gap_closed_after_link_back_s": round(closed - linked, 3),
            "gap_closed_in_time": closed_in_time,
            "first_fired_after_link_back_s": (
                round(fired["first"] - linked, 3) if fired["count"] else None
            ),
            "rss_baseline_mb": round(baseline / 1024 / 1024, 1),
            "rss_peak_mb": round(samplers.rss_peak / 1024 / 1024, 1),
            "loop_lag_ms": {
                "samples": len(lags),
                "median": round(statistics.median(lags) * 1000, 2) if lags else None,
                "p99": round(lags[int(len(lags) * 0.99)] * 1000, 2) if lags else None,
                "max": round(lag_max, 2) if lag_max is not None else None,
                "over_50ms": sum(1 for lag in lags if lag > 0.05),
                "top10": [round(lag * 1000, 1) for lag in lags[-10:]],
            },
            "longest_block_without_collections_ms": round(lag_code_only * 1000, 1),
            "longest_block_loop_cpu_without_its_collections_ms": round(cpu_code_only * 1000, 1),
            # When (s after the link was back) the loop was blocked > 20 ms, and for how long.
            "blocks_over_20ms": [
                [round(at - linked, 3), round(lag * 1000, 1), round(cpu * 1000, 1)]
                for at, lag, cpu in samplers.blocks
            ],
            "gc_pauses_over_5ms": [
                [gen, round(at - linked, 3), round(pause * 1000, 1)]
                for gen, at, pause in samplers.gc_pauses
                if pause > 0.005
            ],
            "gc_collections": len(samplers.gc_pauses),
            "gc_collections_by_generation": [
                sum(1 for gen, _, _ in samplers.gc_pauses if gen == generation)
                for generation in range(3)
            ],
            "gc_tracked_objects_before": long_lived,
            "backfill_sessions": sessions,
            "bytes_from_remote": down,
            "bytes_to_remote": up,
            "remote_recorder_backlog_max": backlog_max,
            "gap": None if gap is None else gap.as_dict(),
            "history": history,
            "mirrored_entities": len(local_ids),
            "past_state_rows_read": len(mirrored_rows["past"]),
            "mirror_rows_after_restore": mirrored_rows["rows_after_restore"],
            "unavailable_rows_left_in_outage": mirrored_rows["unavailable_left"],
            "past_states_out_of_order": mirrored_rows["out_of_order"],
            "history_written_after_link_back_s": round(written - linked, 3),
            "history_committed_after_link_back_s": (
                None if committed is None else round(committed - linked, 3)
            ),
            "cpu_s_restore_to_recorder_idle": round(cpu_after[0] - cpu_before[0], 2),
            "recorder_cpu_s_restore_to_recorder_idle": round(cpu_after[1] - cpu_before[1], 2),
            "local_db_bytes_growth": db_after - db_before,
        }
    )
    total = rounds * entities
    result.add("changes recovered", f"{recovered:,} / {total:,}", target="all", ok=lost == 0)
    result.add("lost", lost, target="0", ok=lost == 0, digits=0)
    result.add("duplicated", duplicated, target="0", ok=duplicated == 0, digits=0)
    result.add("link back -> last change fired", recover_s, "s", digits=1)
    result.add("link back -> gap closed", closed - linked, "s", digits=1)
    if with_recorder:
        result.add("  as past states of mirrors (written)", history["written"], digits=0)
        result.add("  fired as events", fired["count"], digits=0)
        result.add("link back -> history written", written - linked, "s", digits=1)
        result.add(
            "link back -> history committed",
            None if committed is None else committed - linked,
            "s",
            digits=1,
        )
        left = mirrored_rows["unavailable_left"]
        result.add("unavailable rows left in the outage", left, target="0", ok=left == 0, digits=0)
        order = mirrored_rows["out_of_order"]
        result.add("past states out of order", order, target="0", ok=order == 0, digits=0)
        result.add("CPU, this process, restore -> recorder idle", cpu_after[0] - cpu_before[0], "s")
        result.add("  of it the recorder's thread", cpu_after[1] - cpu_before[1], "s")
        result.add("local database growth", (db_after - db_before) / 1024 / 1024, "MiB", digits=1)
    result.add("changes fired per second", rate, "/s", digits=0)
    result.add("RSS peak above baseline", rss_mb, "MB", target="< 64", ok=rss_mb < 64, digits=1)
    result.add(
        "longest event-loop block",
        lag_max,
        "ms",
        target="< 50",
        ok=lag_max is not None and lag_max < 50,
        digits=1,
    )
    result.add("longest block but full GCs", lag_outside_gc * 1000, "ms", target="< 50", digits=1)
    result.add("  the same in CPU time of the loop", cpu_outside_gc * 1000, "ms", digits=1)
    result.add(
        "longest block but any collection in it",
        lag_code_only * 1000,
        "ms",
        target="< 50",
        ok=lag_code_only < 0.05,
        digits=1,
    )
    result.add(
        "  in CPU time of the loop, its own collections out",
        cpu_code_only * 1000,
        "ms",
        target="< 50",
        ok=cpu_code_only < 0.05,
        digits=1,
    )
    result.add(
        "full GCs (pause max)",
        f"{len(full_gcs)} ({max((e - b for b, e in full_gcs), default=0) * 1000:.0f} ms)",
    )
    result.add("requests to the remote", requests, digits=0)
    result.add("bytes from the remote", down / 1024 / 1024, "MiB", digits=1)
    return result


def main() -> int:
    """The helper processes: `--send URL ENTITIES FIRST LAST` (token in BENCH_TOKEN), `--proxy`."""
    parser = argparse.ArgumentParser(prog="python -m bench.backfill")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--send", nargs=4, metavar=("URL", "ENTITIES", "FIRST", "LAST"))
    group.add_argument("--proxy", type=int, metavar="TARGET_PORT")
    args = parser.parse_args()
    if args.proxy:
        asyncio.run(_proxy(args.proxy))
        return 0
    url, entities, first, last = args.send
    token = os.environ["BENCH_TOKEN"]
    print(json.dumps(asyncio.run(_send(url, token, int(entities), int(first), int(last)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
