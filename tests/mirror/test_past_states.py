"""Recovered changes of mirrored entities become the mirrors' recorded history (issue 25).

A real local recorder (SQLite in memory), the fake remote over real sockets: the link is cut,
the remote records changes, the link comes back; the mirror's recorded states must then hold
them at the remote's times, in order, linked, with no `unavailable` row of the outage left, and
nothing fired (no `state_changed` for them, no `ha_ingestion_event` by default).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
import json
from typing import Any

from homeassistant.components.recorder import Recorder, history
from homeassistant.components.recorder.db_schema import StateAttributes, States, StatesMeta
from homeassistant.components.recorder.util import session_scope
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestion.capture import recovery as recovery_module
from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import (
    CONF_FAILURE_THRESHOLD,
    CONF_FORWARD_STATE_CHANGES,
    CONF_MIRROR_ENTITIES,
    EVENT_INGESTED,
)
from custom_components.ha_ingestion.mirror import past_states as past_module
from custom_components.ha_ingestion.mirror.recorder_history import (
    MendHole,
    PastRow,
    WritePastStates,
)
from tests.conftest import link_state, linked_entry, wait_for
from tests.e2e.helpers import record
from tests.fake_ha import FakeHA

POWER: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
    "friendly_name": "Heat pump power",
}
REMOTE = "sensor.heat_pump_power"
LOCAL = "sensor.remote_home_heat_pump_power"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder first; no real waiting for the fake remote's commit interval."""
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 0.0)
    monkeypatch.setattr(recovery_module, "RETRY_DELAY", 0.0)
    monkeypatch.setattr(recovery_module, "BACKLOG_POLL", 0.0)


async def mirroring(hass: HomeAssistant, fake_ha: FakeHA, **options: Any) -> MockConfigEntry:
    """A link mirroring the fake remote's entities, backfill on, connected; `REMOTE` at "100"
    then changed live to "150" (the remote's clock measured: a gap starts after it)."""
    entry = linked_entry(
        fake_ha, **{CONF_MIRROR_ENTITIES: True, CONF_FAILURE_THRESHOLD: 1000, **options}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await fake_ha.fire_state_changed(REMOTE, "150", POWER)
    await wait_for(lambda: shown(hass, LOCAL) == "150")
    await wait_for(lambda: REMOTE in entry.runtime_data.capture.state.seen)
    return entry


def inside(start: datetime, count: int) -> list[datetime]:
    """`count` increasing instants strictly between `start` and now."""
    span = datetime.now(UTC) - start
    return [start + span * (index + 1) / (count + 1) for index in range(count)]


def shown(hass: HomeAssistant, entity_id: str) -> str | None:
    """The state shown now."""
    state = hass.states.get(entity_id)
    return None if state is None else state.state


async def outage(
    hass: HomeAssistant, fake_ha: FakeHA, entry: MockConfigEntry, values: list[str]
) -> list[datetime]:
    """Cut the link, record `values` on the remote, restore it; the gap closed and written."""
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    await wait_for(lambda: shown(hass, LOCAL) == "unavailable")
    lost = datetime.now(UTC)
    await wait_for(lambda: datetime.now(UTC) - lost > timedelta(milliseconds=20))
    times = inside(lost, len(values))
    attributes = {k: v for k, v in POWER.items() if k != "friendly_name"}
    for value, moment in zip(values, times, strict=True):
        fake_ha.record_state(
            REMOTE, value, moment, {**attributes, "friendly_name": "Heat pump power"}
        )
    gaps = len(entry.runtime_data.capture.state.gaps)
    fake_ha.refuse = False
    await wait_for(lambda: len(entry.runtime_data.capture.state.gaps) > gaps)
    await entry.runtime_data.mirror.history.async_drain()
    await async_wait_recording_done(hass)
    return times


def recorded_rows(recorder: Recorder, entity_id: str) -> list[dict[str, Any]]:
    """Every recorded state row of `entity_id`, in time order, with its attributes' JSON."""
    with session_scope(session=recorder.get_session(), read_only=True) as session:
        rows = (
            session.query(States, StateAttributes.shared_attrs)
            .join(StatesMeta, States.metadata_id == StatesMeta.metadata_id)
            .outerjoin(StateAttributes, States.attributes_id == StateAttributes.attributes_id)
            .filter(StatesMeta.entity_id == entity_id)
            .order_by(States.last_updated_ts, States.state_id)
            .all()
        )
        return [
            {
                "state_id": row.state_id,
                "state": row.state,
                "updated": row.last_updated_ts,
                "changed": row.last_changed_ts or row.last_updated_ts,
                "old_state_id": row.old_state_id,
                "attributes_id": row.attributes_id,
                "origin_idx": row.origin_idx,
                "shared_attrs": shared,
            }
            for row, shared in rows
        ]


def ingested_count(recorder: Recorder) -> int:
    """`ha_ingestion_event`s in the local database."""
    from homeassistant.components.recorder.db_schema import Events, EventTypes

    with session_scope(session=recorder.get_session(), read_only=True) as session:
        return (
            session.query(Events)
            .join(EventTypes, Events.event_type_id == EventTypes.event_type_id)
            .filter(EventTypes.event_type == EVENT_INGESTED)
            .count()
        )


async def test_recovered_changes_are_the_mirrors_recorded_history(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    fake_ha: FakeHA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the remote's times, in order, linked, attributes shared, no hole, nothing fired."""
    monkeypatch.setattr(past_module, "BATCH", 3)  # several recorder tasks for one gap
    monkeypatch.setattr(past_module, "IN_FLIGHT", 1)
    await fake_ha.fire_state_changed(REMOTE, "100", POWER)
    entry = await mirroring(hass, fake_ha)
    # The remote's entity really is unavailable for a moment (told live): that row stays.
    await fake_ha.fire_state_changed(REMOTE, "unavailable", POWER)
    await wait_for(lambda: shown(hass, LOCAL) == "unavailable")
    await fake_ha.fire_state_changed(REMOTE, "170", POWER)
    await wait_for(lambda: shown(hass, LOCAL) == "170")
    changed = async_capture_events(hass, EVENT_STATE_CHANGED)
    ingested = async_capture_events(hass, EVENT_INGESTED)

    values = [str(200 + n) for n in range(8)]
    times = await outage(hass, fake_ha, entry, values)
    await wait_for(lambda: shown(hass, LOCAL) == values[-1])
    await async_wait_recording_done(hass)

    rows = recorded_rows(recorder_mock, LOCAL)
    states = [row["state"] for row in rows]
    # Before, the recovered ones in order, the relink (the remote's current state, live).
    assert states == ["100", "150", "unavailable", "170", *values, values[-1]]
    recovered = rows[4:-1]
    for row, moment in zip(recovered, times, strict=True):
        assert row["updated"] == pytest.approx(moment.timestamp(), abs=1e-6)
        assert row["origin_idx"] == 1  # from the remote; live mirror rows are local (0)
    assert states.count("unavailable") == 1  # the outage's row is gone, the remote's stays
    # Linked in order, as the recorder links live states.
    for previous, row in pairwise(rows):
        assert row["old_state_id"] == previous["state_id"]
    # Attributes as recorded live (the mirror's friendly name), one shared row.
    assert {row["attributes_id"] for row in rows} == {rows[0]["attributes_id"]}
    assert json.loads(rows[0]["shared_attrs"])["friendly_name"] == "Remote Home Heat pump power"
    # Nothing fired for them: no state_changed of the mirror but the two live ones (the outage's
    # unavailable, the relink), no ha_ingestion_event; the live state is the remote's current.
    mine = [e for e in changed if e.data["entity_id"] == LOCAL]
    assert [e.data["new_state"].state for e in mine] == ["unavailable", values[-1]]
    assert [e for e in ingested if e.data["backfilled"]] == []
    assert await recorder_mock.async_add_executor_job(ingested_count, recorder_mock) == 0
    history_of = entry.runtime_data.mirror.history
    assert history_of.written == len(values)
    assert history_of.removed_unavailable == 1
    assert entry.runtime_data.capture.state.backfilled == len(values)

    # The recorder's history API returns them.
    start = times[0] - timedelta(microseconds=1)
    found = await recorder_mock.async_add_executor_job(
        history.state_changes_during_period, hass, start, None, LOCAL
    )
    # (the first is the state at the start: the change before the outage)
    assert [s.state for s in found[LOCAL]][1 : len(values) + 1] == values
    assert [s.last_updated.timestamp() for s in found[LOCAL]][1 : len(values) + 1] == pytest.approx(
        [t.timestamp() for t in times], abs=1e-6
    )

    # A later live change links on the newest row, as always.
    await fake_ha.fire_state_changed(REMOTE, "999", POWER)
    await wait_for(lambda: shown(hass, LOCAL) == "999")
    await async_wait_recording_done(hass)
    rows = recorded_rows(recorder_mock, LOCAL)
    assert rows[-1]["state"] == "999"
    assert rows[-1]["old_state_id"] == rows[-2]["state_id"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_also_fire_state_changes_keeps_firing_recovered_ones(
    recorder_mock: Recorder, hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """*Also fire state changes* on: recorded as past states AND fired as backfilled events."""
    await fake_ha.fire_state_changed(REMOTE, "100", POWER)
    entry = await mirroring(hass, fake_ha, **{CONF_FORWARD_STATE_CHANGES: True})
    ingested = async_capture_events(hass, EVENT_INGESTED)
    values = ["1", "2", "3"]
    await outage(hass, fake_ha, entry, values)
    fired = [e.data["data"]["new_state"]["state"] for e in ingested if e.data["backfilled"]]
    assert fired == values
    states = [row["state"] for row in recorded_rows(recorder_mock, LOCAL)]
    assert states[2:5] == values
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_batch_written_again_adds_nothing(
    recorder_mock: Recorder, hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """After a crash capture may hand the same changes again: no row is written twice."""
    await fake_ha.fire_state_changed(REMOTE, "100", POWER)
    entry = await mirroring(hass, fake_ha)
    times = await outage(hass, fake_ha, entry, ["1", "2"])
    sink = entry.runtime_data.mirror.history
    for n, moment in enumerate(times):
        us = int(moment.timestamp() * 1_000_000)
        assert sink.record(REMOTE, str(n + 1), dict(POWER), us, us)
    await sink.async_drain()
    assert sink.duplicate == 2
    assert [row["state"] for row in recorded_rows(recorder_mock, LOCAL)].count("1") == 1
    # Not a mirror, or not a state: not taken (capture fires it as an event, as before).
    assert not sink.record("sensor.not_mirrored", "1", {}, 1, 1)
    assert not sink.record(REMOTE, None, {}, 1, 1)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _payload_bytes(recorder: Recorder) -> int:
    """Bytes of every table's and index's records in the database (SQLite `dbstat`)."""
    from sqlalchemy import text

    with session_scope(session=recorder.get_session(), read_only=True) as session:
        return int(session.execute(text("SELECT SUM(payload) FROM dbstat")).scalar() or 0)


STORAGE_CHANGES = 200


async def test_a_recovered_change_costs_the_database_what_a_live_one_does(
    recorder_mock: Recorder, hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """Bytes in the database per change (every table and index, SQLite `dbstat` payload): a
    recovered change of a mirror is stored once, as a state, about as a live one (target: at most 1.2 times).

    The figures are recorded (shown with `-s`) for docs/outage-recovery.md.
    """
    entry = await mirroring(hass, fake_ha)
    await async_wait_recording_done(hass)
    before = await recorder_mock.async_add_executor_job(_payload_bytes, recorder_mock)
    for n in range(STORAGE_CHANGES):
        await fake_ha.fire_state_changed(REMOTE, str(1000 + n), POWER)
        await wait_for(lambda n=n: shown(hass, LOCAL) == str(1000 + n))  # type: ignore[misc]
    await async_wait_recording_done(hass)
    live_done = await recorder_mock.async_add_executor_job(_payload_bytes, recorder_mock)
    await outage(hass, fake_ha, entry, [str(5000 + n) for n in range(STORAGE_CHANGES)])
    await async_wait_recording_done(hass)
    recovered_done = await recorder_mock.async_add_executor_job(_payload_bytes, recorder_mock)
    # The outage itself wrote one `unavailable` row (removed again) and the relink one live
    # row: counted as live rows, taken off the recovered side.
    live = (live_done - before) / STORAGE_CHANGES
    recovered = (recovered_done - live_done - live) / STORAGE_CHANGES
    record(
        "ha_25_recovered_change_storage",
        live_bytes_per_change=live,
        recovered_bytes_per_change=recovered,
        ratio=recovered / live,
    )
    assert entry.runtime_data.mirror.history.written == STORAGE_CHANGES
    assert await recorder_mock.async_add_executor_job(ingested_count, recorder_mock) == 0
    assert recovered <= 1.2 * live
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_changes_made_while_this_instance_was_stopped_leave_no_hole(
    recorder_mock: Recorder, hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """Unloaded (a reload), the remote changes, set up again with the remote down (the mirror
    starts `unavailable`), the remote back: the changes are recorded at the remote's times and
    the `unavailable` rows of the unload and of the start are gone."""
    entry = await mirroring(hass, fake_ha)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    stopped = datetime.now(UTC)
    await wait_for(lambda: datetime.now(UTC) - stopped > timedelta(milliseconds=20))
    times = inside(stopped, 3)
    attributes = {k: v for k, v in POWER.items() if k != "friendly_name"}
    for n, moment in enumerate(times):
        fake_ha.record_state(REMOTE, f"3{n}", moment, attributes)
    fake_ha.refuse = True
    await fake_ha.close_all()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: shown(hass, LOCAL) == "unavailable")
    await async_wait_recording_done(hass)
    assert "unavailable" in [row["state"] for row in recorded_rows(recorder_mock, LOCAL)]
    fake_ha.refuse = False
    await wait_for(lambda: len(entry.runtime_data.capture.state.gaps) >= 1)
    await entry.runtime_data.mirror.history.async_drain()
    await async_wait_recording_done(hass)
    rows = recorded_rows(recorder_mock, LOCAL)
    # The start's `unavailable` (the link's) is gone, and so is the one Home Assistant wrote
    # itself for the removed mirror while the entry unloaded.
    assert [row["state"] for row in rows] == ["150", "30", "31", "32", "32"]
    for row, moment in zip(rows[1:4], times, strict=True):
        assert row["updated"] == pytest.approx(moment.timestamp(), abs=1e-6)
    for previous, row in pairwise(rows):
        assert row["old_state_id"] == previous["state_id"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_recorder_tasks_skip_what_the_recorder_does_not_record(
    recorder_mock: Recorder, hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """An entity never recorded here is not written (no `states_meta` row is made for it); new
    attributes get a row of their own; empty batches do nothing."""
    entry = await mirroring(hass, fake_ha)
    await async_wait_recording_done(hass)
    outcomes: list[Any] = []
    moment = datetime.now(UTC).timestamp() - 10
    rows = [
        PastRow(
            entity_id="sensor.never_recorded",
            state="1",
            attributes={},
            changed=moment,
            updated=moment,
            unrecorded=frozenset(),
        ),
        PastRow(
            entity_id=LOCAL,
            state="7",
            attributes={"only": "here", "hidden": "x"},
            changed=moment - 1,
            updated=moment,
            unrecorded=frozenset({"hidden"}),
        ),
    ]
    recorder_mock.queue_task(WritePastStates(rows, outcomes.append))
    recorder_mock.queue_task(WritePastStates([], outcomes.append))
    recorder_mock.queue_task(MendHole([], moment, moment, None, outcomes.append))
    recorder_mock.queue_task(
        MendHole(["sensor.never_recorded"], moment, moment, None, outcomes.append)
    )
    await async_wait_recording_done(hass)
    written, empty, no_ids, unknown = outcomes
    assert (written.written, written.not_recorded, written.failed) == (1, 1, False)
    assert empty.written == empty.not_recorded == 0
    assert (no_ids.removed, no_ids.relinked, unknown.removed) == (0, 0, 0)
    (row,) = [r for r in recorded_rows(recorder_mock, LOCAL) if r["state"] == "7"]
    assert json.loads(row["shared_attrs"]) == {"only": "here"}  # unrecorded left out
    assert row["changed"] == pytest.approx(moment - 1)
    assert recorded_rows(recorder_mock, "sensor.never_recorded") == []
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
