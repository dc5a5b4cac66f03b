"""Gap records survive the checkpoint unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

from custom_components.ha_ingestion.capture.gaps import GapRecord, OpenGap


def test_open_gap_round_trip_and_record() -> None:
    """An open gap is stored and restored exactly; closing it gives the record."""
    gap = OpenGap(start_us=5, lost_at=100.0, live={"a.b": {7, 9}})
    gap.fired = 3
    gap.resume_us = 9
    gap.unrecoverable.append(("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"))
    again = OpenGap.from_dict(gap.as_dict())
    assert again == gap
    record = again.record(160.0, ("state_changed",))
    assert record.start == datetime.fromtimestamp(100.0, UTC)
    assert record.duration == 60.0
    assert record.backfilled == 3
    assert GapRecord.from_dict(record.to_store()) == record
    assert record.as_dict()["start"] == record.start
    assert OpenGap(start_us=1, lost_at=2.0).record(1.0, ()).duration == 0.0


def test_possible_duplicates_after_a_crash_are_counted_in_the_window() -> None:
    """After a crash, changes fired again within the window of the first one are counted as
    possible duplicates; later ones are not; without a crash nothing is counted."""
    clean = OpenGap(start_us=0, lost_at=0.0)
    assert clean.note_fired(10) is False
    assert (clean.fired, clean.possible_duplicates) == (1, 0)

    gap = OpenGap(start_us=0, lost_at=0.0, after_crash=True, crash_window_us=100)
    assert [gap.note_fired(us) for us in (1_000, 1_050, 1_100, 1_101, 5_000)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert (gap.fired, gap.possible_duplicates, gap.crash_window_end_us) == (5, 3, 1_100)
    again = OpenGap.from_dict(gap.as_dict())
    assert again == gap
    assert again.note_fired(1_099) is True  # the window survives a reload
    record = again.record(1.0, ("state_changed",))
    assert (record.after_crash, record.possible_duplicates) == (True, 4)
    assert GapRecord.from_dict(record.to_store()) == record

    unbounded = OpenGap(start_us=0, lost_at=0.0, after_crash=True, crash_window_us=None)
    assert all(unbounded.note_fired(us) for us in (1, 10**12))
    assert unbounded.possible_duplicates == 2
