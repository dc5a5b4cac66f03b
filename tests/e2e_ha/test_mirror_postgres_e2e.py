"""Mirrored entities recorded by a LOCAL Home Assistant whose recorder is on a real PostgreSQL.

The path for users whose data outgrows SQLite. Three real processes, all with default settings
but the recorder's database: the shared remote `hass` (SQLite, the recorder's defaults); a
temporary PostgreSQL server (`postgres` fixture: Debian's package, a throwaway cluster); a local
`hass` running this checkout (`local_hass.py`) with `recorder: db_url: postgresql://...`, linked
through the real config flow, mirroring on (the default option).

The remote's power sensor (W, device_class power, state_class measurement; set over its REST API
as test_mirror_e2e does) changes a few times. Read back with psycopg2 from PostgreSQL:

- the recorder created and migrated its schema there (`schema_changes` at this release's version);
- every mirrored value is a row of `states` (by `states_meta.entity_id`), in order, nothing else;
- its attributes are in `state_attributes`, de-duplicated: the changes with the same attributes
  share one row, the change with another attribute has its own;
- the recorder compiled the mirror's short-term statistics: `statistics_meta` for the mirrored
  statistic id (unit W) and rows in `statistics_short_term` whose min/max are those of the
  recorded states in the period (and the mean between). Short-term statistics are compiled every
  5 minutes (at :00, :05, ... + about 10 s) for the 5 minutes before: the test waits for the real
  compile, polling the database, for up to 6 min after the first mirrored state (the rest of
  the test runs within that wait).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
import json
from pathlib import Path
import time
from typing import Any

from homeassistant.components.recorder.db_schema import SCHEMA_VERSION
import pytest

from tests.e2e.helpers import record
from tests.harness import RemoteHass
from tests.harness.postgres import PostgresServer

from .local_hass import LocalLink, link_local, start_local, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(720)]

POWER = "sensor.e2e_pg_power"
ATTRIBUTES: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
    "friendly_name": "E2E power",
}
# The remote's values in order; the last one also gets another attribute (a new attributes row).
VALUES = ["1200", "800", "650", "1000"]
EXTRA = {"phase": "L1"}
PERIOD = 300.0  # short-term statistics period (5 minutes)
# The first compile that covers the first mirrored state: the end of its 5-minute period plus
# the recorder's 10 s offset, plus room for a busy machine (the compile runs in the recorder's
# queue, after what was waiting there).
STATISTICS_TIMEOUT = PERIOD + 60.0

STATES_SQL = """
SELECT s.state, s.last_updated_ts, s.attributes_id, a.shared_attrs
FROM states s
JOIN states_meta m ON s.metadata_id = m.metadata_id
LEFT JOIN state_attributes a ON s.attributes_id = a.attributes_id
WHERE m.entity_id = %s
ORDER BY s.last_updated_ts, s.state_id
"""
SHORT_TERM_SQL = """
SELECT st.start_ts, st.mean, st.min, st.max
FROM statistics_short_term st
JOIN statistics_meta sm ON st.metadata_id = sm.id
WHERE sm.statistic_id = %s
ORDER BY st.start_ts
"""


def _query(postgres: PostgresServer, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on the recorder's database (a fresh connection: the recorder commits)."""
    with contextlib.closing(postgres.connect()) as db, db.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


async def query(postgres: PostgresServer, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """`_query` off the event loop."""
    return await asyncio.to_thread(_query, postgres, sql, *params)


async def test_mirrored_history_and_statistics_land_in_postgresql(
    remote: RemoteHass, postgres: PostgresServer, tmp_path: Path
) -> None:
    began = time.monotonic()
    await remote.set_state(POWER, VALUES[0], ATTRIBUTES)
    local = await start_local(
        tmp_path / "local", name="E2E Local PG", entities_yaml="", db_url=postgres.url
    )
    local_up_s = time.monotonic() - began
    try:
        linked = await link_local(local, remote.url, remote.token or "")
        mirrored = f"sensor.{linked.slug}_e2e_pg_power"
        await _wait_state(linked, mirrored, VALUES[0])
        first_mirrored = time.monotonic()
        mirrored_s = first_mirrored - began

        # The remote changes it; each change is a local state before the next one is made.
        for n, value in enumerate(VALUES[1:], start=1):
            extra = EXTRA if n == len(VALUES) - 1 else {}
            await remote.set_state(POWER, value, {**ATTRIBUTES, **extra})
            await _wait_state(linked, mirrored, value)

        # Committed by the recorder (every 5 s by default) into PostgreSQL.
        async def all_recorded() -> bool:
            rows = await query(postgres, STATES_SQL, mirrored)
            return [row[0] for row in rows] == VALUES

        await wait_until(all_recorded, 60, "every mirrored value in PostgreSQL", local, poll=1)
        states = await query(postgres, STATES_SQL, mirrored)
        schema = await query(
            postgres, "SELECT schema_version FROM schema_changes ORDER BY change_id"
        )
        same_attributes = await query(
            postgres,
            "SELECT count(*) FROM state_attributes WHERE shared_attrs = %s",
            states[0][3],
        )

        # The real compile of short-term statistics (overlapping the waits above).
        async def compiled() -> bool:
            return bool(await query(postgres, SHORT_TERM_SQL, mirrored))

        elapsed = time.monotonic() - first_mirrored
        await wait_until(
            compiled,
            max(STATISTICS_TIMEOUT - elapsed, 1),
            f"short-term statistics of {mirrored} compiled into PostgreSQL",
            local,
            poll=2,
        )
        statistics_wait_s = time.monotonic() - first_mirrored
        short_term = await query(postgres, SHORT_TERM_SQL, mirrored)
        meta = await query(
            postgres,
            "SELECT statistic_id, source, unit_of_measurement FROM statistics_meta "
            "WHERE statistic_id = %s",
            mirrored,
        )
        # Every value recorded up to now (a compile may also have covered later periods).
        states = await query(postgres, STATES_SQL, mirrored)
        recorder_log = [
            line.split(" ", 2)[-1][:240]  # without the date and time
            for line in local.log_since().splitlines()
            if "[homeassistant.components.recorder" in line
            and (" ERROR " in line or " WARNING " in line)
        ]
        sqlite_files = sorted(p.name for p in local.config_dir.glob("home-assistant_v2.db*"))
    finally:
        await local.close()
        local.cleanup()
        await remote.remove_state(POWER)

    # The recorder made its schema on PostgreSQL and migrated it to this release's version.
    assert schema, "no schema_changes rows"
    assert schema[-1][0] == SCHEMA_VERSION, (schema, SCHEMA_VERSION)

    # Nothing went to SQLite: the recorder's only database is PostgreSQL.
    assert sqlite_files == [], sqlite_files

    # History: exactly the remote's values, in order.
    assert [row[0] for row in states] == VALUES, states

    # Attributes: one shared row for identical attributes, another for the changed ones.
    attribute_ids = [row[2] for row in states]
    assert len(set(attribute_ids[:-1])) == 1, states
    assert attribute_ids[-1] != attribute_ids[0], states
    assert same_attributes == [(1,)], same_attributes
    first, last = json.loads(states[0][3]), json.loads(states[-1][3])
    assert first.pop("friendly_name").endswith("E2E power"), first
    assert last.pop("friendly_name").endswith("E2E power"), last
    expected = {k: v for k, v in ATTRIBUTES.items() if k != "friendly_name"}
    assert first == expected, first
    assert last == {**expected, **EXTRA}, last

    # Statistics: the mirrored statistic, and each compiled period's min/max from its states.
    assert meta == [(mirrored, "recorder", "W")], meta
    periods = [_check_period(row, states) for row in short_term]
    record(
        "ha_14_local_recorder_postgresql",
        schema_version=schema[-1][0],
        states=len(states),
        short_term_periods=periods,
        local_up_s=local_up_s,
        first_mirrored_s=mirrored_s,
        statistics_after_first_mirrored_s=statistics_wait_s,
        recorder_log=recorder_log,
        test_s=time.monotonic() - began,
    )
    assert not [line for line in recorder_log if line.startswith("ERROR")], recorder_log


def _check_period(row: tuple[Any, ...], states: list[tuple[Any, ...]]) -> str:
    """One short-term row against the recorded states of its period (and the one in effect)."""
    start, mean, low, high = (float(v) for v in row)
    end = start + PERIOD
    before = [float(s[0]) for s in states if s[1] <= start]
    within = [float(s[0]) for s in states if start < s[1] < end]
    values = before[-1:] + within
    assert values, (row, states)
    assert (low, high) == (min(values), max(values)), (row, values, states)
    assert low <= mean <= high, row
    began = datetime.fromtimestamp(start, UTC).strftime("%H:%M")
    return f"{began} min {low:g} max {high:g} mean {mean:.1f} ({len(values)} states)"


async def _wait_state(linked: LocalLink, entity_id: str, value: str) -> None:
    """The local entity shows `value` (over the local REST API)."""

    async def shows() -> bool:
        return await linked.state(entity_id) == value

    await wait_until(shows, 30, f"{entity_id} == {value}", linked.local)
