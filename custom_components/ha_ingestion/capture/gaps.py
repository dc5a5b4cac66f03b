"""Gap records: one open gap (taken at the disconnect) and the closed gaps shown to users.

Two spans per record. The gap's own (`start` to `end`, `duration`): from the loss detected (at a
start of Home Assistant: the checkpoint's last write before the stop) until the gap's data was
recovered and it was closed. The outage users see (`outage`, the Last outage sensor and the log):
from the remote's last sign of life (`last_seen`) to the link's return (`link_back`), with the
loss detected at `detected`. A link lost again while its gap is recovered is a new outage of the
same gap: the record keeps the last one (the sensor showed the earlier one at its return). Records
written by earlier releases have no `last_seen`/`link_back`: their outage is unknown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..client import Outage  # noqa: TID252 - the package's engine


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
    # The gap's last outage: the remote's last sign of life before the loss (the last frame
    # received on the link; at a start of Home Assistant, the one before the stop), the loss
    # detected (None: at `start`) and the link's return that ended it (connected, subscriptions
    # confirmed). None when not known (records of earlier releases).
    last_seen: datetime | None = None
    detected: datetime | None = None
    link_back: datetime | None = None

    @property
    def outage(self) -> Outage | None:
        """The outage users see: last sign of life to the link's return; None when not known."""
        if self.last_seen is None or self.link_back is None:
            return None
        return Outage(
            last_seen=self.last_seen,
            detected=self.detected or self.start,
            back=self.link_back,
            recovered=self.end,
        )

    def as_dict(self) -> dict[str, Any]:
        """For diagnostics: the record, and its outage's figures."""
        data = asdict(self)
        outage = self.outage
        data["outage"] = None if outage is None else {"length": outage.length, **outage.figures()}
        return data

    def to_store(self) -> dict[str, Any]:
        """For the checkpoint (JSON)."""
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        data["last_seen"] = _optional_iso(self.last_seen)
        data["detected"] = _optional_iso(self.detected)
        data["link_back"] = _optional_iso(self.link_back)
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
            last_seen=_optional_datetime(data.get("last_seen")),
            detected=_optional_datetime(data.get("detected")),
            link_back=_optional_datetime(data.get("link_back")),
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
    # Local wall clock, of the last loss of the link while this gap is open (a link lost again
    # while it is recovered is a new outage): the remote's last sign of life before it (None:
    # not known), the loss detected (None: at `lost_at`) and the link's return (None: not back).
    last_seen: float | None = None
    detected_at: float | None = None
    back_at: float | None = None
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

    def lost_again(self, detected_at: float, last_seen: float | None) -> None:
        """The link was lost again while this gap is recovered: a new outage begins."""
        self.detected_at = detected_at
        self.last_seen = last_seen
        self.back_at = None

    def outage(self) -> Outage | None:
        """The last outage, once the link is back (its recovery: when this gap is closed)."""
        if self.last_seen is None or self.back_at is None:
            return None
        return Outage(
            last_seen=datetime.fromtimestamp(self.last_seen, UTC),
            detected=datetime.fromtimestamp(
                self.lost_at if self.detected_at is None else self.detected_at, UTC
            ),
            back=datetime.fromtimestamp(self.back_at, UTC),
        )

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
            "last_seen": self.last_seen,
            "detected_at": self.detected_at,
            "back_at": self.back_at,
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
            last_seen=_optional_float(data.get("last_seen")),
            detected_at=_optional_float(data.get("detected_at")),
            back_at=_optional_float(data.get("back_at")),
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
            last_seen=_optional_timestamp(self.last_seen),
            detected=_optional_timestamp(self.detected_at),
            link_back=_optional_timestamp(self.back_at),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_timestamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _optional_iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
