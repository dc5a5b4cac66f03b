"""Long-term statistics of mirrored sensors for a gap: filled from the fake remote's, into the REAL
local recorder of the test `hass` (5-minute and hourly tables), read back with its own API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import time
from typing import Any

from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.db_schema import StatisticsShortTerm
from homeassistant.components.recorder.models import StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestion.capture.checkpoint import storage_key
from custom_components.ha_ingestion.client import HOUR, LinkState
from custom_components.ha_ingestion.const import (
    CONF_BACKFILL,
    CONF_MIRROR_ENTITIES,
)
from custom_components.ha_ingestion.mirror import gap_statistics as gap_statistics_module
from custom_components.ha_ingestion.mirror.gap_statistics import GapStatisticsFiller
from tests.conftest import link_state, linked_entry, wait_for
from tests.fake_ha import FakeHA


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder first: it must be set up before `hass` (the shared autouse asks for hass)."""


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake remote's rows are all there: no wait for its next compile."""
    monkeypatch.setattr(gap_statistics_module, "COMPILE_SETTLE", 0.0)


POWER: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
}
ENERGY: dict[str, Any] = {
    "unit_of_measurement": "kWh",
    "device_class": "energy",
    "state_class": "total_increasing",
}
REMOTE_POWER = "sensor.heat_pump_power"
REMOTE_ENERGY = "sensor.heat_pump_energy"
LOCAL_POWER = "sensor.remote_home_heat_pump_power"
LOCAL_ENERGY = "sensor.remote_home_heat_pump_energy"
FIVE = 300
# Three hours ago, at the top of an hour: every row of the tests has ended long ago.
BASE = datetime.fromtimestamp((int(time.time()) // HOUR - 3) * HOUR, UTC)
GAP_START = BASE + timedelta(minutes=10)
GAP_END = BASE + timedelta(hours=2, minutes=2)


def _at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def _power_rows() -> dict[int, list[dict[str, Any]]]:
    """The remote's power statistics: 5-minute rows for two hours, hourly rows for three."""
    return {
        FIVE: [
            {"start": _at(5 * k), "mean": 1000.0 + k, "min": 900.0 + k, "max": 1100.0 + k}
            if k != 3
            else {"start": _at(5 * k), "mean": 1000.0 + k, "min": None, "max": None}
            for k in range(24)
        ],
        HOUR: [
            {"start": _at(60 * h), "mean": 2000.0 + h, "min": 1500.0, "max": 2500.0 + h}
            for h in range(3)
        ],
    }


def _energy_rows(base_sum: float = 5000.0) -> dict[int, list[dict[str, Any]]]:
    """The remote's energy statistics (its own sum baseline), 5-minute and hourly."""
    return {
        FIVE: [
            {"start": _at(5 * k), "state": 10.0 + k, "sum": base_sum + k, "last_reset": None}
            for k in range(24)
        ],
        HOUR: [
            {"start": _at(60 * h), "state": 10.0 + 12 * h, "sum": base_sum + 12 * h}
            for h in range(-1, 3)
        ],
    }


async def _link(
    hass: HomeAssistant, fake_ha: FakeHA, *, mirrored: bool = True, **options: Any
) -> MockConfigEntry:
    await fake_ha.fire_state_changed(REMOTE_POWER, "1200", POWER)
    await fake_ha.fire_state_changed(REMOTE_ENERGY, "42.5", ENERGY)
    entry = linked_entry(fake_ha, **{CONF_BACKFILL: False, CONF_MIRROR_ENTITIES: True, **options})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    if mirrored:
        await wait_for(lambda: getattr(hass.states.get(LOCAL_ENERGY), "state", None) == "42.5")
    return entry


def _filler(entry: MockConfigEntry) -> GapStatisticsFiller:
    filler: GapStatisticsFiller = entry.runtime_data.mirror.gap_statistics
    return filler


async def _fill(
    hass: HomeAssistant, entry: MockConfigEntry, start: datetime, end: datetime
) -> None:
    filler = _filler(entry)
    runs = filler.runs
    filler.async_gap_closed(int(start.timestamp() * 1e6), int(end.timestamp() * 1e6))
    await wait_for(lambda: filler.runs > runs and not filler._tasks)
    await async_wait_recording_done(hass)


async def _rows(hass: HomeAssistant, statistic_id: str, period: str) -> list[dict[str, Any]]:
    """The local recorder's rows from BASE - 2 h on, as (start datetime, values)."""
    result = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        BASE - timedelta(hours=2),
        None,
        {statistic_id},
        period,
        None,
        {"mean", "min", "max", "state", "sum"},
    )
    return [
        {
            "start": datetime.fromtimestamp(row["start"], UTC),
            **{k: row.get(k) for k in ("mean", "min", "max", "state", "sum") if k in row},
        }
        for row in result.get(statistic_id, [])
    ]


def _expected(
    rows: list[dict[str, Any]], keys: tuple[str, ...], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    return [
        {"start": row["start"], **{k: row[k] for k in keys}}
        for row in rows
        if since <= row["start"] < until
    ]


async def _unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_power_rows_of_the_gap_equal_the_remotes_and_nothing_outside(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    remote = _power_rows()
    fake_ha.add_statistics(REMOTE_POWER, remote, unit="W", unit_class="power")
    entry = await _link(hass, fake_ha)
    # Not filled: no state class, another domain, a mirror disabled here.
    await fake_ha.fire_state_changed("sensor.no_class", "5", {"unit_of_measurement": "W"})
    await fake_ha.fire_state_changed("binary_sensor.door", "on", {"state_class": "measurement"})
    await fake_ha.fire_state_changed("sensor.spare_power", "1", POWER)
    spare = "sensor.remote_home_spare_power"
    await wait_for(lambda: hass.states.get(spare) is not None)
    er.async_get(hass).async_update_entity(spare, disabled_by=er.RegistryEntryDisabler.USER)
    await hass.async_block_till_done()
    for other in ("sensor.no_class", "sensor.spare_power", "binary_sensor.door"):
        fake_ha.add_statistics(other, remote, unit="W", unit_class="power")
    await _fill(hass, entry, GAP_START, GAP_END)
    metadata_asked = [m for m in fake_ha.statistics_requests if m["type"].endswith("metadata")]
    assert [m["statistic_ids"] for m in metadata_asked] == [[REMOTE_ENERGY, REMOTE_POWER]]

    keys = ("mean", "min", "max")
    # 5-minute: from the period holding the gap's start to the last one ended (not BASE, BASE+5).
    assert await _rows(hass, LOCAL_POWER, "5minute") == _expected(
        remote[FIVE], keys, _at(10), _at(120)
    )
    # Hourly: the two hours that overlap the gap and had ended; the third had not.
    assert await _rows(hass, LOCAL_POWER, "hour") == _expected(remote[HOUR], keys, _at(0), _at(120))
    filler = _filler(entry)
    assert filler.rows == {"5minute": 22, "hour": 2}
    assert filler.skipped == {"no_remote_statistics": 1}  # the energy sensor has none there
    meta = await get_instance(hass).async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={LOCAL_POWER})
    )
    _, local_meta = meta[LOCAL_POWER]
    assert local_meta["source"] == "recorder"
    assert local_meta["mean_type"] is StatisticMeanType.ARITHMETIC
    assert (local_meta["unit_class"], local_meta["unit_of_measurement"]) == ("power", "W")
    # Bounded: asked in the statistics unit, never more than 288 periods or 20 ids a request.
    asked = [m for m in fake_ha.statistics_requests if m["type"].endswith("during_period")]
    assert {m["period"] for m in asked} == {"5minute", "hour"}
    assert all(m["units"] == {"power": "W"} for m in asked)
    assert all(len(m["statistic_ids"]) <= 20 for m in asked)
    assert entry.runtime_data.mirror.as_dict()["statistics"]["rows_filled"] == filler.rows
    await _unload(hass, entry)


@pytest.mark.parametrize(("max_ids", "max_rows"), [(20, 288), (1, 5)])
async def test_sums_are_offset_to_the_local_series(
    hass: HomeAssistant, fake_ha: FakeHA, max_ids: int, max_rows: int
) -> None:
    """Local sums before the gap (100 at 5 minutes, 50 an hour before): the remote's continue
    from there, with the remote's differences; the same in requests of 1 id and 5 periods."""
    remote = _energy_rows()
    fake_ha.add_statistics(
        REMOTE_ENERGY, remote, unit="kWh", unit_class="energy", has_sum=True, mean_type=0
    )
    entry = await _link(hass, fake_ha)
    metadata: StatisticMetaData = {
        "statistic_id": LOCAL_ENERGY,
        "source": "recorder",
        "name": None,
        "unit_of_measurement": "kWh",
        "unit_class": "energy",
        "has_sum": True,
        "mean_type": StatisticMeanType.NONE,
    }
    # What the local recorder had compiled before the link dropped.
    get_instance(hass).async_import_statistics(
        metadata,
        [
            {"start": _at(0), "state": 9.0, "sum": 99.0},
            {"start": _at(5), "state": 11.0, "sum": 100.0},
        ],
        StatisticsShortTerm,
    )
    async_import_statistics(hass, metadata, [{"start": _at(-60), "state": 9.0, "sum": 50.0}])
    await async_wait_recording_done(hass)
    _filler(entry).max_ids, _filler(entry).max_rows = max_ids, max_rows
    await _fill(hass, entry, GAP_START, GAP_END)

    five = await _rows(hass, LOCAL_ENERGY, "5minute")
    assert five[:2] == [
        {"start": _at(0), "state": 9.0, "sum": 99.0},
        {"start": _at(5), "state": 11.0, "sum": 100.0},
    ]  # before the gap: untouched
    assert five[2:] == [
        {"start": row["start"], "state": row["state"], "sum": row["sum"] - 5001.0 + 100.0}
        for row in remote[FIVE][2:]
    ]
    hour = await _rows(hass, LOCAL_ENERGY, "hour")
    assert hour == [
        {"start": _at(-60), "state": 9.0, "sum": 50.0},
        *(
            {"start": row["start"], "state": row["state"], "sum": row["sum"] - 4988.0 + 50.0}
            for row in remote[HOUR][1:3]
        ),
    ]
    assert _filler(entry).skipped == {"no_remote_statistics": 1}  # the power sensor
    await _unload(hass, entry)


async def test_a_new_series_starts_at_zero_like_a_local_sensor(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    remote = _energy_rows()
    fake_ha.add_statistics(
        REMOTE_ENERGY, remote, unit="kWh", unit_class="energy", has_sum=True, mean_type=0
    )
    entry = await _link(hass, fake_ha)
    await _fill(hass, entry, GAP_START, GAP_END)
    five = await _rows(hass, LOCAL_ENERGY, "5minute")
    assert [row["sum"] for row in five] == [float(k) for k in range(1, 23)]  # 5001.. - 5000
    hour = await _rows(hass, LOCAL_ENERGY, "hour")
    assert [row["sum"] for row in hour] == [12.0, 24.0]  # - the hour before (4988)
    await _unload(hass, entry)


async def test_no_common_row_or_an_old_local_row_is_skipped_never_guessed(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    remote = _energy_rows()
    del remote[FIVE][1]  # the remote has no row where the local one is
    fake_ha.add_statistics(
        REMOTE_ENERGY, remote, unit="kWh", unit_class="energy", has_sum=True, mean_type=0
    )
    entry = await _link(hass, fake_ha)
    metadata: StatisticMetaData = {
        "statistic_id": LOCAL_ENERGY,
        "source": "recorder",
        "name": None,
        "unit_of_measurement": "kWh",
        "unit_class": "energy",
        "has_sum": True,
        "mean_type": StatisticMeanType.NONE,
    }
    get_instance(hass).async_import_statistics(
        metadata, [{"start": _at(5), "state": 11.0, "sum": 100.0}], StatisticsShortTerm
    )
    # The last local hourly row is older than the 48-hour lookback.
    async_import_statistics(hass, metadata, [{"start": _at(-60 * 72), "state": 1.0, "sum": 1.0}])
    await async_wait_recording_done(hass)
    await _fill(hass, entry, GAP_START, GAP_END)
    assert [row["start"] for row in await _rows(hass, LOCAL_ENERGY, "5minute")] == [_at(5)]
    assert await _rows(hass, LOCAL_ENERGY, "hour") == []
    assert _filler(entry).skipped == {"no_remote_statistics": 1, "no_sum_baseline": 2}
    await _unload(hass, entry)


async def test_unit_or_kind_mismatch_and_a_refused_unit_class_are_skipped(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    fake_ha.add_statistics(REMOTE_POWER, _power_rows(), unit="kW", unit_class="power")
    fake_ha.add_statistics(
        REMOTE_ENERGY, _energy_rows(), unit="kWh", unit_class="bogus", has_sum=True, mean_type=0
    )
    entry = await _link(hass, fake_ha)
    await _fill(hass, entry, GAP_START, GAP_END)
    assert _filler(entry).skipped == {"unit_mismatch": 1, "import_refused": 1}
    assert await _rows(hass, LOCAL_POWER, "5minute") == []
    assert _filler(entry).rows == {"5minute": 0, "hour": 0}

    # The local series is a measurement already; the remote's has a sum: not the same kind.
    fake_ha.add_statistics(
        REMOTE_ENERGY, _energy_rows(), unit="kWh", unit_class="energy", has_sum=True, mean_type=0
    )
    async_import_statistics(
        hass,
        {
            "statistic_id": LOCAL_ENERGY,
            "source": "recorder",
            "name": None,
            "unit_of_measurement": "kWh",
            "unit_class": "energy",
            "has_sum": False,
            "mean_type": StatisticMeanType.ARITHMETIC,
        },
        [{"start": _at(-60), "mean": 1.0, "min": 1.0, "max": 1.0}],
    )
    await async_wait_recording_done(hass)
    await _fill(hass, entry, GAP_START, GAP_END)
    assert _filler(entry).skipped["kind_mismatch"] == 1
    await _unload(hass, entry)


async def test_bad_replies_are_counted_and_never_cost_the_link(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    fake_ha.add_statistics(REMOTE_POWER, _power_rows(), unit="W", unit_class="power")
    entry = await _link(hass, fake_ha)
    filler = _filler(entry)

    def garbage(msg: dict[str, Any]) -> Any:
        start = int(GAP_START.timestamp() * 1000)
        return {
            REMOTE_POWER: [
                "not a row",
                {"start": "soon", "mean": 1.0},
                {"start": start + 1, "mean": 1.0},  # not aligned to the period
                {"start": start, "mean": "1.0"},  # a text, not a number
                {"start": start},  # no mean for a measurement
                {"start": start - 3_600_000 * 24, "mean": 1.0},  # outside what was asked
            ],
            "sensor.never_asked": [],
        }

    fake_ha.statistics_reply = garbage
    await _fill(hass, entry, GAP_START, GAP_END)
    assert filler.bad_rows == 2 * 7  # per reply: 6 rows + 1 id not asked (5-minute, hourly)
    assert filler.rows == {"5minute": 0, "hour": 0}

    fake_ha.statistics_reply = lambda msg: ["not", "an", "object"]
    await _fill(hass, entry, GAP_START, GAP_END)
    assert filler.bad_rows == 2 * 7 + 2

    fake_ha.statistics_reply = None
    fake_ha.statistics_error = ("unknown_error", "database is locked")
    await _fill(hass, entry, GAP_START, GAP_END)
    assert filler.skipped["request_refused"] == 2  # hourly, then 5-minute: each its own
    assert filler.failed == 0
    assert "database is locked" in str(filler.last_error)

    # The link lost during a fill: that fill ends, counted.
    fake_ha.statistics_error = None

    def drop(msg: dict[str, Any]) -> None:
        fake_ha.statistics_reply = None  # once: the reconnect's own gap fills normally
        fake_ha.abort_all()

    fake_ha.statistics_reply = drop
    await _fill(hass, entry, GAP_START, GAP_END)
    assert filler.failed == 1
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    assert link_state(entry) is LinkState.CONNECTED
    assert await _rows(hass, LOCAL_POWER, "5minute") == []
    await _unload(hass, entry)


async def test_a_gap_closed_by_capture_is_filled(
    hass: HomeAssistant, fake_ha: FakeHA, hass_storage: dict[str, Any]
) -> None:
    """The local side believes it was cut since its checkpoint of 90 minutes ago: the gap capture
    opens at the start and closes at the link's return (backfill off here) is filled."""
    remote = _power_rows()
    fake_ha.add_statistics(REMOTE_POWER, remote, unit="W", unit_class="power")
    entry = await _link(hass, fake_ha)
    await _unload(hass, entry)
    stored = hass_storage[storage_key(entry.entry_id)]["data"]
    cut = _at(90).timestamp()
    stored.update(remote_us=int(cut * 1e6), offset_us=0, saved_at=cut, clean=True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    filler = _filler(entry)
    await wait_for(lambda: filler.runs == 1 and not filler._tasks)
    await async_wait_recording_done(hass)
    margin = 30.0 + 10.0 + 5.0  # heartbeat interval + timeout + GAP_MARGIN
    since = datetime.fromtimestamp((cut - margin) // FIVE * FIVE, UTC)
    assert await _rows(hass, LOCAL_POWER, "5minute") == _expected(
        remote[FIVE], ("mean", "min", "max"), since, _at(120)
    )
    assert await _rows(hass, LOCAL_POWER, "hour") == _expected(
        remote[HOUR], ("mean", "min", "max"), _at(60), _at(180)
    )
    gap = entry.runtime_data.capture.state.gaps[-1]
    assert filler.last_span is not None
    assert datetime.fromisoformat(filler.last_span[0]) <= gap.start + timedelta(seconds=1)
    await _unload(hass, entry)


async def test_nothing_to_do_without_a_local_recorder_or_mirrors(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    entry = await _link(hass, fake_ha)
    filler = _filler(entry)
    hass.config.components.remove("recorder")
    try:
        await _fill(hass, entry, GAP_START, GAP_END)
    finally:
        hass.config.components.add("recorder")
    assert filler.skipped == {"no_local_recorder": 1}
    assert fake_ha.statistics_requests == []
    await _unload(hass, entry)

    # Mirroring off: no filler hook at all.
    entry2 = await _link(hass, fake_ha, mirrored=False, **{CONF_MIRROR_ENTITIES: False})
    assert entry2.runtime_data.capture.recovery.on_gap_closed is None
    _filler(entry2).async_gap_closed(0, 1)
    assert not _filler(entry2)._tasks
    await _unload(hass, entry2)


async def test_stop_cancels_a_fill_in_progress(
    hass: HomeAssistant, fake_ha: FakeHA, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ha.add_statistics(REMOTE_POWER, _power_rows(), unit="W", unit_class="power")
    entry = await _link(hass, fake_ha)
    filler = _filler(entry)
    entered = asyncio.Event()

    async def forever(_seconds: float) -> None:
        entered.set()
        await asyncio.Event().wait()

    filler._sleep = forever
    monkeypatch.setattr(gap_statistics_module, "COMPILE_SETTLE", 1e9)  # always waits
    filler.async_gap_closed(int(GAP_START.timestamp() * 1e6), int(GAP_END.timestamp() * 1e6))
    await asyncio.wait_for(entered.wait(), 10)
    await _unload(hass, entry)
    assert not filler._tasks
    assert fake_ha.statistics_requests == []
