"""Smoke test of `scripts/bench local_cost` (bench/local_cost.py): its parts, tiny and fast.

The benchmark itself needs two real `hass` processes and minutes; here each piece it is made of
runs once on small inputs so that the code cannot rot: the remote's change maker (in the test
`hass`), the database and CPU readings, the standalone wire clients (against the fake remote) and
the table. Nothing here asserts a timing or a figure of the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
import sqlite3

from homeassistant.core import HomeAssistant

from bench import local_cost
from bench.common import Result, format_table
from bench.lc_changes import PREFIX, async_setup, attributes, make_changes

from .fake_ha import FakeHA


async def test_the_remote_makes_changes_of_1_kb_sensors(hass: HomeAssistant) -> None:
    assert 800 <= local_cost.attribute_bytes() <= 1500
    assert await make_changes(hass, 6, 0, 3, 0) >= 0
    first = hass.states.get(f"{PREFIX}0")
    assert first is not None
    assert await async_setup(hass, {})
    answer = await hass.services.async_call(
        "lc_changes",
        "run",
        {"count": 6, "rate": 1000, "entities": 3, "first": 6},
        blocking=True,
        return_response=True,
    )
    assert answer is not None
    assert answer["count"] == 6
    again = hass.states.get(f"{PREFIX}0")
    assert again is not None
    assert again.state != first.state
    # Only the small attribute may differ between two changes of one sensor.
    changed = {k for k in attributes(0, 0) if attributes(0, 0)[k] != attributes(0, 300)[k]}
    assert changed <= {"phase"}


def _recorder_like(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # every commit stays in the WAL
    db.executescript(
        """
        CREATE TABLE states_meta (metadata_id INTEGER PRIMARY KEY, entity_id TEXT);
        CREATE TABLE states (state_id INTEGER PRIMARY KEY, metadata_id INTEGER, state TEXT);
        CREATE TABLE event_types (event_type_id INTEGER PRIMARY KEY, event_type TEXT);
        CREATE TABLE events (event_id INTEGER PRIMARY KEY, event_type_id INTEGER);
        INSERT INTO states_meta VALUES (1, 'sensor.lc_bench_0'), (2, 'sensor.other');
        INSERT INTO event_types VALUES (1, 'ha_ingestion_event'), (2, 'call_service');
        """
    )
    db.commit()
    return db


async def test_database_and_cpu_readings(tmp_path: Path) -> None:
    path = tmp_path / "home-assistant_v2.db"
    assert local_cost.db_bytes(path) == 0
    assert local_cost.row_counts(path) == {"states": 0, "events": 0}
    with contextlib.closing(_recorder_like(path)) as db:
        side = local_cost.Side("local", os.getpid(), path)
        await local_cost.measure_idle([side], 0.05)
        assert side.idle_db_per_s == 0
        before = side.sample()
        db.executemany(
            "INSERT INTO states (metadata_id, state) VALUES (?, ?)",
            [(1 + n % 2, "x" * 200) for n in range(200)],
        )
        db.executemany("INSERT INTO events (event_type_id) VALUES (?)", [(1,), (2,)])
        db.commit()
        done, (after,) = await local_cost.wait_rows([side], [{"states": 100}], 5)
        assert done
        assert after["rows"] == {"states": 100, "events": 1}
        assert after["db"] > before["db"]  # committed WAL frames are counted
        assert local_cost.file_bytes(path) >= after["db"]
        d = local_cost.delta(side, before, after)
        assert d.rows == {"states": 100, "events": 1}
        assert set(d.per_change(100)) == {"cpu_us_per_change", "db_bytes_per_change"}
    assert sum(local_cost.thread_cpu(os.getpid()).values()) > 0


async def test_wire_clients_count_the_changes_of_each_transport(fake_ha: FakeHA) -> None:
    from datetime import UTC, datetime

    entity = f"{PREFIX}0"
    fake_ha.record_state(entity, "1.0", datetime.now(UTC), attributes(0, 0))
    fields = {"include": {"domains": ["sensor"], "entities": [], "entity_globs": []}}
    clients = [
        local_cost.WireClient(
            fake_ha.url,
            fake_ha.token,
            compress,
            {"type": "subscribe_entities", **fields}
            if entities
            else {"type": "subscribe_events", "event_type": "state_changed"},
        )
        for _, compress, entities in local_cost.TRANSPORTS
    ]
    try:
        for client in clients:
            await client.start()
        for serial in range(1, 4):
            await fake_ha.fire_state_changed(entity, f"{serial}.0", attributes(0, serial))
        await fake_ha.fire_state_changed("sensor.other", "1", {})
        async with asyncio.timeout(10):
            while any(c.changes < 3 for c in clients):
                await asyncio.sleep(0.01)
        assert [c.changes for c in clients] == [3, 3, 3, 3]
        assert [c.negotiated for c in clients] == [c.compress for c in clients]
        assert [c.kind for c in clients] == [
            "state_changed",
            "state_changed",
            "subscribe_entities",
            "subscribe_entities",
        ]
    finally:
        for client in clients:
            await client.close()


def _record(cpu_us: float, db: float) -> dict[str, object]:
    return {"cpu_us_per_change": cpu_us, "db_bytes_per_change": db}


def test_the_table() -> None:
    result = Result("local_cost", quick=True)
    own = {"remote": _record(500, 200), "made_per_s": 99.0, "complete": True}
    mirrored = {
        "remote": _record(700, 200),
        "local": _record(100, 250),
        "link_bytes_down": 4_000,
        "complete": True,
    }
    forwarded = {"remote": _record(700, 200), "local": _record(900, 4000), "complete": False}
    wire = {
        "state_changed": {"bytes_per_change": 2_500.0},
        "subscribe_entities diff + deflate": {"bytes_per_change": 50.0},
    }
    local_cost.tabulate(
        result,
        100,
        {"100/s": own},
        {"100/s": mirrored},
        {"100/s": forwarded},
        wire,
        0,
        {"100/s": mirrored},
    )
    rows = {m.metric: m for m in result.metrics}
    assert rows["100/s: mirror, storage local/remote"].ok is True
    assert rows["100/s: mirror, CPU local/remote"].ok is True
    assert rows["100/s: before, storage local/remote"].value == 20
    assert rows["100/s: one row per change on both sides"].ok is False
    assert rows["wire at 1,000/s: subscribe_entities diff + deflate"].ok is True
    assert rows["100/s: link bytes from the remote per change"].value == "40 B (0.016 x)"
    assert rows["100/s: mirror only, CPU local/remote"].value == 0.2
    assert "local_cost" in format_table([result])
