"""The local recorder's side of the gap statistics fill: what it holds, and how rows go in.

Read in the recorder's executor: the local metadata of the mirrors' statistics, and the last
local sum before a gap (for sums). Written: hourly rows through the public
`async_import_statistics`; 5-minute rows through the recorder's own import job (no public import
for that table; see `gap_statistics.py`). A remote row becomes a local one here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from homeassistant.components.recorder.db_schema import StatisticsShortTerm
from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    get_last_short_term_statistics,
    get_last_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance

from ..client import HOUR, StatisticsRow  # noqa: TID252 - the package's engine


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The last local row before the gap, for a sum: `start` None means no local row at all."""

    start: float | None = None
    sum: float = 0.0


# The last local row is older than the lookback (or only rows after the gap exist): skip.
TOO_OLD = Baseline(start=-1.0)


def statistic_data(
    row: StatisticsRow, metadata: StatisticMetaData, offset: float
) -> StatisticData | None:
    """A remote row as a local one (`offset` added to a sum); None: it lacks what the kind needs."""
    data: StatisticData = {"start": row.start_dt}
    if metadata["has_sum"]:
        if row.sum is None:
            return None
        data["sum"] = row.sum + offset
        if row.state is not None:
            data["state"] = row.state
        data["last_reset"] = (
            None if row.last_reset is None else datetime.fromtimestamp(row.last_reset, UTC)
        )
    if metadata["mean_type"] is not StatisticMeanType.NONE:
        if row.mean is None:
            return None
        data["mean"] = row.mean
        if row.min is not None:
            data["min"] = row.min
        if row.max is not None:
            data["max"] = row.max
    return data


def import_rows(
    hass: HomeAssistant, metadata: StatisticMetaData, rows: list[StatisticData], period: int
) -> None:
    """Queue `rows` for the hourly table (`period` HOUR) or the 5-minute one."""
    if period == HOUR:
        async_import_statistics(hass, metadata, rows)
    else:
        # No public import for the 5-minute table: the recorder's own import job, which the
        # public call queues for the hourly one (metadata validated by then: see
        # `GapStatisticsFiller._targets`).
        get_instance(hass).async_import_statistics(metadata, rows, StatisticsShortTerm)


# ---------------------------------------------------------------------- recorder executor


def local_metadata(hass: HomeAssistant, statistic_ids: set[str]) -> dict[str, StatisticMetaData]:
    """The local metadata of these statistic ids (those that have any)."""
    return {
        statistic_id: meta
        for statistic_id, (_, meta) in get_metadata(hass, statistic_ids=statistic_ids).items()
    }


def local_baseline(
    hass: HomeAssistant, statistic_id: str, first: float, period: int, lookback: float
) -> Baseline:
    """The last local row before `first` within `lookback` seconds."""
    name: Literal["5minute", "hour"] = "hour" if period == HOUR else "5minute"
    first_dt = datetime.fromtimestamp(first, UTC)
    rows = statistics_during_period(
        hass,
        first_dt - timedelta(seconds=lookback),
        first_dt,
        {statistic_id},
        name,
        None,
        {"sum"},
    ).get(statistic_id, [])
    with_sum = [row for row in rows if row.get("sum") is not None]
    if with_sum:
        return Baseline(start=float(with_sum[-1]["start"]), sum=float(with_sum[-1]["sum"]))  # type: ignore[arg-type]
    last = (get_last_statistics if period == HOUR else get_last_short_term_statistics)(
        hass, 1, statistic_id, False, {"sum"}
    ).get(statistic_id, [])
    return TOO_OLD if last else Baseline()
