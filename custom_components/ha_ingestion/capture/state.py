"""What the live path and the gap recovery share: the settings read once, and the progress.

`CaptureSettings` is read from the options at construction and never changes. `CaptureState` is
the one mutable record both paths work on (and the checkpoint persists): per entity the newest
change delivered here, the remote's clock as measured from live events, the open gap, and the
totals users see. Each path changes only its part: the live path notes changes and the clock; the
recovery path opens, works on and closes the gap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
import time
from typing import Any, Protocol

from ..client import Outage  # noqa: TID252 - the package's engine
from ..const import (  # noqa: TID252 - the package's own constants
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_FORWARD_EVENTS,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
)
from .events import MATCH_ALL, STATE_CHANGED
from .gaps import GapRecord, OpenGap

GAP_HISTORY = 20
# Extra seconds before the detected loss: events in flight when a link silently died are lost too.
GAP_MARGIN = 5.0
US = 1_000_000


def now_us() -> int:
    """Our clock, in µs."""
    return int(time.time() * US)


@dataclass(frozen=True, kw_only=True)
class CaptureSettings:
    """The capture options, read once."""

    event_types: tuple[str, ...]
    subscribed: frozenset[str]
    forward: bool
    # Remote state changes are captured at all (forwarded, subscribed): only then does a
    # checkpoint say anything about them, and is anything owed for a span.
    captures_state_changes: bool
    # Backfilled changes are local events too: forwarding off means no backfill at all.
    backfill_enabled: bool
    max_window_us: int
    detection_margin: float

    @classmethod
    def from_options(
        cls, event_types: tuple[str, ...], options: Mapping[str, Any]
    ) -> CaptureSettings:
        """The settings for the link's subscribed `event_types` and the entry's options."""
        subscribed = frozenset(event_types)
        forward = bool(options[CONF_FORWARD_EVENTS])
        captures = forward and (STATE_CHANGED in subscribed or MATCH_ALL in subscribed)
        return cls(
            event_types=event_types,
            subscribed=subscribed,
            forward=forward,
            captures_state_changes=captures,
            backfill_enabled=captures and bool(options[CONF_BACKFILL]),
            max_window_us=int(float(options[CONF_BACKFILL_MAX_WINDOW]) * 3600 * US),
            detection_margin=(
                float(options[CONF_HEARTBEAT_INTERVAL])
                + float(options[CONF_HEARTBEAT_TIMEOUT])
                + GAP_MARGIN
            ),
        )


@dataclass(kw_only=True, eq=False)
class CaptureState:
    """Progress and totals of one entry's capture (persisted by `checkpoint.py`)."""

    # Per entity, the last_updated (µs, remote clock) of the newest change delivered here.
    seen: dict[str, int] = field(default_factory=dict)
    # The newest remote time known complete here, and the remote's clock minus ours (µs).
    remote_us: int | None = None
    offset_us: int | None = None
    gap: OpenGap | None = None
    # The remote's last sign of life (our wall clock) as last known: checkpointed, so that the
    # outage of a restart of Home Assistant starts at the last frame received before the stop.
    last_seen: float | None = None
    # Live state changes wait (the gap is being recovered; each entity's changes stay in order).
    hold: bool = False
    connected: bool = False
    # Live state changes since the last connect (the recovery's proof that history covers it).
    after_connect: list[tuple[str, int]] = field(default_factory=list)
    # Totals (checkpointed).
    reconnects_base: int = 0
    backfilled: int = 0
    # Backfilled changes that may repeat ones fired before a crash (counted, never hidden).
    possible_duplicates: int = 0
    overflow: int = 0
    gaps: deque[GapRecord] = field(default_factory=lambda: deque(maxlen=GAP_HISTORY))
    # The Last outage sensor: set at the link's return, its recovery at the gap's close (the
    # last closed gap's after a start).
    last_outage: Outage | None = None

    def note_remote_time(self, updated: int) -> None:
        """A live change's last_updated: the remote's clock moved at least this far."""
        if self.remote_us is None or updated > self.remote_us:
            self.remote_us = updated
        offset = updated - now_us()  # remote clock - ours - latency: never ahead of the truth
        if self.offset_us is None or offset > self.offset_us:
            self.offset_us = offset

    def remote_now_us(self) -> int:
        """The remote's clock now, as far as it was measured."""
        return now_us() + (self.offset_us or 0)

    def complete_us(self) -> int | None:
        """Up to where (remote clock) every change is known delivered here."""
        if self.gap is not None:
            return self.gap.start_us
        known = self.remote_us
        if self.connected and self.offset_us is not None:
            estimate = now_us() + self.offset_us
            known = estimate if known is None else max(known, estimate)
        return known


class PastStatesSink(Protocol):
    """Where recovered changes of entities held here as local entities go (mirror/)."""

    def record(
        self, remote_id: str, state: Any, attributes: Any, changed_us: int, updated_us: int
    ) -> bool:
        """One recovered change; True: taken (a past state of a local entity)."""

    async def flush(self) -> None:
        """After each history reply: what was taken is queued, and not too much waits."""

    def gap_recovered(self, start_us: int, complete: bool) -> None:
        """The gap is closed (it began at `start_us`, the earlier of both clocks).

        `complete`: every change of it was recovered.
        """
