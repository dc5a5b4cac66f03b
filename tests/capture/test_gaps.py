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
