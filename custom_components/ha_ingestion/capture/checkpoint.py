"""The durable checkpoint of one entry: how far capture is known complete, and the totals users see.

Stored with Home Assistant's `Store` (`.storage/ha_ingestion.capture.<entry_id>`), written at most
every `SAVE_DELAY` seconds while things change, at once when the entry unloads, and by the Store's
own final write when Home Assistant stops. What it holds:

- `remote_us`: the remote's time (µs, its clock) up to which every change was delivered here;
- `offset_us`: the remote's clock minus ours, as last measured from live events;
- `seen`: per entity, the last_updated (µs) of the newest change delivered here: after a restart
  the backfill fires only what is newer, so a clean stop repeats nothing;
- `gap`: the open gap (start on the remote's clock, what arrived live meanwhile), so a reload or
  restart in the middle of a backfill goes on where it was;
- `totals`: reconnects, backfilled, dropped, and the recent gap records.

After a crash (no final write) the changes fired after the last write are fired again: at most
`SAVE_DELAY` seconds' worth. Nothing is lost: the restored `remote_us` is older, not newer.

`to_store`/`restore` turn capture's state (`state.py`) into that record and back; `mark_crash`
says what a start after a crash may fire again.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from ..const import (  # noqa: TID252 - the package's own constants and logger
    DOMAIN,
    LOGGER,
)
from .gaps import GapRecord, OpenGap
from .state import US, CaptureSettings, CaptureState

STORAGE_VERSION = 1
SAVE_DELAY = 10.0


def storage_key(entry_id: str) -> str:
    """The Store key of an entry's checkpoint."""
    return f"{DOMAIN}.capture.{entry_id}"


class Checkpoint:
    """Loads once at start; `schedule()` a throttled write; `async_flush()` writes now."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """`data()` must be given before the first write (see `async_load`)."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, storage_key(entry_id), private=True, atomic_writes=True
        )
        self._data_func: Any = None
        self._pending = False
        self.writes = 0

    async def async_load(self, data_func: Any) -> dict[str, Any] | None:
        """The stored checkpoint (None the first time); `data_func()` builds what to write."""
        self._data_func = data_func
        stored = await self._store.async_load()
        return stored if isinstance(stored, dict) else None

    def _build(self) -> dict[str, Any]:
        self._pending = False
        self.writes += 1
        data: dict[str, Any] = self._data_func()
        return data

    def schedule(self) -> None:
        """Something changed: write within SAVE_DELAY (cheap when a write is already pending)."""
        if not self._pending and self._data_func is not None:
            self._pending = True
            self._store.async_delay_save(self._build, SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write now (unload)."""
        if self._data_func is not None:
            self._pending = False
            await self._store.async_save(self._build())

    async def async_remove(self) -> None:
        """Delete the stored checkpoint (entry removed)."""
        await self._store.async_remove()


class GapOpener(Protocol):
    """Opens the gap since `lost_at` (`recovery.GapRecovery.open_gap`)."""

    def __call__(self, lost_at: float, *, margin: bool = ...) -> OpenGap:
        """The gap opened."""


def to_store(
    state: CaptureState, settings: CaptureSettings, *, clean: bool, reconnects: int
) -> dict[str, Any]:
    """What to write: `clean` False in throttled writes; `reconnects` the total so far."""
    return {
        # False in throttled writes: a start that finds it so follows a crash.
        "clean": clean,
        "saved_at": time.time(),
        # A crash loses at most what was fired in this long since the last write.
        "save_delay": SAVE_DELAY,
        "remote_us": state.complete_us(),
        # Off (options without state_changed, forwarding off): this run owes nothing, and
        # the next one's gap begins where this one stopped (no margin, no older claim).
        "state_changes": settings.captures_state_changes,
        "offset_us": state.offset_us,
        "seen": dict(state.seen),
        "gap": None if state.gap is None else state.gap.as_dict(),
        "totals": {
            "reconnects": reconnects,
            "backfilled": state.backfilled,
            "possible_duplicates": state.possible_duplicates,
            "dropped": state.overflow,
            "gaps": [gap.to_store() for gap in state.gaps],
        },
    }


def restore(
    state: CaptureState,
    settings: CaptureSettings,
    stored: dict[str, Any] | None,
    *,
    open_gap: GapOpener,
    title: str,
) -> None:
    """Restore `state` from what was stored; what happened since it was written is a gap.

    `open_gap(lost_at, margin=...)` opens that gap (the recovery path's rule).
    """
    if not stored:
        return
    try:
        state.seen = {str(k): int(v) for k, v in stored.get("seen", {}).items()}
        totals = stored.get("totals", {})
        state.reconnects_base = int(totals.get("reconnects", 0))
        state.backfilled = int(totals.get("backfilled", 0))
        state.possible_duplicates = int(totals.get("possible_duplicates", 0))
        state.overflow = int(totals.get("dropped", 0))
        state.gaps.extend(GapRecord.from_dict(gap) for gap in totals.get("gaps", ()))
        offset = stored.get("offset_us")
        state.offset_us = None if offset is None else int(offset)
        remote = stored.get("remote_us")
        state.remote_us = None if remote is None else int(remote)
        captured = bool(stored.get("state_changes", True))
        gap_open = bool(stored.get("gap")) and captured
        if gap_open:
            state.gap = OpenGap.from_dict(stored["gap"])
        else:
            # Stopped (or reloaded, or killed) while complete: what happened since is a gap.
            # After a run that did not capture state changes, only what happened since.
            if not captured:
                state.remote_us = None
            open_gap(float(stored.get("saved_at", time.time())), margin=captured)
        if state.gap is not None and not stored.get("clean", False):
            mark_crash(state.gap, gap_open, stored, settings.detection_margin)
    except (KeyError, TypeError, ValueError) as err:
        LOGGER.warning("Capture checkpoint of %s unreadable (%s); starting fresh", title, err)
        state.seen = {}
        state.gap = None
        return
    state.hold = state.gap is not None and settings.backfill_enabled


def mark_crash(
    gap: OpenGap, gap_open: bool, stored: dict[str, Any], detection_margin: float
) -> None:
    """The last write was a throttled one: what was fired after it will be fired again.

    Live changes are persisted at most `save_delay` after they arrive, so those fired after
    the last write arrived within `save_delay` before the crash; on the remote's clock they
    lie within that plus the detection margin (their latency, and a gap opened and closed
    between two writes, whose start reaches back by the margin) of the first one fired
    again. A crash while a gap was open has no such bound: its backfill fires hours of
    history in seconds, so every change fired for it may be a duplicate.
    """
    gap.after_crash = True
    if gap_open:
        gap.crash_window_us = None
    else:
        save_delay = float(stored.get("save_delay", SAVE_DELAY))
        gap.crash_window_us = int((save_delay + detection_margin) * US)
