"""Gap statistics: the long-term statistics of mirrored sensors for a closed gap, from the remote's.

(Over 400 lines with this docstring: the decisions it explains are those of the one fill below.)

The remote's statistics on the wire (requests, typed rows) are `client/remote_statistics.py`'s.

While the link is down a mirror is `unavailable`, so the local recorder compiles nothing for it
(or a partial row for the periods the link dropped in): the local long-term statistics have a
hole exactly where the remote's are complete. When capture closes a gap (the link is back and the
span is known; with backfill off that is the link's return), this fills the hole from the
remote's recorder. The decisions, and why:

- **Which entities:** mirrored `sensor`s whose remote state has a `state_class` (only those have
  statistics on either side), enabled in the local registry. Statistic id: the mirror's *local*
  entity id (the user's rename included), source `recorder`, exactly what the local sensor
  statistics compile for it, so imported and compiled rows are one series.
- **Which tables:** both. Hourly rows go through the recorder's public
  `async_import_statistics` (it validates ids, top-of-hour starts, `mean_type`/`unit_class`).
  Home Assistant has no public import for the 5-minute table; its recorder's own
  `Recorder.async_import_statistics(metadata, rows, table)` (the job the public call queues, the
  same signature on every supported release) takes `StatisticsShortTerm`, so 5-minute rows are
  queued that way after the metadata has passed the public validation (an empty hourly import).
  Without 5-minute rows the hour the link came back in would be compiled here from a partial
  5-minute series.
- **Which rows (never overwriting real local data):** only periods that overlap the gap and had
  ended when it closed. A period wholly outside the gap is never written: its local row was
  compiled from real local states. A period that overlaps the gap (the one the link dropped in,
  a partial hour) is replaced with the remote's: the remote saw the whole period, this instance
  only part of it. The period the link came back in had not ended when the gap closed: it is
  compiled here (its hour, too, from the 5-minute rows filled meanwhile). The remote compiles a
  period about 10 s after it ends; a fill that starts within `COMPILE_SETTLE` of a 5-minute
  boundary waits until then, so the last ended period is there to be read.
- **Sums** (`total`, `total_increasing`): the local and remote series have different baselines.
  The remote's sums are offset by (local sum - remote sum) at the last local row before the gap
  (looked for within `LOOKBACK`), so the rows before, in and after the gap stay continuous (the
  local compile goes on from the newest row). A mirror with no local row at all starts at 0 like
  a new local sensor; one whose last local row is older than the lookback, or whose remote
  series has no row at that start, is skipped (`no_sum_baseline`), never guessed.
- **Units:** the remote's statistics unit must equal the local statistics unit (the local
  metadata's, or the mirror's unit when there is none yet) and the kind (`has_sum`, `mean_type`)
  must agree: otherwise the entity is skipped (`unit_mismatch`, `kind_mismatch`). Rows are asked
  for in that unit (`units`), whatever the remote displays.
- **Bounded:** `MAX_IDS` statistic ids and `MAX_ROWS` periods per request (why those:
  `client/remote_statistics.py`), one reply in memory at a time, the span capped at the backfill's maximum window; over the live link, one
  request after the other. A row or reply that cannot be read is counted and dropped; a refused
  request is counted (`request_refused`) and ends its group of entities; a link lost meanwhile
  ends the fill (`failed`; the next gap fills its own span). The link is never affected.

Counters (diagnostics `statistics`): rows filled per table, skips per reason, bad rows/replies,
requests, runs, the last span.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import async_import_statistics
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance

from ..client import (  # noqa: TID252 - the package's engine
    FIVE_MINUTES,
    HOUR,
    MAX_IDS,
    MAX_ROWS,
    HaClientError,
    HaCommandError,
    LinkEngine,
    StatisticsMeta,
    StatisticsRequest,
    StatisticsRow,
    floor_to,
    metadata_payload,
    parse_metadata,
    parse_rows,
    plan_requests,
)
from ..const import LOGGER  # noqa: TID252 - the package's one logger
from ..entry_tasks import end_tasks, entry_tasks  # noqa: TID252 - shared with capture
from .local_recorder import (
    TOO_OLD,
    Baseline,
    import_rows,
    local_baseline,
    local_metadata,
    statistic_data,
)

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252
    from .mirror import EntityMirror


RECORDER = "recorder"
STATE_CLASSES = frozenset({"measurement", "measurement_angle", "total", "total_increasing"})
# The remote compiles a 5-minute period ~10 s after it ends (hourly ones with it).
COMPILE_SETTLE = 30.0
# How long a fill waits for the mirror to know the remote's current states (after a reconnect).
STATES_WAIT = 30.0
# How far back the last local row before the gap is looked for (sums only).
LOOKBACK: Mapping[int, float] = {FIVE_MINUTES: 2 * HOUR, HOUR: 48 * HOUR}
PERIODS: tuple[int, ...] = (HOUR, FIVE_MINUTES)  # hourly first: the validating import
US = 1_000_000


@dataclass(kw_only=True)
class _Target:
    """One mirrored sensor to fill."""

    remote_id: str
    local_id: str
    metadata: StatisticMetaData
    unit_class: str | None
    unit: str | None
    baselines: dict[int, Baseline] = field(default_factory=dict)  # per period (sums)
    offsets: dict[int, float] = field(default_factory=dict)  # per period: added to remote sums
    # Per period, from the remote's rows before the gap (replies come in time order): its sum
    # at the local baseline's start, and its last sum before the gap.
    matched: dict[int, float] = field(default_factory=dict)
    last_before: dict[int, float] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)  # periods this target is skipped in


class GapStatisticsFiller:
    """Fills the local long-term statistics of mirrored sensors for every closed gap."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        mirror: EntityMirror,
        engine: LinkEngine,
        max_window: float,
    ) -> None:
        """`max_window`: the longest span filled (seconds; the backfill's maximum window).

        Nothing is filled until `async_start()`; `engine`'s link carries the requests.
        """
        self.hass = hass
        self.entry = entry
        self.mirror = mirror
        self.engine = engine
        self.max_window = max_window
        self.started = False
        self.max_ids = MAX_IDS  # statistic ids per request
        self.max_rows = MAX_ROWS  # periods per request
        self.runs = 0
        self.requests = 0
        self.rows: dict[str, int] = {"5minute": 0, "hour": 0}
        self.skipped: dict[str, int] = {}
        self.bad_rows = 0
        self.failed = 0
        self.last_span: tuple[str, str] | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._tasks = entry_tasks(hass, entry)
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    @callback
    def async_start(self) -> None:
        """Fill for every gap closed from now on."""
        self.started = True

    async def async_stop(self) -> None:
        """Cancel a fill in progress (idempotent); rows already queued are the recorder's."""
        await end_tasks(self._tasks, "statistics fill")

    @callback
    def async_gap_closed(self, start_us: int, end_us: int) -> None:
        """Capture closed a gap (the remote's clock): fill its span in the background."""
        if not self.mirror.enabled or not self.started:
            return
        self._tasks.start(self._run(start_us / US, end_us / US), "statistics")

    async def _run(self, start: float, end: float) -> None:
        async with self._lock:
            try:
                await self._fill(start, end)
            except HaClientError as err:
                self.failed += 1
                self.last_error = str(err)
                LOGGER.debug("Statistics of %s not filled: %s", self.entry.title, err)

    def _skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    # ------------------------------------------------------------------ one fill

    async def _fill(self, start: float, end: float) -> None:
        self.runs += 1
        start = max(start, end - self.max_window)
        self.last_span = (_iso(start), _iso(end))
        if RECORDER not in self.hass.config.components:
            self._skip("no_local_recorder")
            return
        # Which mirrors have a state class: known from the subscription's first message.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STATES_WAIT):
                await self.mirror.states_known.wait()
        candidates = self._candidates()
        if not candidates:
            return
        settle = floor_to(end, FIVE_MINUTES) + COMPILE_SETTLE - end
        if settle > 0:
            await self._sleep(settle)
        targets = await self._targets(candidates)
        for period in PERIODS:
            first = floor_to(start, period)
            last = floor_to(end, period)  # exclusive: the period holding `end` had not ended
            if last > first and targets:
                await self._fill_period(targets, first, last, period)

    def _candidates(self) -> dict[str, tuple[str, str | None]]:
        """Remote id -> (local entity id, the mirror's unit) of every sensor with statistics.

        From the remote's current states (the platforms may not be set up yet after a start)
        and the local registry (a mirror not registered yet has nothing here to fill).
        """
        registry = er.async_get(self.hass)
        found: dict[str, tuple[str, str | None]] = {}
        for remote_id, remote in self.mirror.remote_states.items():
            if remote_id.partition(".")[0] != "sensor":
                continue
            if remote.attributes.get("state_class") not in STATE_CLASSES:
                continue
            local_id = self.mirror.local_entity_id(remote_id)
            reg = None if local_id is None else registry.async_get(local_id)
            if reg is None or reg.disabled:
                continue
            unit = remote.attributes.get("unit_of_measurement")
            found[remote_id] = (reg.entity_id, unit if type(unit) is str else None)
        return found

    async def _command(self, payload: dict[str, Any]) -> Any:
        self.requests += 1
        return await self.engine.command(payload)

    async def _targets(self, candidates: dict[str, tuple[str, str | None]]) -> list[_Target]:
        """What can be filled: the remote has statistics of the same kind in the same unit."""
        remote_ids = sorted(candidates)
        remote: dict[str, StatisticsMeta] = {}
        for index in range(0, len(remote_ids), self.max_ids):
            found, bad = parse_metadata(
                await self._command(metadata_payload(remote_ids[index : index + self.max_ids]))
            )
            self.bad_rows += bad
            remote.update(found)
        local_ids = {local_id for local_id, _ in candidates.values()}
        local = await get_instance(self.hass).async_add_executor_job(
            local_metadata, self.hass, local_ids
        )
        targets: list[_Target] = []
        for remote_id in remote_ids:
            local_id, mirror_unit = candidates[remote_id]
            meta = remote.get(remote_id)
            if meta is None:
                self._skip("no_remote_statistics")
                continue
            known = local.get(local_id)
            unit = known["unit_of_measurement"] if known is not None else mirror_unit
            if meta.unit != unit:
                self._skip("unit_mismatch")
                LOGGER.info(
                    "Statistics of %s not filled: the remote's are in %s, here in %s",
                    local_id,
                    meta.unit,
                    unit,
                )
                continue
            if known is not None and (
                known["has_sum"] != meta.has_sum or int(known["mean_type"]) != meta.mean_type
            ):
                self._skip("kind_mismatch")
                continue
            metadata: StatisticMetaData = {
                "statistic_id": local_id,
                "source": RECORDER,
                "name": None if known is None else known["name"],
                "unit_of_measurement": unit,
                "unit_class": meta.unit_class if known is None else known["unit_class"],
                "has_sum": meta.has_sum,
                "mean_type": StatisticMeanType(meta.mean_type),
            }
            try:  # the recorder's own validation (unit class, id, source); queues the metadata
                async_import_statistics(self.hass, dict(metadata), [])  # type: ignore[arg-type]
            except HomeAssistantError as err:
                self._skip("import_refused")
                LOGGER.info("Statistics of %s not filled: %s", local_id, err)
                continue
            targets.append(
                _Target(
                    remote_id=remote_id,
                    local_id=local_id,
                    metadata=metadata,
                    unit_class=metadata["unit_class"],
                    unit=unit,
                )
            )
        return targets

    async def _fill_period(
        self, targets: list[_Target], first: float, last: float, period: int
    ) -> None:
        # One unit per request (`units` is per unit class), sums apart (they read a lookback).
        groups: dict[tuple[bool, str | None, str | None], list[_Target]] = {}
        for target in targets:
            key = (target.metadata["has_sum"], target.unit_class, target.unit)
            groups.setdefault(key, []).append(target)
        for (has_sum, unit_class, unit), group in groups.items():
            by_id = {target.remote_id: target for target in group}
            if has_sum:
                for target in group:
                    await self._find_baseline(target, first, period)
            begin = first - LOOKBACK[period] if has_sum else first
            units = {unit_class: unit} if unit_class is not None and unit is not None else None
            for request in plan_requests(
                sorted(by_id), begin, last, period, max_ids=self.max_ids, max_rows=self.max_rows
            ):
                try:
                    reply = await self._command(request.payload(units))
                except HaCommandError as err:
                    # Refused (e.g. a unit class the remote's schema does not list): this group
                    # only; the other groups and periods go on. A lost link raises further.
                    self._skip("request_refused")
                    self.last_error = str(err)
                    break
                rows, bad = parse_rows(reply, request)
                self.bad_rows += bad
                for remote_id, series in rows.items():
                    self._import(by_id[remote_id], series, first, request)

    async def _find_baseline(self, target: _Target, first: float, period: int) -> None:
        """The last local sum before the gap (offset against the remote's at the same start)."""
        target.baselines[period] = await get_instance(self.hass).async_add_executor_job(
            local_baseline, self.hass, target.local_id, first, period, LOOKBACK[period]
        )

    def _import(
        self, target: _Target, series: list[StatisticsRow], first: float, request: StatisticsRequest
    ) -> None:
        period = request.period
        offset = 0.0
        if target.metadata["has_sum"]:
            baseline = target.baselines.get(period, TOO_OLD)
            for row in series:
                if row.start < first and row.sum is not None:
                    target.last_before[period] = row.sum
                    if row.start == baseline.start:
                        target.matched[period] = row.sum
            series = [row for row in series if row.start >= first]
            if not series:
                return
            known = self._sum_offset(target, period)
            if known is None:
                return
            offset = known
        rows: list[StatisticData] = []
        for row in series:
            data = statistic_data(row, target.metadata, offset)
            if data is None:
                self.bad_rows += 1
            else:
                rows.append(data)
        if not rows:
            return
        import_rows(self.hass, target.metadata, rows, period)
        self.rows["hour" if period == HOUR else "5minute"] += len(rows)

    def _sum_offset(self, target: _Target, period: int) -> float | None:
        """Local sum - remote sum at the last local row before the gap; None: skip the target.

        Decided at the first row inside the gap, kept for the later replies.
        """
        if period in target.dropped:
            return None
        if (known := target.offsets.get(period)) is not None:
            return known
        baseline = target.baselines.get(period, TOO_OLD)
        if baseline.start is None:
            # No local row at all: the series starts at 0 here, like a local sensor's first.
            offset = -target.last_before.get(period, 0.0)
        elif baseline is TOO_OLD or period not in target.matched:
            self._skip("no_sum_baseline")
            target.dropped.add(period)
            return None
        else:
            offset = baseline.sum - target.matched[period]
        target.offsets[period] = offset
        return offset

    # ------------------------------------------------------------------ diagnostics

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show."""
        return {
            "runs": self.runs,
            "requests": self.requests,
            "rows_filled": dict(self.rows),
            "skipped": dict(self.skipped),
            "bad_rows": self.bad_rows,
            "failed": self.failed,
            "last_error": self.last_error,
            "last_span": None if self.last_span is None else list(self.last_span),
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
