"""Long-term statistics of a mirrored power sensor after an outage, against a real remote `hass`.

The remote runs Home Assistant's DEFAULT recorder settings. The local side is the test `hass` with
its real recorder (statistics compiling off, as in every test `hass`: every local row is one this
integration imported). The outage, honestly:

- the remote's statistics for the 30 minutes before the last full hour (and the hours before)
  are made with the remote's own `recorder/import_statistics` (source `recorder`: as if it had
  compiled them). That command writes hourly rows only: Home Assistant has no way to import
  5-minute rows, so
- the remote's 5-minute rows come from its own states: while the local side is cut (its entry
  unloaded) the power sensor changes on the remote, and the test waits until the remote has
  compiled the 5-minute period they are in (it compiles every 5 minutes, 10 s after a period:
  this test waits for that, at most 400 s; a bounded wait, never a speed assertion);
- the local side believes it was cut since 30 minutes before the last full hour: its stored
  checkpoint says so, as it would after a 30-minute outage that began then.

Then the link comes back; capture recovers the gap and closes it, and the local long-term
statistics of the mirror must have rows for the gap, equal to the remote's: every 5-minute and
hourly row of the remote that overlaps the gap and had ended, and no row before the gap.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import time
from typing import Any

from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestion.capture.checkpoint import storage_key
from custom_components.ha_ingestion.const import CONF_MIRROR_ENTITIES
from tests.e2e.helpers import record
from tests.harness import RemoteHass

from .conftest import LinkFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

POWER = "sensor.e2e_stats_power"
POWER_ATTRIBUTES: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
    "friendly_name": "E2E stats power",
}
HOUR = 3600
COMPILED_WITHIN = 400.0  # it compiles every 5 minutes, 10 s after the period; room for a busy host
KEYS = ("mean", "min", "max")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The local recorder first: it must be set up before `hass`."""


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _remote_rows(
    remote: RemoteHass, period: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    reply = await remote.command(
        {
            "type": "recorder/statistics_during_period",
            "start_time": _iso(start),
            "end_time": _iso(end),
            "statistic_ids": [POWER],
            "period": period,
            "types": list(KEYS),
        }
    )
    return [
        {"start": row["start"] / 1000, **{k: row.get(k) for k in KEYS}}
        for row in reply.get(POWER, [])
    ]


async def _local_rows(
    hass: HomeAssistant, statistic_id: str, period: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    result = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        start,
        end,
        {statistic_id},
        period,
        None,
        set(KEYS),
    )
    return [
        {"start": row["start"], **{k: row.get(k) for k in KEYS}}
        for row in result.get(statistic_id, [])
    ]


async def test_statistics_of_a_mirrored_power_sensor_cover_the_outage(
    hass: HomeAssistant,
    remote: RemoteHass,
    link_factory: LinkFactory,
    hass_storage: dict[str, Any],
) -> None:
    now = datetime.now(UTC)
    last_hour = now.replace(minute=0, second=0, microsecond=0)
    cut = last_hour - timedelta(minutes=30)
    await remote.set_state(POWER, "1000", POWER_ATTRIBUTES)
    try:
        # The remote's past: hourly rows for the three hours before the last full one.
        await remote.command(
            {
                "type": "recorder/import_statistics",
                "metadata": {
                    "statistic_id": POWER,
                    "source": "recorder",
                    "name": None,
                    "unit_of_measurement": "W",
                    "unit_class": "power",
                    "has_sum": False,
                    "mean_type": 1,
                },
                "stats": [
                    {
                        "start": _iso(last_hour - timedelta(hours=h)),
                        "mean": 1500.0 + 10 * h + 0.25,
                        "min": 400.0 + h,
                        "max": 2600.5 - h,
                    }
                    for h in (3, 2, 1)
                ],
            }
        )
        link = await link_factory(**{CONF_MIRROR_ENTITIES: True})
        local_id = f"sensor.{link.slug}_e2e_stats_power"
        await link.wait_until(lambda: link.state_of(local_id) == "1000", 20, "mirrored")
        await link.wait_until(lambda: not link.entry.runtime_data.capture.recovering, 30, "settled")

        # The cut: the local side is down; the remote's power changes meanwhile.
        assert await hass.config_entries.async_unload(link.entry.entry_id)
        await hass.async_block_till_done()
        stored = hass_storage[storage_key(link.entry.entry_id)]["data"]
        stored.update(
            remote_us=int(cut.timestamp() * 1_000_000), saved_at=cut.timestamp(), clean=True
        )
        changed_at = time.time()
        for value in ("1800", "2200.5", "700"):
            await remote.set_state(POWER, value, POWER_ATTRIBUTES)
            await asyncio.sleep(1)
        period_of_changes = datetime.fromtimestamp(changed_at // 300 * 300, UTC)
        began = time.monotonic()
        while not [
            row
            for row in await _remote_rows(
                remote, "5minute", period_of_changes, datetime.now(UTC) + timedelta(hours=1)
            )
            if row["start"] == period_of_changes.timestamp()
        ]:
            assert time.monotonic() - began < COMPILED_WITHIN, (
                f"the remote compiled no 5-minute row\n{remote.log_tail(30)}"
            )
            await asyncio.sleep(5)
        compiled_after_s = time.monotonic() - began

        # The link is back: capture recovers the gap; its close fills the statistics.
        assert await hass.config_entries.async_setup(link.entry.entry_id)
        await hass.async_block_till_done()
        await link.wait_connected()
        filler = link.entry.runtime_data.mirror.gap_statistics
        await link.wait_until(
            lambda: filler.runs >= 1 and not filler._tasks, 90, "statistics filled"
        )
        await async_wait_recording_done(hass)
        gap = link.entry.runtime_data.capture.state.gaps[-1]
        assert filler.last_span is not None
        start, end = (datetime.fromisoformat(moment) for moment in filler.last_span)
        assert start <= cut
        assert filler.failed == 0, filler.as_dict()
        assert "unit_mismatch" not in filler.skipped, filler.as_dict()

        figures: dict[str, Any] = {}
        for period, seconds in (("5minute", 300), ("hour", HOUR)):
            first = datetime.fromtimestamp(start.timestamp() // seconds * seconds, UTC)
            last = datetime.fromtimestamp(end.timestamp() // seconds * seconds, UTC)
            remote_rows = await _remote_rows(remote, period, first, last)
            local_rows = await _local_rows(hass, local_id, period, first, last)
            assert remote_rows, (period, first, last)
            assert local_rows == remote_rows, period
            # Nothing outside the gap: the hours before it stay as they were here (none).
            before = await _local_rows(hass, local_id, period, first - timedelta(hours=4), first)
            assert before == [], period
            figures[f"rows_{period}"] = len(local_rows)
        hourly = await _local_rows(
            hass, local_id, "hour", last_hour - timedelta(hours=1), last_hour
        )
        assert [row["mean"] for row in hourly] == [1510.25]  # the imported hour of the cut
        record(
            "statistics",
            **figures,
            gap_s=round(gap.duration),
            remote_5minute_compiled_after_s=round(compiled_after_s, 1),
            requests=filler.requests,
        )
    finally:
        await remote.remove_state(POWER)
        await remote.command({"type": "recorder/clear_statistics", "statistic_ids": [POWER]})
