"""The remote recorder's long-term statistics over the WebSocket API: requests and typed replies.

Pure and HA-free, like the rest of the engine: it builds the payloads of
`recorder/get_statistics_metadata` and `recorder/statistics_during_period`, plans them in bounded
requests (statistic ids x time per request), and turns the replies into frozen rows. A reply that
is not what Home Assistant sends is never trusted: a row that cannot be read is dropped and
counted, a reply that is not an object counts as one bad reply.

Home Assistant's reply shape (`recorder/websocket_api.py`, `_ws_get_statistics_during_period`):
`{statistic_id: [{"start": ms, "end": ms, "mean", "min", "max", "state", "sum", "last_reset": ms |
None, "change"}, ...]}`, times in milliseconds since the epoch (integers on current releases,
floats on older ones), only the columns the statistic has (a measurement has no `sum`, a
counter no `mean`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
import math
from typing import Any

STATISTICS_DURING_PERIOD = "recorder/statistics_during_period"
STATISTICS_METADATA = "recorder/get_statistics_metadata"
FIVE_MINUTES = 300
HOUR = 3600
PERIOD_NAMES: Mapping[int, str] = {FIVE_MINUTES: "5minute", HOUR: "hour"}
# What a fill asks for: every column a row of either kind can have ("change" is derived).
ROW_TYPES: tuple[str, ...] = ("last_reset", "max", "mean", "min", "state", "sum")
# Bounds of one request: ids per request, rows per id per request (~130 bytes a row: 20 ids x
# 288 rows is ~0.75 MB, far below the live link's message limit).
MAX_IDS = 20
MAX_ROWS = 288


@dataclass(frozen=True, kw_only=True)
class StatisticsMeta:
    """What the remote's recorder knows of one statistic (`recorder/get_statistics_metadata`)."""

    statistic_id: str
    unit: str | None  # the statistics unit (what its rows are stored in)
    unit_class: str | None
    has_sum: bool
    mean_type: int  # 0 none, 1 arithmetic, 2 circular (Home Assistant's StatisticMeanType)


@dataclass(frozen=True, kw_only=True)
class StatisticsRow:
    """One period's row; times in seconds since the epoch (UTC)."""

    start: float
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    state: float | None = None
    sum: float | None = None
    last_reset: float | None = None

    @property
    def start_dt(self) -> datetime:
        """The start as an aware UTC datetime."""
        return datetime.fromtimestamp(self.start, UTC)


@dataclass(frozen=True, kw_only=True)
class StatisticsRequest:
    """One bounded `recorder/statistics_during_period` request."""

    statistic_ids: tuple[str, ...]
    start: float  # seconds, aligned to the period
    end: float  # exclusive
    period: int

    def payload(self, units: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The command (`units`: unit class -> unit, so rows come in exactly those units)."""
        payload: dict[str, Any] = {
            "type": STATISTICS_DURING_PERIOD,
            "start_time": _iso(self.start),
            "end_time": _iso(self.end),
            "statistic_ids": list(self.statistic_ids),
            "period": PERIOD_NAMES[self.period],
            "types": list(ROW_TYPES),
        }
        if units:
            payload["units"] = dict(units)
        return payload


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def floor_to(seconds: float, period: int) -> float:
    """The start of the period that holds `seconds`."""
    return float(math.floor(seconds / period) * period)


def plan_requests(
    statistic_ids: Sequence[str],
    start: float,
    end: float,
    period: int,
    *,
    max_ids: int = MAX_IDS,
    max_rows: int = MAX_ROWS,
) -> Iterator[StatisticsRequest]:
    """Bounded requests for every period in [floor(start), end): ids in chunks, time in windows."""
    first = floor_to(start, period)
    span = float(period * max_rows)
    for index in range(0, len(statistic_ids), max_ids):
        chunk = tuple(statistic_ids[index : index + max_ids])
        begin = first
        while begin < end:
            stop = min(begin + span, end)
            yield StatisticsRequest(statistic_ids=chunk, start=begin, end=stop, period=period)
            begin = stop


def metadata_payload(statistic_ids: Sequence[str]) -> dict[str, Any]:
    """The `recorder/get_statistics_metadata` command for these ids."""
    return {"type": STATISTICS_METADATA, "statistic_ids": list(statistic_ids)}


def parse_metadata(reply: Any) -> tuple[dict[str, StatisticsMeta], int]:
    """The remote's metadata by statistic id, and how many items could not be read."""
    if type(reply) is not list:
        return {}, 1
    found: dict[str, StatisticsMeta] = {}
    bad = 0
    for item in reply:
        meta = _meta(item)
        if meta is None:
            bad += 1
        else:
            found[meta.statistic_id] = meta
    return found, bad


def _meta(item: Any) -> StatisticsMeta | None:
    if type(item) is not dict:
        return None
    statistic_id = item.get("statistic_id")
    unit = item.get("statistics_unit_of_measurement")
    unit_class = item.get("unit_class")
    has_sum = item.get("has_sum")
    mean_type = item.get("mean_type")
    if mean_type is None and type(item.get("has_mean")) is bool:
        mean_type = int(item["has_mean"])  # a remote from before mean_type (2025.x)
    if (
        type(statistic_id) is not str
        or (unit is not None and type(unit) is not str)
        or (unit_class is not None and type(unit_class) is not str)
        or type(has_sum) is not bool
        or type(mean_type) is not int
        or mean_type not in (0, 1, 2)
    ):
        return None
    return StatisticsMeta(
        statistic_id=statistic_id,
        unit=unit,
        unit_class=unit_class,
        has_sum=has_sum,
        mean_type=mean_type,
    )


def parse_rows(
    reply: Any, request: StatisticsRequest
) -> tuple[dict[str, list[StatisticsRow]], int]:
    """The rows of a reply per statistic id (in time order), and how many were unreadable.

    Only ids that were asked for, only rows aligned to the period inside the request's window;
    a reply that is not an object is one bad item.
    """
    if type(reply) is not dict:
        return {}, 1
    asked = set(request.statistic_ids)
    rows: dict[str, list[StatisticsRow]] = {}
    bad = 0
    for statistic_id, items in reply.items():
        if statistic_id not in asked or type(items) is not list:
            bad += 1
            continue
        kept: dict[float, StatisticsRow] = {}
        for item in items:
            row = _row(item, request)
            if row is None:
                bad += 1
            else:
                kept[row.start] = row
        rows[statistic_id] = [kept[start] for start in sorted(kept)]
    return rows, bad


def _number(value: Any) -> float | None:
    """A finite float, or None; raises ValueError for anything else."""
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(value)
    return float(value)


def _row(item: Any, request: StatisticsRequest) -> StatisticsRow | None:
    if type(item) is not dict:
        return None
    try:
        start_ms = _number(item.get("start"))
        last_reset_ms = _number(item.get("last_reset"))
        values = {key: _number(item.get(key)) for key in ("mean", "min", "max", "state", "sum")}
    except ValueError:
        return None
    if start_ms is None:
        return None
    start = start_ms / 1000
    if start % request.period or not request.start <= start < request.end:
        return None
    return StatisticsRow(
        start=start,
        last_reset=None if last_reset_ms is None else last_reset_ms / 1000,
        **values,
    )
