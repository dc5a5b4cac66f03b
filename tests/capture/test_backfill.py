"""The backfill's request planning, adaptation and exactly-once rule, against a scripted remote."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from custom_components.ha_ingestion import slices as slices_module
from custom_components.ha_ingestion.capture import backfill as backfill_module
from custom_components.ha_ingestion.capture.backfill import (
    Change,
    Deduplicator,
    HistoryReader,
    NoHistoryError,
    ReplyChanges,
    fire_in_batches,
)
from custom_components.ha_ingestion.capture.events import iso_to_us, us_to_iso
from custom_components.ha_ingestion.capture.history_session import ReplyTooLargeError
from custom_components.ha_ingestion.client import (
    HaCommandError,
    HaConnectionClosedError,
    HaTimeoutError,
)

S = 1_000_000
NOW = 1_800_000_000 * S  # the (estimated) remote now of every test here


class Remote:
    """Answers history from a table of (entity_id, lu µs, state); a hook may fail a request."""

    def __init__(self, rows: list[tuple[str, int, str]]) -> None:
        self.rows = rows
        self.requests: list[dict[str, Any]] = []
        self.fail: Any = None  # callable(payload) -> Exception | None

    async def command(self, payload: dict[str, Any]) -> Any:
        self.requests.append(payload)
        if self.fail is not None and (error := self.fail(payload)) is not None:
            raise error
        start = iso_to_us(payload["start_time"])
        end = iso_to_us(payload.get("end_time"))
        assert start is not None
        reply: dict[str, list[dict[str, Any]]] = {}
        for entity_id in payload["entity_ids"]:
            mine = sorted((lu, s) for e, lu, s in self.rows if e == entity_id)
            before = [r for r in mine if r[0] < start]
            out = [{"s": before[-1][1], "a": {}, "lu": start / S}] if before else []
            out += [
                {"s": s, "a": {}, "lu": lu / S}
                for lu, s in mine
                if lu > start and (end is None or lu < end)
            ]
            if out:
                reply[entity_id] = out
        return reply


async def read_all(reader: HistoryReader, entity_ids: list[str], start: int) -> list[list[Change]]:
    """Each request's changes, iterated before the next request (as the capture does)."""
    return [list(changes) async for changes in reader.slices(entity_ids, start)]


async def test_short_gap_is_one_open_ended_request_per_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gap within the horizon: no end_time at all (the remote's clock ends it). Each reply
    comes out on its own (memory holds one reply), in time order."""
    monkeypatch.setattr(backfill_module, "CHUNK", 2)
    remote = Remote([("a.x", NOW - 4 * S, "1"), ("b.x", NOW - 5 * S, "2"), ("c.x", NOW - S, "3")])
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    replies = await read_all(reader, ["a.x", "b.x", "c.x"], NOW - 10 * S)
    assert [r["entity_ids"] for r in remote.requests] == [["a.x", "b.x"], ["c.x"]]
    assert all("end_time" not in r for r in remote.requests)
    assert [[(c.entity_id, c.new_state["state"]) for c in changes] for changes in replies] == [
        [("b.x", "2"), ("a.x", "1")],
        [("c.x", "3")],
    ]


async def test_rows_already_delivered_are_dropped_while_reading() -> None:
    """Rows at or before `seen` are no changes (no state is built for them); the first newer
    one still gets the one before it as its old state."""
    remote = Remote([("a.x", NOW - 5 * S, "1"), ("a.x", NOW - 4 * S, "2"), ("a.x", NOW - S, "3")])
    seen = {"a.x": NOW - 4 * S}
    reader = HistoryReader(remote.command, now_us=lambda: NOW, seen=seen)
    (changes,) = await read_all(reader, ["a.x"], NOW - 10 * S)
    assert [(c.new_state["state"], (c.old_state or {}).get("state")) for c in changes] == [
        ("3", "2")
    ]
    assert seen == {"a.x": NOW - 4 * S}  # read, never changed by the reader


async def test_long_gap_is_sliced_in_time_and_streamed_in_order() -> None:
    """Interior slices of at most SLICE_US overlapping by 1 µs, then an open-ended one; each slice
    comes out in time order before the next is read."""
    hour = backfill_module.SLICE_US
    start = NOW - 3 * hour - 10 * S
    boundary = start + hour  # a change exactly on a slice boundary is not lost
    rows = [("a.x", boundary, "edge"), ("b.x", start + 2, "first"), ("a.x", NOW - S, "last")]
    remote = Remote(rows)
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    slices = await read_all(reader, ["a.x", "b.x"], start)
    ends = [r.get("end_time") for r in remote.requests]
    assert ends[-1] is None
    assert all(end is not None for end in ends[:-1])
    starts = [iso_to_us(r["start_time"]) for r in remote.requests]
    assert starts[0] == start
    assert starts[1] == start + hour - 1
    flat = [c.new_state["state"] for changes in slices for c in changes]
    assert flat == ["first", "edge", "last"]
    for changes in slices:
        assert [c.updated_us for c in changes] == sorted(c.updated_us for c in changes)


async def test_oversize_splits_entities_then_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies over the budget: halve the chunk (and keep it small), then halve one entity's span;
    everything is still read, exactly as in one request."""
    monkeypatch.setattr(backfill_module, "CHUNK", 4)
    start = NOW - 100 * S
    rows = [(f"s.e{n}", start + (n + 1) * S, f"v{n}") for n in range(4)]
    rows += [("s.big", start + k * S, f"b{k}") for k in range(1, 60)]
    remote = Remote(rows)

    def too_big(payload: dict[str, Any]) -> Exception | None:
        if "s.big" not in payload["entity_ids"]:
            return None
        begin = iso_to_us(payload["start_time"]) or 0
        end = iso_to_us(payload.get("end_time")) or NOW
        if len(payload["entity_ids"]) > 1 or end - begin > 30 * S:
            return ReplyTooLargeError("oversize frame")
        return None

    remote.fail = too_big
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    (changes,) = await read_all(reader, ["s.big", "s.e0", "s.e1", "s.e2"], start)
    states = sorted(c.new_state["state"] for c in changes)
    assert states == sorted([f"b{k}" for k in range(1, 60)] + ["v0", "v1", "v2"])
    assert reader.chunk == 1
    assert reader.unrecoverable == []
    big = [r for r in remote.requests if r["entity_ids"] == ["s.big"] and "end_time" in r]
    assert big  # the single entity was split in time


async def test_smaller_chunks_after_oversize_still_cover_every_entity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunk shrinks after the first reply is too big: later chunks still cover every entity."""
    monkeypatch.setattr(backfill_module, "CHUNK", 4)
    entity_ids = [f"s.e{n:02d}" for n in range(12)]
    remote = Remote([(e, NOW - S, "1") for e in entity_ids])
    first: list[bool] = []

    def once(payload: dict[str, Any]) -> Exception | None:
        if not first:
            first.append(True)
            return ReplyTooLargeError("oversize")
        return None

    remote.fail = once
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    replies = await read_all(reader, entity_ids, NOW - 4 * S)
    assert sorted(c.entity_id for changes in replies for c in changes) == entity_ids
    asked = [e for r in remote.requests[1:] for e in r["entity_ids"]]
    assert sorted(asked) == entity_ids
    assert reader.chunk == 2


async def test_oversize_at_the_smallest_request_is_recorded_not_retried_forever() -> None:
    """One entity over MIN_SLICE_US still too big: recorded as unrecoverable, others go on."""
    remote = Remote([("a.x", NOW - S, "1"), ("b.x", NOW - S, "2")])
    remote.fail = lambda p: ReplyTooLargeError("oversize") if "a.x" in p["entity_ids"] else None
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    (changes,) = await read_all(reader, ["a.x", "b.x"], NOW - 4 * S)
    assert [c.entity_id for c in changes] == ["b.x"]
    assert len(reader.unrecoverable) >= 1
    assert all(why == "reply too large even for one entity" for *_, why in reader.unrecoverable)
    assert len(remote.requests) < 20


@pytest.mark.parametrize(
    "error", [HaCommandError("home_assistant_error", "busy"), HaTimeoutError("slow")]
)
async def test_failing_request_is_retried_a_bounded_number_of_times(error: Exception) -> None:
    """A request that fails is tried MAX_TRIES times, then its span is unrecoverable."""
    remote = Remote([("a.x", NOW - S, "1")])
    remote.fail = lambda payload: error
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    (changes,) = await read_all(reader, ["a.x"], NOW - 4 * S)
    assert changes == []
    assert len(remote.requests) == backfill_module.MAX_TRIES
    ((begin, end, why),) = reader.unrecoverable
    assert begin == NOW - 4 * S
    assert end is None
    assert why == str(error)


async def test_transient_failure_recovers() -> None:
    """One failure, then success: nothing unrecoverable."""
    remote = Remote([("a.x", NOW - S, "1")])
    failures = [HaTimeoutError("slow")]
    remote.fail = lambda payload: failures.pop() if failures else None
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    (changes,) = await read_all(reader, ["a.x"], NOW - 4 * S)
    assert [c.new_state["state"] for c in changes] == ["1"]
    assert reader.unrecoverable == []


async def test_no_history_and_lost_link_are_raised() -> None:
    """unknown_command means no history (told once, not retried); a lost link ends the read."""
    remote = Remote([])
    remote.fail = lambda payload: HaCommandError("unknown_command", "Unknown command.")
    reader = HistoryReader(remote.command, now_us=lambda: NOW)
    with pytest.raises(NoHistoryError):
        await read_all(reader, ["a.x"], NOW - S)
    assert len(remote.requests) == 1
    remote.fail = lambda payload: HaConnectionClosedError("gone")
    with pytest.raises(HaConnectionClosedError):
        await read_all(reader, ["a.x"], NOW - S)


def test_reply_changes_start_row_and_junk() -> None:
    """The start-time row (lu == start) only feeds old_state; junk rows are counted (once
    iterated); every row is dropped from the reply once read."""
    start = NOW - 10 * S
    rows: list[Any] = [
        {"s": "before", "a": {"u": 1}, "lu": start / S},
        "junk",
        {"s": "no time"},
        {"s": "after", "a": "bad", "lu": (start + S) / S, "lc": (start + S / 2) / S},
    ]
    changes = ReplyChanges()
    changes.add({"a.x": rows, "b.x": "rows"}, start, None)
    assert changes.skipped == 1  # b.x: not a list of rows
    (change,) = list(changes)
    assert change.old_state == {
        "entity_id": "a.x",
        "state": "before",
        "attributes": {"u": 1},
        "last_changed": us_to_iso(start),
        "last_updated": us_to_iso(start),
    }
    assert change.new_state["attributes"] == {}
    assert change.new_state["last_changed"] == us_to_iso(start + S // 2)
    assert changes.skipped == 3
    assert changes.newest_us == start + S
    assert rows == [None, None, None, None]
    assert list(changes) == []  # once
    junk = ReplyChanges()
    junk.add([], start, None)
    assert (list(junk), junk.skipped, junk.newest_us) == ([], 1, None)


def test_reply_changes_merge_entities_in_time_order_ties_in_reply_order() -> None:
    """Each entity's rows are in time order; the reply's changes come out merged by time, a tie
    in the order of the reply's entities (as a stable sort of all of them would)."""
    start = NOW - 10 * S
    history = {
        "a.x": [{"s": str(n), "a": {}, "lu": (start + n * S) / S} for n in (1, 3, 5)],
        "b.x": [{"s": str(n), "a": {}, "lu": (start + n * S) / S} for n in (2, 3, 4)],
    }
    changes = ReplyChanges()
    changes.add(history, start, {"b.x": start + 2 * S})
    assert [(c.entity_id, c.new_state["state"]) for c in changes] == [
        ("a.x", "1"),
        ("a.x", "3"),
        ("b.x", "3"),
        ("b.x", "4"),
        ("a.x", "5"),
    ]


def test_deduplicator_is_exact() -> None:
    """Newer than seen and not live: fire; seen advances; lookups are set lookups."""
    seen = {"a.x": 100}
    live = {"a.x": {300}}
    dedup = Deduplicator(seen, live)

    def change(entity_id: str, us: int) -> Change:
        return Change(us, entity_id, {"last_updated": us_to_iso(us)}, None)

    assert not dedup.accept(change("a.x", 100))  # delivered before the gap
    assert not dedup.accept(change("a.x", 50))
    assert dedup.accept(change("a.x", 200))
    assert not dedup.accept(change("a.x", 300))  # arrived live
    assert not dedup.accept(change("a.x", 300))  # and never twice
    assert dedup.accept(change("b.x", 1))
    assert seen == {"a.x": 300, "b.x": 1}


async def test_firing_yields_to_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other tasks run between batches: the loop is never held for a whole slice."""
    monkeypatch.setattr(backfill_module, "FIRE_BATCH", 10)
    ticks = 0
    order: list[int] = []

    async def other() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    changes = [Change(n + 1, "a.x", {}, None) for n in range(100)]

    def fire(change: Change) -> None:
        order.append(ticks)

    fired = await fire_in_batches(changes, Deduplicator({}, {}), fire)
    task.cancel()
    assert fired == 100
    assert len(set(order)) >= 9  # the other task ran between (at least) every batch


async def test_firing_yields_after_its_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slow listeners: firing yields once FIRE_BUDGET has passed, long before FIRE_BATCH."""
    yields: list[int] = []
    fired_so_far = 0
    now = 0.0

    def clock() -> float:
        return now

    def fire(change: Change) -> None:
        nonlocal now, fired_so_far
        now += 0.004  # each event costs 4 ms here
        fired_so_far += 1

    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        yields.append(fired_so_far)
        await real_sleep(delay)

    monkeypatch.setattr(slices_module.asyncio, "sleep", sleep)
    changes = [Change(n + 1, "a.x", {}, None) for n in range(9)]
    assert await fire_in_batches(changes, Deduplicator({}, {}), fire, clock) == 9
    assert yields == [3, 6, 9]  # every 12 ms >= 10 ms budget
