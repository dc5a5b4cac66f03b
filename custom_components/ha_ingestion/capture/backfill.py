"""Backfill: read the remote's history for a gap in bounded requests, fire each change exactly once.

Plan. The gap [start, remote now) is read in time slices (at most `slice_us` long, ending
`HORIZON_US` before our estimate of the remote's now; the last slice has no end_time at all, so
the remote's own clock ends it and clock skew loses nothing) by entity chunks (at most `chunk`
entities). Each reply is fired in time order before the next request is made, so memory holds one
reply (bounded by the reply budget; its changes are built one at a time as they are fired, see
`ReplyChanges`), never a slice of every entity or the whole outage: each
entity's changes come out in time order (an entity is in one chunk; a split in time is read
first half first), the chunks of one slice one after the other, and slice after slice. Rows
already delivered (`seen`, which only grows) are dropped while the reply is read, before any
state is built for them: the second read of a gap costs almost no memory.

Adapting. A reply larger than the reply budget ends only the backfill's own session
(`history_session.py`); the request is then split: first its entities in halves (and later requests use the
smaller chunk), a single entity's slice in time halves, down to `MIN_SLICE_US`. A request that
still cannot be answered, or fails `MAX_TRIES` times, is recorded as an unrecoverable span and
the rest goes on.

Exactly once. A change is fired when its last_updated (whole microseconds) is newer than the
newest change of that entity already delivered (`seen`) and is not one that arrived live while
the gap was open (`live`, a set lookup). `seen` then advances. Slices overlap by 1 µs (history
bounds are exclusive on both ends); the rule removes the overlap. The start-time row the remote
adds for each request (its `lu` is the request start) is only used as the previous state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
import heapq
import time
from typing import Any

from ..client import (  # noqa: TID252 - the package's engine
    HaClientError,
    HaCommandError,
    HaConnectionError,
)
from ..const import LOGGER  # noqa: TID252 - the package's one logger
from ..slices import SLICE_ITEMS, SLICE_SECONDS, Slices  # noqa: TID252 - shared by the mirrors
from .events import STATE_CHANGED, ts_to_us, us_to_iso
from .history_session import ReplyTooLargeError

HISTORY = "history/history_during_period"
CHUNK = 100
SLICE_US = 3600 * 1_000_000  # one hour of history per request at most
MIN_SLICE_US = 1_000_000
HORIZON_US = 60 * 1_000_000  # interior slice ends stay this far before the estimated remote now
MAX_TRIES = 3
FIRE_BATCH = SLICE_ITEMS  # yield to the event loop after this many fired changes...
FIRE_BUDGET = SLICE_SECONDS  # ...or after this many seconds of firing (a slow host, listeners)


class NoHistoryError(Exception):
    """The remote has no history/recorder (unknown_command)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One state change read from the remote's history."""

    updated_us: int
    entity_id: str
    new_state: dict[str, Any]
    old_state: dict[str, Any] | None


type Command = Callable[[dict[str, Any]], Awaitable[Any]]
type Fire = Callable[[Change], None]


def _state(entity_id: str, row: dict[str, Any], updated_us: int) -> dict[str, Any]:
    changed = ts_to_us(row.get("lc"))
    return {
        "entity_id": entity_id,
        "state": row.get("s"),
        "attributes": row.get("a") if type(row.get("a")) is dict else {},
        "last_changed": us_to_iso(changed if changed is not None else updated_us),
        "last_updated": us_to_iso(updated_us),
    }


class ReplyChanges:
    """The changes of one request's reply (or of its split parts), built one at a time.

    Nothing is built when the reply arrives: iterating merges the entities' rows in time order
    (each entity's rows already are) and builds each change's states only when it is its turn,
    dropping every row once read. So a reply holds no more objects than the remote's own rows,
    and those go as they are fired: few objects live long enough for the garbage collector to
    move them into its oldest generation, whose collections (of the whole Home Assistant
    process, hundreds of ms) are the longest pauses a big backfill could otherwise cause.
    """

    def __init__(self) -> None:
        """Empty; `add()` a reply, `extend()` with another part."""
        self._streams: list[Iterator[Change]] = []
        self.skipped = 0  # rows that are no change at all (junk), known once iterated
        self.newest_us: int | None = None  # the newest change iterated

    def add(self, history: Any, start_us: int, seen: dict[str, int] | None) -> None:
        """One reply of history/history_during_period for a request starting at `start_us`.

        Rows at or before `seen[entity]` (already delivered, read now) are no changes; no state
        is built for them unless the next change needs it as its old state.
        """
        if type(history) is not dict:
            self.skipped += 1
            return
        for entity_id, rows in history.items():
            if type(entity_id) is not str or type(rows) is not list:
                self.skipped += 1
                continue
            newest = seen.get(entity_id, start_us) if seen else start_us
            self._streams.append(self._entity(entity_id, rows, max(start_us, newest)))

    def extend(self, other: ReplyChanges) -> None:
        """Add the changes of another part of the same request (a split)."""
        self._streams.extend(other._streams)
        self.skipped += other.skipped
        other._streams = []

    def __iter__(self) -> Iterator[Change]:
        """Every change, in time order (a tie: in the order the entities were added); once."""
        streams, self._streams = self._streams, []
        for change in heapq.merge(*streams, key=_updated):
            self.newest_us = change.updated_us
            yield change

    def _entity(self, entity_id: str, rows: list[Any], floor: int) -> Iterator[Change]:
        previous: dict[str, Any] | None = None
        previous_row: tuple[dict[str, Any], int] | None = None
        for index, row in enumerate(rows):
            rows[index] = None  # read: the reply holds it no longer
            updated = ts_to_us(row.get("lu")) if type(row) is dict else None
            if updated is None:
                self.skipped += 1
                continue
            if updated <= floor:
                previous, previous_row = None, (row, updated)
                continue
            if previous is None and previous_row is not None:
                previous = _state(entity_id, *previous_row)
                previous_row = None
            state = _state(entity_id, row, updated)
            yield Change(updated, entity_id, state, previous)
            previous = state


class HistoryReader:
    """Reads [start, remote now) for a list of entities in bounded, adaptive requests."""

    def __init__(
        self,
        command: Command,
        *,
        now_us: Callable[[], int],
        seen: dict[str, int] | None = None,
    ) -> None:
        """`command` runs one remote command; `now_us` estimates the remote's clock.

        `seen`: the newest change delivered per entity (read, never changed here): older rows are
        dropped while a reply is read.
        """
        self._command = command
        self._now_us = now_us
        self._seen = seen
        self.chunk = CHUNK
        self.slice_us = SLICE_US
        self.requests = 0
        self.rows_skipped = 0
        self.unrecoverable: list[tuple[int, int | None, str]] = []
        # Entities the remote's history had rows for (so it records them).
        self.recorded: set[str] = set()

    async def slices(self, entity_ids: list[str], start_us: int) -> AsyncIterator[ReplyChanges]:
        """Async iterator of the changes of each request (a chunk of one slice), in time order.

        Each is to be iterated before the next is asked for (its junk rows are counted then).
        """
        begin = start_us
        while True:
            horizon = self._now_us() - HORIZON_US
            end: int | None = begin + self.slice_us
            if begin + self.slice_us >= horizon:
                end = None
            index = 0
            while index < len(entity_ids):
                # The chunk size may shrink during the loop (an oversize reply): read it each time.
                chunk = entity_ids[index : index + self.chunk]
                index += len(chunk)
                changes = await self._request(chunk, begin, end)
                yield changes
                self.rows_skipped += changes.skipped
            if end is None:
                return
            begin = end - 1

    async def _request(self, entity_ids: list[str], begin: int, end: int | None) -> ReplyChanges:
        """One request, split on oversize, retried a bounded number of times."""
        tries = 0
        while True:
            try:
                reply = await self._ask(entity_ids, begin, end)
            except ReplyTooLargeError:
                return await self._split(entity_ids, begin, end)
            except HaCommandError as err:
                if err.code == "unknown_command":
                    raise NoHistoryError(str(err)) from err
                tries += 1
                if tries >= MAX_TRIES:
                    self._give_up(entity_ids, begin, end, str(err))
                    return ReplyChanges()
                continue
            except HaConnectionError:
                raise  # the remote went away: the caller keeps the gap for the next connection
            except HaClientError as err:  # timeouts, protocol trouble on the backfill session
                tries += 1
                if tries >= MAX_TRIES:
                    self._give_up(entity_ids, begin, end, str(err))
                    return ReplyChanges()
                continue
            if type(reply) is dict:
                self.recorded.update(key for key, rows in reply.items() if type(rows) is list)
            changes = ReplyChanges()
            changes.add(reply, begin, self._seen)
            return changes

    async def _split(self, entity_ids: list[str], begin: int, end: int | None) -> ReplyChanges:
        if len(entity_ids) > 1:
            half = len(entity_ids) // 2
            self.chunk = max(1, min(self.chunk, half))
            first = await self._request(entity_ids[:half], begin, end)
            first.extend(await self._request(entity_ids[half:], begin, end))
            return first
        span = (end if end is not None else self._now_us()) - begin
        if span <= MIN_SLICE_US:
            self._give_up(entity_ids, begin, end, "reply too large even for one entity")
            return ReplyChanges()
        middle = begin + span // 2
        self.slice_us = max(MIN_SLICE_US, min(self.slice_us, span // 2))
        first = await self._request(entity_ids, begin, middle)
        # The second half starts 1 µs early (bounds are exclusive); the start-time row it gets
        # is not a change (its lu is the start), so nothing is duplicated here.
        first.extend(await self._request(entity_ids, middle - 1, end))
        return first

    def _give_up(self, entity_ids: list[str], begin: int, end: int | None, why: str) -> None:
        LOGGER.warning(
            "History of %d entities from %s could not be read (%s); recorded as unrecoverable",
            len(entity_ids),
            us_to_iso(begin),
            why,
        )
        self.unrecoverable.append((begin, end, why))

    async def _ask(self, entity_ids: list[str], begin: int, end: int | None) -> Any:
        payload: dict[str, Any] = {
            "type": HISTORY,
            "start_time": us_to_iso(begin),
            "entity_ids": entity_ids,
            "include_start_time_state": True,
            "significant_changes_only": False,
            "minimal_response": False,
            "no_attributes": False,
        }
        if end is not None:
            payload["end_time"] = us_to_iso(end)
        self.requests += 1
        return await self._command(payload)


def _updated(change: Change) -> int:
    return change.updated_us


class Deduplicator:
    """The exactly-once rule (see the module docstring): O(1) per row."""

    def __init__(self, seen: dict[str, int], live: dict[str, set[int]]) -> None:
        """`seen`: newest delivered change per entity (advanced here); `live`: arrived live."""
        self.seen = seen
        self.live = live

    def accept(self, change: Change) -> bool:
        """Fire `change`? Advances `seen` either way when it is newer."""
        entity_id = change.entity_id
        updated = change.updated_us
        newest = self.seen.get(entity_id)
        if newest is not None and updated <= newest:
            return False
        self.seen[entity_id] = updated
        live = self.live.get(entity_id)
        return live is None or updated not in live


async def fire_in_batches(
    changes: Iterable[Change],
    dedup: Deduplicator,
    fire: Fire,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Fire the accepted changes in order; return how many were fired.

    Yields to the loop every FIRE_BATCH changes or FIRE_BUDGET seconds, whichever comes first
    (`slices.Slices`).
    """
    fired = 0
    slices = Slices(FIRE_BATCH, FIRE_BUDGET, clock)
    for change in changes:
        if dedup.accept(change):
            fire(change)
            fired += 1
        await slices.tick()
    return fired


__all__ = [
    "STATE_CHANGED",
    "Change",
    "Deduplicator",
    "HistoryReader",
    "NoHistoryError",
    "ReplyChanges",
    "fire_in_batches",
]
