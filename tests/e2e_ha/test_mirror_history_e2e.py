"""Outages leave no hole in a mirror's recorded history (issue 25), two real `hass` processes.

The shared remote (default recorder) has a numeric sensor set over its REST API (so without a
registry entry there: the gap's entity list must still hold it, as the mirror does). A LOCAL
`hass` (`local_hass.py`: this checkout, default options and recorder settings; the recorder on
SQLite, or on a real PostgreSQL) mirrors it through a `FaultProxy`, and has an automation with a
state trigger on the mirror that fires `e2e_mirror_triggered` with the new state. Then:

1. the network is cut (the proxy refuses and resets), the remote changes the sensor 10 times, the
   network is back the moment the last change is made;
2. the local `hass` is stopped gracefully, 10 changes, started again;
3. the local `hass` is SIGKILLed, 10 changes, started again.

After each recovery, read from the LOCAL recorder's database: every one of the 30 changes is a
row of the mirror's `states` at the remote's `last_updated` (±1 s; stored exactly), in order;
no `unavailable` row is left after the first link (every one was inside a recovered span); the
local `history/history_during_period` returns the 30 values; and the automation ran for none of
the changes that were only recovered (each outage's last value is also the state the mirror
shows live at the relink, so that one may trigger it as a live change).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from itertools import pairwise
import json
from pathlib import Path
import sqlite3
import textwrap
import time
from typing import Any

from homeassistant.util import slugify
import pytest

from tests.e2e.helpers import record
from tests.harness import FaultProxy, RemoteHass
from tests.harness.postgres import PostgresServer

from .local_hass import LocalLink, link_local, start_local, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

POWER = "sensor.e2e_history_power"
ATTRIBUTES: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
    "friendly_name": "E2E history power",
}
TRIGGERED = "e2e_mirror_triggered"
CHANGES = 10
RECOVERY_TIMEOUT = 180.0
PICTURE_DATA = Path(__file__).resolve().parents[2] / "bench" / "results" / "ha_25_history.json"


class LocalDb:
    """The local recorder's database, read the way a user could (SQLite file or PostgreSQL)."""

    def __init__(self, local_dir: Path, postgres: PostgresServer | None) -> None:
        """SQLite at `local_dir` unless `postgres`."""
        self.path = local_dir / "home-assistant_v2.db"
        self.postgres = postgres

    def _rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.postgres is not None:
            with contextlib.closing(self.postgres.connect()) as db, db.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall())
        if not self.path.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            return list(db.execute(sql, params).fetchall())

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Off the event loop; a fresh connection each time (the recorder commits meanwhile)."""
        return await asyncio.to_thread(self._rows, sql, *params)

    async def states(self, entity_id: str) -> list[tuple[str, float, int | None, int]]:
        """(state, last_updated_ts, old_state_id, state_id) of every row of `entity_id`."""
        rows = await self.rows(
            "SELECT s.state, s.last_updated_ts, s.old_state_id, s.state_id FROM states s "
            "JOIN states_meta m ON s.metadata_id = m.metadata_id WHERE m.entity_id = ? "
            "ORDER BY s.last_updated_ts, s.state_id",
            entity_id,
        )
        return [(str(r[0]), float(r[1]), r[2], int(r[3])) for r in rows]

    async def triggered(self) -> list[str]:
        """The new states the local automation ran for (its events, as recorded)."""
        rows = await self.rows(
            "SELECT d.shared_data FROM events e "
            "JOIN event_types t ON e.event_type_id = t.event_type_id "
            "JOIN event_data d ON e.data_id = d.data_id WHERE t.event_type = ? "
            "ORDER BY e.time_fired_ts",
            TRIGGERED,
        )
        return [str(json.loads(row[0]).get("to")) for row in rows]


def automation_yaml(mirrored: str) -> str:
    """A local automation with a state trigger on the mirror."""
    return textwrap.dedent(
        f"""\
        automation:
          - alias: e2e mirror trigger
            triggers:
              - trigger: state
                entity_id: {mirrored}
            actions:
              - event: {TRIGGERED}
                event_data:
                  to: "{{{{ trigger.to_state.state }}}}"
        """
    )


async def _changes(remote: RemoteHass, first: int) -> list[tuple[str, float]]:
    """CHANGES new values on the remote; (state, last_updated epoch) as it reports each."""
    made: list[tuple[str, float]] = []
    for n in range(CHANGES):
        value = str(first + n)
        await remote.set_state(POWER, value, ATTRIBUTES)
        state = await remote.get_state(POWER)
        assert state is not None
        assert state["state"] == value
        made.append((value, datetime.fromisoformat(state["last_updated"]).timestamp()))
    return made


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_outages_leave_no_hole_in_a_mirrors_history(
    remote: RemoteHass,
    proxy: FaultProxy,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    database: str,
) -> None:
    began = time.monotonic()
    postgres: PostgresServer | None = (
        request.getfixturevalue("postgres") if database == "postgresql" else None
    )
    await remote.set_state(POWER, "1", ATTRIBUTES)
    # The entry's title is the remote's name: the mirror's entity id is known before the link.
    mirrored = f"sensor.{slugify(remote.name)}_e2e_history_power"
    local_dir = tmp_path / "local"
    local = await start_local(
        local_dir,
        name="E2E Local History",
        entities_yaml=automation_yaml(mirrored),
        **({"db_url": postgres.url} if postgres is not None else {}),
    )
    db = LocalDb(local_dir, postgres)
    figures: dict[str, Any] = {"database": database}
    try:
        linked = await link_local(local, f"{proxy.host}:{proxy.port}", remote.token or "")
        assert mirrored == f"sensor.{linked.slug}_e2e_history_power"
        await _shows(linked, mirrored, "1")
        await remote.set_state(POWER, "2", ATTRIBUTES)  # a live change: the remote's clock known
        await _shows(linked, mirrored, "2")
        linked_at = time.time()
        made: list[tuple[str, float]] = []

        outages: list[tuple[str, float, float]] = []  # (what, from, to) for the picture

        # 1. A network cut, restored the moment the last change is made.
        began_outage = time.time()
        await proxy.refuse()
        proxy.reset_connections()
        await _shows(linked, mirrored, "unavailable")
        cut = await _changes(remote, 100)
        await proxy.refuse(False)
        outages.append(("network cut", began_outage, time.time()))
        made += cut
        figures["network_cut_s"] = await _recovered(linked, db, mirrored, made, "network cut")

        # 2. The local hass stopped gracefully, 10 changes, started again.
        began_outage = time.time()
        await local.stop()
        made += await _changes(remote, 200)
        await local.start()
        outages.append(("graceful stop", began_outage, time.time()))
        figures["graceful_stop_s"] = await _recovered(linked, db, mirrored, made, "graceful stop")

        # 3. SIGKILL, 10 changes, started again.
        began_outage = time.time()
        local.kill()
        made += await _changes(remote, 300)
        await local.start()
        outages.append(("SIGKILL", began_outage, time.time()))
        figures["sigkill_s"] = await _recovered(linked, db, mirrored, made, "SIGKILL")

        # The recorder's history API returns them (over the local WebSocket API).
        async with local.ws() as ws:
            reply = await ws.command(
                {
                    "type": "history/history_during_period",
                    "start_time": datetime.fromtimestamp(made[0][1] - 0.001, UTC).isoformat(),
                    "entity_ids": [mirrored],
                    "significant_changes_only": False,
                    "minimal_response": False,
                    "no_attributes": True,
                }
            )
        api = [(row["s"], float(row["lu"])) for row in reply.get(mirrored, [])]
        async with remote.ws() as ws:
            reply = await ws.command(
                {
                    "type": "history/history_during_period",
                    "start_time": datetime.fromtimestamp(linked_at - 5, UTC).isoformat(),
                    "entity_ids": [POWER],
                    "significant_changes_only": False,
                    "minimal_response": False,
                    "no_attributes": True,
                }
            )
        remote_history = [(row["s"], float(row["lu"])) for row in reply.get(POWER, [])]
        rows = await db.states(mirrored)
        diagnostics = (await linked.diagnostics())["mirror"]["history"]
        triggered = await db.triggered()
        log_errors = [
            line.split(" ", 2)[-1][:240]
            for line in local.log_since().splitlines()
            if " ERROR " in line and ("recorder" in line or "ha_ingestion" in line)
        ]
    finally:
        await local.close()
        local.cleanup()
        await remote.remove_state(POWER)

    recorded = [(state, ts) for state, ts, _, _ in rows]
    positions = []
    for value, moment in made:
        found = [i for i, (s, ts) in enumerate(recorded) if s == value and abs(ts - moment) <= 1.0]
        positions.append(found[0] if found else -1)
    api_values = [s for s, _ in api]
    recovered_only = {value for i, (value, _) in enumerate(made) if i % CHANGES != CHANGES - 1}
    figures.update(
        made=len(made),
        in_states=sum(1 for p in positions if p >= 0),
        in_order=positions == sorted(positions) and -1 not in positions,
        exact_times=all(
            abs(recorded[p][1] - moment) < 1e-3
            for p, (_, moment) in zip(positions, made, strict=True)
            if p >= 0
        ),
        unavailable_after_link=[
            ts for state, ts in recorded if state == "unavailable" and ts > linked_at
        ],
        chain_breaks=sum(1 for prev, row in pairwise(rows) if row[2] != prev[3]),
        history_api_has_all=all(value in api_values for value, _ in made),
        triggered_by_recovered=sorted(set(triggered) & recovered_only),
        triggered=triggered,
        diagnostics=diagnostics,
        log_errors=log_errors,
        test_s=round(time.monotonic() - began, 1),
    )
    record(f"ha_25_mirror_history_{database}", **figures)
    # The two histories, for the README's picture (`scripts/run python -m bench.history_picture`).
    PICTURE_DATA.parent.mkdir(parents=True, exist_ok=True)
    PICTURE_DATA.write_text(
        json.dumps(
            {
                "database": database,
                "remote": remote_history,
                "mirror": [(state, ts) for state, ts in recorded if ts >= linked_at - 5],
                "outages": outages,
            }
        ),
        encoding="utf-8",
    )
    assert figures["in_states"] == len(made), (figures, recorded)
    assert figures["in_order"], (figures, recorded)
    assert figures["exact_times"], (figures, recorded)
    assert figures["unavailable_after_link"] == [], (figures, recorded)
    assert figures["history_api_has_all"], (figures, api)
    assert figures["triggered_by_recovered"] == [], figures
    assert "2" in triggered, figures  # the automation does run for live changes
    assert figures["chain_breaks"] == 0, (figures, rows)
    assert log_errors == [], log_errors


async def _shows(linked: LocalLink, entity_id: str, value: str) -> None:
    """The local entity shows `value` (over the local REST API)."""

    async def shows() -> bool:
        return await linked.state(entity_id) == value

    await wait_until(shows, 120, f"{entity_id} == {value}", linked.local)


async def _recovered(
    linked: LocalLink, db: LocalDb, mirrored: str, made: list[tuple[str, float]], what: str
) -> float:
    """Seconds until every change made so far is a recorded state of the mirror and the gap's
    span is mended: no `unavailable` row after the first change made, every row linked to the
    one before it (the recorder itself starts a new chain at each start: the mend links it)."""
    began = time.monotonic()
    wanted = {(value, round(moment, 3)) for value, moment in made}

    async def there() -> bool:
        rows = await db.states(mirrored)
        have = {(state, round(ts, 3)) for state, ts, _, _ in rows}
        mended = not [ts for state, ts, _, _ in rows if state == "unavailable" and ts > made[0][1]]
        linked = all(row[2] == previous[3] for previous, row in pairwise(rows))
        return wanted <= have and mended and linked

    try:
        await wait_until(
            there,
            RECOVERY_TIMEOUT,
            f"{what}: every change in the mirror's history",
            linked.local,
            poll=1,
        )
    except AssertionError as err:
        rows = await db.states(mirrored)
        with contextlib.suppress(Exception):
            diagnostics = await linked.diagnostics()
            err.add_note(f"capture: {json.dumps(diagnostics.get('capture'))[:3000]}")
            err.add_note(f"mirror history: {diagnostics['mirror']['history']}")
        err.add_note(f"made: {made}")
        err.add_note(f"rows: {rows}")
        raise
    return round(time.monotonic() - began, 1)
