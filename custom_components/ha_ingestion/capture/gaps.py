"""Gap records: one open gap (taken at the disconnect) and the closed gaps shown to users."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class GapRecord:
    """One closed outage as seen from here (diagnostics, the Last outage sensor)."""

    start: datetime
    end: datetime
    duration: float
    event_types: tuple[str, ...]
    backfilled: int
    backfill_error: str | None = None
    # Spans (ISO, the remote's clock) that could not be recovered: older than the max window,
    # a window that kept failing, or a remote without history. Never invented.
    unrecoverable: tuple[tuple[str, str], ...] = ()
    # Opened at a start after an unclean stop (crash, SIGKILL): the changes fired in the last
    # seconds before it (after the last checkpoint write) may have been fired again.
    after_crash: bool = False
    # Of `backfilled`, how many may be duplicates of changes fired before that crash (an upper
    # bound: see `OpenGap.note_fired`). 0 after a clean stop.
    possible_duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        """For diagnostics."""
        return asdict(self)

    def to_store(self) -> dict[str, Any]:
        """For the checkpoint (JSON)."""
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        data["event_types"] = list(self.event_types)
        data["unrecoverable"] = [list(span) for span in self.unrecoverable]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GapRecord:
        """From `to_store()` (the checkpoint)."""
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            duration=float(data["duration"]),
            event_types=tuple(data["event_types"]),
            backfilled=int(data["backfilled"]),
            backfill_error=data.get("backfill_error"),
            unrecoverable=tuple(
                (str(span[0]), str(span[1])) for span in data.get("unrecoverable", ())
            ),
            after_crash=bool(data.get("after_crash", False)),
            possible_duplicates=int(data.get("possible_duplicates", 0)),
        )


@dataclass(kw_only=True)
class OpenGap:
    """The one gap being recovered: from the disconnect until the remote's history covers it.

    `start_us` is on the remote's clock (whole microseconds). `live` holds, per entity, the
    last_updated of every state change that arrived live while the gap was open: the backfill
    skips exactly those (a set lookup per row).

    After a crash (`after_crash`), the changes fired after the crashed instance's last
    checkpoint write are not in the checkpoint and are fired again. They all lie within
    `crash_window_us` (the remote's clock) of the first change fired again; `None` means no bound
    is known (the crash came while a gap was open, whose backfill fires hours of history in
    seconds), so every change fired for this gap may be one.
    """

    start_us: int
    lost_at: float  # local wall clock, for the record's start and duration
    live: dict[str, set[int]] = field(default_factory=dict)
    resume_us: int | None = None  # newest change read from history so far
    fired: int = 0
    failures: int = 0
    error: str | None = None
    unrecoverable: list[tuple[str, str]] = field(default_factory=list)
    after_crash: bool = False
    crash_window_us: int | None = None
    crash_window_end_us: int | None = None
    possible_duplicates: int = 0

    def note_fired(self, updated_us: int) -> bool:
        """One change fired for this gap: count it when it may repeat one fired before a crash."""
        self.fired += 1
        if not self.after_crash:
            return False
        if self.crash_window_us is not None:
            if self.crash_window_end_us is None:
                self.crash_window_end_us = updated_us + self.crash_window_us
            if updated_us > self.crash_window_end_us:
                return False
        self.possible_duplicates += 1
        return True

    def as_dict(self) -> dict[str, Any]:
        """For the checkpoint."""
        return {
            "start_us": self.start_us,
            "lost_at": self.lost_at,
            "live": {entity_id: sorted(values) for entity_id, values in self.live.items()},
            "resume_us": self.resume_us,
            "fired": self.fired,
            "failures": self.failures,
            "error": self.error,
            "unrecoverable": [list(span) for span in self.unrecoverable],
            "after_crash": self.after_crash,
            "crash_window_us": self.crash_window_us,
            "crash_window_end_us": self.crash_window_end_us,
            "possible_duplicates": self.possible_duplicates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenGap:
        """From `as_dict()`."""
        return cls(
            start_us=int(data["start_us"]),
            lost_at=float(data["lost_at"]),
            live={str(key): {int(v) for v in values} for key, values in data["live"].items()},
            resume_us=_optional_int(data.get("resume_us")),
            fired=int(data.get("fired", 0)),
            failures=int(data.get("failures", 0)),
            error=data.get("error"),
            unrecoverable=[(str(s[0]), str(s[1])) for s in data.get("unrecoverable", ())],
            after_crash=bool(data.get("after_crash", False)),
            crash_window_us=_optional_int(data.get("crash_window_us")),
            crash_window_end_us=_optional_int(data.get("crash_window_end_us")),
            possible_duplicates=int(data.get("possible_duplicates", 0)),
        )

    def record(self, end: float, event_types: tuple[str, ...]) -> GapRecord:
        """The closed record, ending at `end` (local wall clock)."""
        return GapRecord(
            start=datetime.fromtimestamp(self.lost_at, UTC),
            end=datetime.fromtimestamp(end, UTC),
            duration=max(0.0, end - self.lost_at),
            event_types=event_types,
            backfilled=self.fired,
            backfill_error=self.error,
            unrecoverable=tuple(self.unrecoverable),
            after_crash=self.after_crash,
            possible_duplicates=self.possible_duplicates,
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
