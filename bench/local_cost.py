"""local_cost: what mirroring a remote's changes costs this instance, against the remote's own cost.

Two real `hass` processes on 127.0.0.1, both with Home Assistant's default recorder (SQLite,
commit every 5 s): the remote (`tests.harness.remote.RemoteHass`) and a local one running this
checkout's integration (`tests.e2e_ha.local_hass`: linked through the real config flow, default
options), the link going through a byte-counting proxy in a process of its own
(`bench.backfill.ProxyProcess`).

The remote makes the changes itself: `bench/lc_changes` (a small custom component loaded by the
remote) sets N states of sensors with about 1 KB of attributes (a new state and one small
attribute per change) with `hass.states.async_set`, paced at each rate or as fast as its event
loop goes, on one `call_service` command. So the remote's CPU over a run is its own cost of the
changes (state machine, recorder), with no request parsed per change.

Phases, each change counted in both databases before a phase ends (that is the honest wait for
the commit: the rows are there):

1. remote alone (not linked yet): its own DB bytes and CPU per change, at each rate;
2. linked, default options (the mirror: `subscribe_entities` + deflate, no `ha_ingestion_event`
   for mirrored changes): local DB bytes and CPU per change, the remote's CPU with the link, and
   the bytes the link carried;
3. wire: standalone clients through their own proxies, each subscribed one way (`state_changed`
   uncompressed, with permessage-deflate, `subscribe_entities` with and without deflate), one run
   at 1,000/s: bytes from the remote per change;
4. before: the same entry with `forward_state_changes` on (every change also an
   `ha_ingestion_event`, the old default): local DB bytes and CPU per change;
5. mirror only: the same entry subscribed to no `state_changed` (event types: one nobody fires),
   so the link carries only the entity diffs: what the `state_changed` subscription of the
   default options costs on both sides. Last: adding `state_changed` back would make the capture
   recover every change of the span it was not subscribed for.

DB bytes: pages in use (`page_count - freelist_count`, read through a read-only connection, so
committed WAL frames count) after minus before. CPU: user + system time of each process (psutil)
over the phase. Both minus the idle growth of the same process over the same length of time
(measured once unlinked, once linked).

`python -m bench.local_cost --quick` runs it alone; `scripts/bench local_cost` as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
import sqlite3
import tempfile
import time
from typing import Any

import aiohttp

from .common import RESULTS, ROOT, Result, log, wait_for

FULL = {"changes": 3_000, "entities": 20, "idle_s": 20.0}
QUICK = {"changes": 200, "entities": 5, "idle_s": 3.0}
RATES: tuple[tuple[str, float], ...] = (("100/s", 100.0), ("1,000/s", 1000.0), ("max", 0.0))
WIRE_RATE = 1000.0
COMPONENT = ROOT / "bench" / "lc_changes"  # loaded by the remote
PROFILER = ROOT / "bench" / "lc_profile"  # loaded by the local
ENTITY_GLOB = "*lc_bench_*"  # remote sensor.lc_bench_<n>, local sensor.<prefix>_lc_bench_<n>
REMOTE_NAME = "Bench Remote"
# After linking or reloading, the capture first closes the (empty) gap of the reconnect (the
# remote's commit interval + 2 s); changes are made only after that.
SETTLE_S = 9.0
# An event type nobody fires: the entry subscribes to no state_changed (the options need one type).
NO_EVENTS = "lc_bench_none"
STORAGE_TARGET = 1.5
CPU_TARGET = 0.3
WIRE_TARGET = 0.1


# ---------------------------------------------------------------------- measuring one process


def db_bytes(path: Path) -> int:
    """Bytes of the pages in use in a SQLite database, committed WAL frames included."""
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def file_bytes(path: Path) -> int:
    """The database's files on disk (main + WAL); the WAL keeps its size after a checkpoint."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


ROW_COUNTS = {
    "states": (
        "SELECT COUNT(*) FROM states WHERE metadata_id IN "
        "(SELECT metadata_id FROM states_meta WHERE entity_id GLOB ?)",
        ENTITY_GLOB,
    ),
    "events": (
        "SELECT COUNT(*) FROM events WHERE event_type_id IN "
        "(SELECT event_type_id FROM event_types WHERE event_type = ?)",
        "ha_ingestion_event",
    ),
}


def row_counts(path: Path) -> dict[str, int]:
    """Committed rows: states of the bench's sensors, ha_ingestion_event events."""
    if not path.exists():
        return dict.fromkeys(ROW_COUNTS, 0)
    counts = {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        for name, (sql, arg) in ROW_COUNTS.items():
            try:
                counts[name] = int(db.execute(sql, (arg,)).fetchone()[0])
            except sqlite3.OperationalError:  # the recorder has not made its schema yet
                counts[name] = 0
    return counts


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (every thread: the recorder's too)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def thread_cpu(pid: int) -> dict[str, float]:
    """User + system CPU time per thread group (`Recorder`, `MainThread`, `SyncWorker`, ...)."""
    import psutil

    groups: dict[str, float] = {}
    for thread in psutil.Process(pid).threads():
        try:
            name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            name = "?"
        name = re.sub(r"[_-]?\d+$", "", name) or "?"
        groups[name] = groups.get(name, 0.0) + thread.user_time + thread.system_time
    return groups


@dataclass
class Side:
    """One `hass` process and its database."""

    name: str
    pid: int
    db: Path
    idle_cpu_per_s: float = 0.0
    idle_db_per_s: float = 0.0

    def sample(self) -> dict[str, Any]:
        """CPU, DB bytes, rows, now."""
        return {
            "t": time.perf_counter(),
            "cpu": cpu_seconds(self.pid),
            "db": db_bytes(self.db),
            "rows": row_counts(self.db),
            "threads": thread_cpu(self.pid),
        }


@dataclass
class Delta:
    """One side over one phase, idle growth subtracted."""

    seconds: float
    cpu_s: float
    db_bytes: int
    rows: dict[str, int]
    raw_cpu_s: float = 0.0
    raw_db_bytes: int = 0

    def per_change(self, changes: int) -> dict[str, float]:
        """CPU µs and DB bytes per change."""
        return {
            "cpu_us_per_change": self.cpu_s / changes * 1e6,
            "db_bytes_per_change": self.db_bytes / changes,
        }


def delta(side: Side, before: dict[str, Any], after: dict[str, Any]) -> Delta:
    """What `side` spent between two samples, minus its idle growth over the same time."""
    seconds = after["t"] - before["t"]
    raw_cpu = after["cpu"] - before["cpu"]
    raw_db = after["db"] - before["db"]
    return Delta(
        seconds=seconds,
        cpu_s=raw_cpu - side.idle_cpu_per_s * seconds,
        db_bytes=round(raw_db - side.idle_db_per_s * seconds),
        rows={k: after["rows"][k] - before["rows"][k] for k in after["rows"]},
        raw_cpu_s=raw_cpu,
        raw_db_bytes=raw_db,
    )


async def measure_idle(sides: list[Side], seconds: float) -> None:
    """Set each side's idle CPU and DB growth per second (nothing changes meanwhile)."""
    before = [s.sample() for s in sides]
    await asyncio.sleep(seconds)
    for side, first in zip(sides, before, strict=True):
        d = delta(Side(side.name, side.pid, side.db), first, side.sample())
        side.idle_cpu_per_s = d.raw_cpu_s / d.seconds
        side.idle_db_per_s = max(0.0, d.raw_db_bytes / d.seconds)


async def wait_rows(
    sides: list[Side], wanted: list[dict[str, int]], within: float
) -> tuple[bool, list[dict[str, Any]]]:
    """Until every side has committed at least `wanted` rows; the samples taken then, per side."""
    deadline = time.monotonic() + within
    done: list[dict[str, Any] | None] = [None] * len(sides)
    while True:
        for i, side in enumerate(sides):
            if done[i] is None:
                sample = side.sample()
                if all(sample["rows"][k] >= v for k, v in wanted[i].items()):
                    done[i] = sample
        if all(d is not None for d in done):
            return True, [d for d in done if d is not None]
        if time.monotonic() > deadline:
            return False, [
                d if d is not None else s.sample() for d, s in zip(done, sides, strict=True)
            ]
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------- standalone wire clients


@dataclass
class WireClient:
    """An authenticated WebSocket subscribed one way; counts the bench's changes it receives."""

    url: str
    token: str
    compress: int
    subscribe: dict[str, Any]
    changes: int = 0
    messages: int = 0
    negotiated: int = -1
    _task: asyncio.Task[None] | None = None
    _http: aiohttp.ClientSession | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kind(self) -> str:
        """`state_changed` or `subscribe_entities`."""
        return str(self.subscribe.get("event_type") or self.subscribe["type"])

    async def start(self) -> None:
        """Connect, authenticate, ask for coalesced messages (as the integration does), subscribe."""
        self._http = aiohttp.ClientSession()
        ws = await self._http.ws_connect(self.url, compress=self.compress, max_msg_size=0)
        self._ws = ws
        self.negotiated = int(ws.compress)
        if (await ws.receive_json()).get("type") != "auth_required":
            raise RuntimeError("not a Home Assistant WebSocket")
        await ws.send_json({"type": "auth", "access_token": self.token})
        if (answer := await ws.receive_json()).get("type") != "auth_ok":
            raise RuntimeError(f"authentication failed: {answer}")
        await ws.send_json(
            {"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}}
        )
        await ws.send_json({"id": 2, **self.subscribe})
        self._task = asyncio.create_task(self._read(ws), name="bench wire client")
        async with asyncio.timeout(30):
            await self._ready.wait()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            for item in data if isinstance(data, list) else [data]:
                self.messages += 1
                self.changes += count_changes(item)
                if item.get("id") == 2 and item.get("type") == "result":
                    self._ready.set()

    async def close(self) -> None:
        """Close the socket and the session."""
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._http is not None:
            await self._http.close()


def count_changes(item: dict[str, Any]) -> int:
    """Changes of the bench's sensors in one message (a `state_changed` event or an entities diff)."""
    if item.get("type") != "event":
        return 0
    event = item.get("event") or {}
    if "c" in event or "a" in event:  # subscribe_entities: the initial `a` holds no change
        return sum(1 for entity_id in event.get("c", {}) if "lc_bench_" in entity_id)
    data = event.get("data") or {}
    return int("lc_bench_" in str(data.get("entity_id", "")))


# ---------------------------------------------------------------------- the local entry's options


def _form_value(field: dict[str, Any], changes: dict[str, Any]) -> Any:
    """A field's value in the form as shown, or from `changes`; a section holds its fields."""
    if field.get("type") == "expandable":
        return {f["name"]: _form_value(f, changes) for f in field.get("schema", [])}
    if field["name"] in changes:
        return changes[field["name"]]
    if "default" in field:
        return field["default"]
    return (field.get("description") or {}).get("suggested_value")


async def set_options(local: Any, entry_id: str, changes: dict[str, Any]) -> None:
    """Save options through the options flow over REST (the form's values + `changes`)."""
    from tests.harness.develop import rest

    status, flow = await rest(
        local, "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
    )
    if status != 200 or flow.get("type") != "form":
        raise RuntimeError(f"options flow did not start: HTTP {status} {flow}")
    body = {f["name"]: _form_value(f, changes) for f in flow["data_schema"]}
    status, result = await rest(
        local, "POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", body
    )
    if status != 200 or result.get("type") != "create_entry":
        raise RuntimeError(f"options not saved: HTTP {status} {result}")


# ---------------------------------------------------------------------- the benchmark


@dataclass
class Bench:
    """The processes, the serial of the next change, and what was measured."""

    remote: Any
    local: Any
    entities: int
    serial: int = 0
    phases: list[dict[str, Any]] = field(default_factory=list)

    async def make_changes(self, count: int, rate: float) -> float:
        """The remote makes `count` changes itself; the seconds it took (its own clock)."""
        async with self.remote.ws() as ws:
            answer = await ws.command(
                {
                    "type": "call_service",
                    "domain": "lc_changes",
                    "service": "run",
                    "service_data": {
                        "count": count,
                        "rate": rate,
                        "entities": self.entities,
                        "first": self.serial,
                    },
                    "return_response": True,
                },
                timeout=max(120.0, count / 20),
            )
        self.serial += count
        return float(answer["response"]["seconds"])

    async def phase(
        self,
        name: str,
        sides: list[Side],
        count: int,
        rate: float,
        wanted: Callable[[Side, dict[str, int]], dict[str, int]],
        wire: Callable[[], Any] | None = None,
    ) -> dict[str, Any]:
        """One run of `count` changes at `rate`; every side's deltas once its rows are there."""
        before = [s.sample() for s in sides]
        wire_before = await wire() if wire else None
        made_s = await self.make_changes(count, rate)
        complete, after = await wait_rows(
            sides,
            [wanted(s, b["rows"]) for s, b in zip(sides, before, strict=True)],
            max(60.0, count / 50),
        )
        wire_after = await wire() if wire else None
        record: dict[str, Any] = {
            "phase": name,
            "changes": count,
            "rate": rate or "max",
            "made_in_s": round(made_s, 3),
            "made_per_s": round(count / made_s, 1) if made_s > 0 else None,
            "complete": complete,
            "load": _load(),
        }
        for side, b, a in zip(sides, before, after, strict=True):
            d = delta(side, b, a)
            expected = wanted(side, dict.fromkeys(d.rows, 0))
            if any(d.rows[k] != v for k, v in expected.items()):
                # More rows than changes: something else wrote them (e.g. a backfill).
                record.setdefault("unexpected_rows", {})[side.name] = d.rows
            record[side.name] = {
                **{k: round(v, 1) for k, v in d.per_change(count).items()},
                "seconds": round(d.seconds, 2),
                "cpu_s": round(d.cpu_s, 3),
                "raw_cpu_s": round(d.raw_cpu_s, 3),
                "db_bytes": d.db_bytes,
                "raw_db_bytes": d.raw_db_bytes,
                "rows": d.rows,
                "files_bytes": file_bytes(side.db),
                "threads_cpu_s": {
                    k: round(v - b["threads"].get(k, 0.0), 3)
                    for k, v in sorted(a["threads"].items())
                    if v - b["threads"].get(k, 0.0) > 0
                },
            }
        if wire_before is not None and wire_after is not None:
            record["link_bytes_down"] = wire_after["bytes_down"] - wire_before["bytes_down"]
            record["link_bytes_up"] = wire_after["bytes_up"] - wire_before["bytes_up"]
        self.phases.append(record)
        shown = ", ".join(
            f"{s.name} {record[s.name]['db_bytes'] / count:.0f} B {record[s.name]['cpu_us_per_change']:.0f} µs"
            for s in sides
        )
        log(f"local_cost: {name} {count} changes at {record['rate']}: {shown}")
        return record


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _states_plus(
    count: int, events: bool = False
) -> Callable[[Side, dict[str, int]], dict[str, int]]:
    def wanted(side: Side, rows: dict[str, int]) -> dict[str, int]:
        want = {"states": rows["states"] + count}
        if events and side.name == "local":
            want["events"] = rows["events"] + count
        return want

    return wanted


def _states_plus(
    count: int, events: bool = False
) -> Callable[[Side, dict[str, int]], dict[str, int]]:
    """The rows a phase of `count` changes must leave: a state per change on each side, and
    with forwarding an ha_ingestion_event per change locally."""

    def wanted(side: Side, rows: dict[str, int]) -> dict[str, int]:
        want = {"states": rows["states"] + count}
        if events and side.name == "local":
            want["events"] = rows["events"] + count
        return want

    return wanted


def attribute_bytes() -> int:
    """JSON size of one sensor's attributes as the remote sets them."""
    from .lc_changes import attributes

    return len(json.dumps(attributes(0, 0), separators=(",", ":")))


TRANSPORTS: tuple[tuple[str, int, bool], ...] = (
    # (name, permessage-deflate window bits (0: none), subscribe_entities?)
    ("state_changed", 0, False),
    ("state_changed + deflate", 15, False),
    ("subscribe_entities diff", 0, True),
    ("subscribe_entities diff + deflate", 15, True),
)


async def measure_wire(
    bench: Bench, stack: contextlib.AsyncExitStack, count: int, fields: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Bytes from the remote per change for each transport, standalone clients, one run."""
    from .backfill import ProxyProcess

    token = bench.remote.admin_token or ""
    clients: list[tuple[str, ProxyProcess, WireClient]] = []
    for name, compress, entities in TRANSPORTS:
        proxy = await stack.enter_async_context(ProxyProcess(bench.remote.port))
        subscribe = (
            {"type": "subscribe_entities", **fields}
            if entities
            else {"type": "subscribe_events", "event_type": "state_changed"}
        )
        client = WireClient(
            f"ws://127.0.0.1:{proxy.port}/api/websocket", token, compress, subscribe
        )
        await client.start()
        stack.push_async_callback(client.close)
        clients.append((name, proxy, client))
    await asyncio.sleep(1.0)  # the initial entities message is through
    before = [(await proxy.do("stats"), client.changes) for _, proxy, client in clients]
    await bench.make_changes(count, WIRE_RATE)
    await wait_for(
        lambda: all(
            c.changes - b[1] >= count for (_, _, c), b in zip(clients, before, strict=True)
        ),
        max(30.0, count / 100),
        0.1,
    )
    out: dict[str, dict[str, Any]] = {}
    for (name, proxy, client), (stats, seen) in zip(clients, before, strict=True):
        after = await proxy.do("stats")
        down = after["bytes_down"] - stats["bytes_down"]
        out[name] = {
            "bytes_per_change": down / count,
            "bytes_down": down,
            "changes_seen": client.changes - seen,
            "compress_negotiated": client.negotiated,
        }
        await client.close()
    log(
        "local_cost: wire "
        + ", ".join(f"{k} {v['bytes_per_change']:.0f} B" for k, v in out.items())
    )
    return out


async def run(quick: bool, profile: bool = False) -> Result:
    """Start both sides, measure every phase, make the table; `profile`: cProfile the local."""
    from custom_components.ha_ingestion.const import (
        CONF_EVENT_TYPES,
        CONF_FORWARD_STATE_CHANGES,
        DEFAULT_OPTIONS,
    )
    from custom_components.ha_ingestion.mirror import mirror_filter
    from tests.e2e_ha.local_hass import link_local, start_local, wait_until
    from tests.harness.remote import CANNOT_KEEP_UP_LOG, RemoteHass

    from .backfill import ProxyProcess

    sizes = QUICK if quick else FULL
    n, entities, idle_s = int(sizes["changes"]), int(sizes["entities"]), float(sizes["idle_s"])
    result = Result("local_cost", quick, params={"changes_per_run": n, "entities": entities})
    result.params["recorders"] = "both Home Assistant defaults (SQLite, commit_interval 5 s)"
    result.params["rates"] = [label for label, _ in RATES]
    result.params["wire_rate"] = WIRE_RATE
    result.params["attributes_bytes"] = attribute_bytes()
    warm = entities * 15  # every sensor, with each of its attribute sets

    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ha-local-cost-")))
        remote = RemoteHass(name=REMOTE_NAME, entities_yaml="", extra_yaml="lc_changes:\n")
        stack.callback(remote.cleanup)
        stack.push_async_callback(remote.close)
        components = remote.config_dir / "custom_components"
        components.mkdir(parents=True, exist_ok=True)
        (components / "lc_changes").symlink_to(COMPONENT, target_is_directory=True)
        (tmp / "local" / "custom_components").mkdir(parents=True)
        (tmp / "local" / "custom_components" / "lc_profile").symlink_to(PROFILER)
        log("local_cost: starting the remote and the local hass (onboarding, one restart each)")
        local_task = asyncio.ensure_future(
            start_local(
                tmp / "local", name="Bench Local", entities_yaml="", extra_yaml="lc_profile:\n"
            )
        )
        try:
            await remote.setup()
        finally:
            local = await local_task
            stack.push_async_callback(local.close)
        bench = Bench(remote, local, entities)
        rside = Side("remote", remote.pid or 0, remote.config_dir / "home-assistant_v2.db")
        lside = Side("local", local.pid or 0, local.config_dir / "home-assistant_v2.db")

        await bench.make_changes(warm, 0)
        await wait_rows([rside], [{"states": warm}], 60)
        log(f"local_cost: idle for {idle_s:g} s (not linked)")
        await measure_idle([rside, lside], idle_s)
        result.details["idle_unlinked"] = _idle([rside, lside])
        alone = {
            label: await bench.phase(f"remote alone {label}", [rside], n, rate, _states_plus(n))
            for label, rate in RATES
        }

        proxy = await stack.enter_async_context(ProxyProcess(remote.port))
        link = await link_local(local, f"http://127.0.0.1:{proxy.port}", remote.token or "")
        await asyncio.sleep(SETTLE_S)
        rows = [row_counts(side.db)["states"] + warm for side in (rside, lside)]
        await bench.make_changes(warm, 0)
        await wait_rows([rside, lside], [{"states": r} for r in rows], 60)
        log(f"local_cost: idle for {idle_s:g} s (linked)")
        await measure_idle([rside, lside], idle_s)
        result.details["idle_linked"] = _idle([rside, lside])
        mark = remote.log_mark()
        mirrored = {
            label: await bench.phase(
                f"mirror {label}",
                [rside, lside],
                n,
                rate,
                _states_plus(n),
                wire=lambda: proxy.do("stats"),
            )
            for label, rate in RATES
        }
        if profile:
            result.details["profile"] = await profile_local(bench, lside, n)
        fields = mirror_filter(DEFAULT_OPTIONS).server_filter() or {}
        wire = await measure_wire(bench, stack, n, fields)

        async def reconfigure(what: str, options: dict[str, Any]) -> None:
            log(f"local_cost: {what}; the entry reloads")
            await set_options(local, link.entry_id, options)
            await asyncio.sleep(2.0)
            await wait_until(link.connected, 60, "the local entry connected again", local)
            await asyncio.sleep(SETTLE_S)

        # Forwarding before "mirror only": adding state_changed back to the event types would
        # make the capture recover (backfill) every change of the span it was not subscribed.
        await reconfigure(
            "forward_state_changes on (the old default)",
            {CONF_FORWARD_STATE_CHANGES: True},
        )
        forwarded = {
            label: await bench.phase(
                f"forwarding {label}", [rside, lside], n, rate, _states_plus(n, events=True)
            )
            for label, rate in RATES
        }
        await reconfigure(
            "no state_changed subscription",
            {CONF_EVENT_TYPES: [NO_EVENTS], CONF_FORWARD_STATE_CHANGES: False},
        )
        mirror_only = {
            label: await bench.phase(
                f"mirror only {label}",
                [rside, lside],
                n,
                rate,
                _states_plus(n),
                wire=lambda: proxy.do("stats"),
            )
            for label, rate in RATES
        }
        dropped = remote.log_count(CANNOT_KEEP_UP_LOG, mark)

    result.details.update(
        {
            "phases": bench.phases,
            "wire": wire,
            "remote_log_unable_to_keep_up": dropped,
        }
    )
    tabulate(result, n, alone, mirrored, forwarded, wire, dropped, mirror_only)
    return result


async def profile_local(bench: Bench, local: Side, count: int) -> str:
    """One more mirror run at 1,000/s under cProfile in the local process (not in the figures)."""
    from tests.harness.develop import rest

    path = RESULTS / "local_cost_local"
    RESULTS.mkdir(parents=True, exist_ok=True)
    await rest(bench.local, "POST", "/api/services/lc_profile/start", {})
    before = local.sample()["rows"]["states"]
    await bench.make_changes(count, 1000.0)
    await wait_rows([local], [{"states": before + count}], max(60.0, count / 50))
    await rest(bench.local, "POST", "/api/services/lc_profile/stop", {"path": str(path)})
    log(f"local_cost: local profile -> {path.relative_to(ROOT)}.txt")
    return f"{path.relative_to(ROOT)}.txt"


def _idle(sides: list[Side]) -> dict[str, dict[str, float]]:
    return {
        s.name: {"cpu_per_s": round(s.idle_cpu_per_s, 4), "db_bytes_per_s": s.idle_db_per_s}
        for s in sides
    }


def _split(side: dict[str, Any], n: int) -> str:
    """CPU µs per change in the recorder's thread and in every other thread."""
    threads = side.get("threads_cpu_s") or {}
    recorder = threads.get("Recorder", 0.0) / n * 1e6
    rest = sum(v for k, v in threads.items() if k != "Recorder") / n * 1e6
    return f"{recorder:.0f} + {rest:.0f} µs"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def tabulate(
    result: Result,
    n: int,
    alone: dict[str, dict[str, Any]],
    mirrored: dict[str, dict[str, Any]],
    forwarded: dict[str, dict[str, Any]],
    wire: dict[str, dict[str, Any]],
    dropped: int,
    mirror_only: dict[str, dict[str, Any]] | None = None,
) -> None:
    """The table's rows from the phases' records (also used by the smoke test)."""
    plain = wire.get("state_changed", {}).get("bytes_per_change")

    def link_bytes(label: str, record: dict[str, Any]) -> None:
        if "link_bytes_down" in record:
            per_change = record["link_bytes_down"] / n
            share = _ratio(per_change, plain)
            result.add(
                f"{label}: link bytes from the remote per change",
                f"{per_change:.0f} B" + (f" ({share:.3f} x)" if share else ""),
            )

    for label, own in alone.items():
        mir, fwd = mirrored[label], forwarded[label]
        remote_db = own["remote"]["db_bytes_per_change"]
        remote_cpu = own["remote"]["cpu_us_per_change"]
        result.add(f"{label}: remote made changes at", own["made_per_s"], "/s", digits=0)
        result.add(f"{label}: remote alone, DB per change", remote_db, "B", digits=0)
        result.add(f"{label}: remote alone, CPU per change", remote_cpu, "µs", digits=0)
        local_db = mir["local"]["db_bytes_per_change"]
        storage = _ratio(local_db, remote_db)
        result.add(f"{label}: mirror, local DB per change", local_db, "B", digits=0)
        result.add(
            f"{label}: mirror, storage local/remote",
            storage,
            "x",
            target=f"<= {STORAGE_TARGET}",
            ok=None if storage is None else storage <= STORAGE_TARGET,
        )
        cpu = _ratio(mir["local"]["cpu_us_per_change"], remote_cpu)
        result.add(
            f"{label}: mirror, local CPU per change",
            mir["local"]["cpu_us_per_change"],
            "µs",
            digits=0,
        )
        result.add(
            f"{label}: mirror, CPU local/remote",
            cpu,
            "x",
            target=f"<= {CPU_TARGET}",
            ok=None if cpu is None else cpu <= CPU_TARGET,
        )
        result.add(
            f"{label}: mirror, local CPU per change: recorder + rest",
            _split(mir["local"], n),
        )
        result.add(
            f"{label}: remote CPU per change with the link",
            mir["remote"]["cpu_us_per_change"],
            "µs",
            digits=0,
        )
        link_bytes(label, mir)
        if mirror_only is not None:
            only = mirror_only[label]
            result.add(
                f"{label}: mirror only (no state_changed), local CPU per change",
                only["local"]["cpu_us_per_change"],
                "µs",
                digits=0,
            )
            result.add(
                f"{label}: mirror only, CPU local/remote",
                _ratio(only["local"]["cpu_us_per_change"], remote_cpu),
                "x",
            )
            result.add(
                f"{label}: mirror only, local CPU: recorder + rest", _split(only["local"], n)
            )
            result.add(
                f"{label}: mirror only, remote CPU per change with the link",
                only["remote"]["cpu_us_per_change"],
                "µs",
                digits=0,
            )
            link_bytes(f"{label}: mirror only", only)
        fwd_db = fwd["local"]["db_bytes_per_change"]
        result.add(
            f"{label}: before (forwarding), local DB per change",
            fwd_db,
            "B",
            digits=0,
        )
        result.add(f"{label}: before, storage local/remote", _ratio(fwd_db, remote_db), "x")
        result.add(
            f"{label}: before, CPU local/remote",
            _ratio(fwd["local"]["cpu_us_per_change"], remote_cpu),
            "x",
        )
        records = [own, mir, fwd, *([mirror_only[label]] if mirror_only else [])]
        if not all(r["complete"] and "unexpected_rows" not in r for r in records):
            result.add(f"{label}: one row per change on both sides", "NO", ok=False)
    for name, figures in wire.items():
        share = _ratio(figures["bytes_per_change"], plain)
        target = f"<= {WIRE_TARGET}" if name == "subscribe_entities diff + deflate" else ""
        result.add(
            f"wire at {WIRE_RATE:,.0f}/s: {name}",
            f"{figures['bytes_per_change']:.0f} B ({share:.3f} x)" if share else "n/a",
            target=target,
            ok=(share is not None and share <= WIRE_TARGET) if target else None,
        )
    result.add(
        "remote dropped the link (log lines)", dropped, target="0", ok=dropped == 0, digits=0
    )


def main() -> int:
    """`python -m bench.local_cost [--quick] [--profile]`: this benchmark alone, table on stdout."""
    import sys

    from .common import format_table

    result = asyncio.run(run("--quick" in sys.argv, "--profile" in sys.argv))
    result.write()
    print(format_table([result]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
