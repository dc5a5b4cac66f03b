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


def test_outage_from_the_last_sign_of_life_to_the_link_back() -> None:
    """The record's outage: last sign of life to the link's return; detection and recovery
    around it; stored and restored exactly."""
    gap = OpenGap(start_us=0, lost_at=1_000.0, last_seen=960.0)
    gap.back_at = 1_030.0
    again = OpenGap.from_dict(gap.as_dict())
    assert again == gap
    record = again.record(1_037.5, ("state_changed",))
    assert record.last_seen == datetime.fromtimestamp(960.0, UTC)
    assert record.link_back == datetime.fromtimestamp(1_030.0, UTC)
    outage = record.outage
    assert outage is not None
    assert (outage.length, outage.detection, outage.recovery) == (70.0, 40.0, 7.5)
    assert GapRecord.from_dict(record.to_store()) == record
    assert record.as_dict()["outage"] == {"length": 70.0, **outage.figures()}
    # Not back yet, or the sign of life not known: no outage (never one of another meaning).
    assert OpenGap(start_us=0, lost_at=1.0, last_seen=0.5).record(2.0, ()).outage is None
    assert OpenGap(start_us=0, lost_at=1.0, back_at=1.5).record(2.0, ()).outage is None


def test_records_and_open_gaps_of_earlier_releases_load() -> None:
    """Stored before the outage had its meaning: loaded, the outage unknown."""
    old_record = {
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-01T00:01:00+00:00",
        "duration": 60.0,
        "event_types": ["state_changed"],
        "backfilled": 1,
        "backfill_error": None,
        "unrecoverable": [],
        "after_crash": False,
        "possible_duplicates": 0,
    }
    record = GapRecord.from_dict(old_record)
    assert (record.duration, record.last_seen, record.link_back, record.outage) == (
        60.0,
        None,
        None,
        None,
    )
    assert record.as_dict()["outage"] is None
    assert GapRecord.from_dict(record.to_store()) == record
    gap = OpenGap.from_dict({"start_us": 5, "lost_at": 100.0, "live": {}})
    assert (gap.last_seen, gap.back_at) == (None, None)
