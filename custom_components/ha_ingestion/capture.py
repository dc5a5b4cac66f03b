"""Event capture: remote events fired on the local bus, and state changes missed in an outage backfilled.

Live path (per event, from the reader): note the entity's last_updated, queue the event. A drain task
fires queued events as `ha_ingestion_event`; the queue is bounded and overflow is counted and logged.

Backfill: when a link comes back after a gap, the remote's history for the gap is read over the same
WebSocket (chunked by entity), de-duplicated against what arrived live (per entity, by last_updated)
and fired in time order with `backfilled: true`. Other event types cannot be recovered: the gap is
recorded instead (span and event types affected), never invented.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback

from .client import HaClientError, LinkSnapshot, LinkState
from .const import (
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_FORWARD_EVENTS,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    EVENT_INGESTED,
)

if TYPE_CHECKING:
    from .coordinator import HaIngestionCoordinator
    from .data import HaIngestionConfigEntry

_LOGGER = logging.getLogger(__package__)

QUEUE_SIZE = 10_000
DRAIN_BATCH = 256
HISTORY_CHUNK = 100
GAP_HISTORY = 20
# Extra seconds before the detected loss: events in flight when a link silently died are lost too.
GAP_MARGIN = 5.0
STATE_CHANGED = "state_changed"


@dataclass(frozen=True, kw_only=True)
class GapRecord:
    """One outage as seen from here."""

    start: datetime
    end: datetime
    duration: float
    event_types: tuple[str, ...]
    backfilled: int
    backfill_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For diagnostics."""
        return asdict(self)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class EventCapture:
    """Forwards remote events locally and backfills state changes after an outage."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        coordinator: HaIngestionCoordinator,
        options: dict[str, Any],
    ) -> None:
        """Read the capture options; nothing runs until `async_start()`."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.forward = bool(options[CONF_FORWARD_EVENTS])
        self.backfill_enabled = bool(options[CONF_BACKFILL])
        self.max_window = float(options[CONF_BACKFILL_MAX_WINDOW]) * 3600.0
        self.detection_margin = (
            float(options[CONF_HEARTBEAT_INTERVAL])
            + float(options[CONF_HEARTBEAT_TIMEOUT])
            + GAP_MARGIN
        )
        self.event_types = tuple(coordinator.supervisor.config.connection.event_types)
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_size = QUEUE_SIZE
        self.overflow = 0
        self.forwarded = 0
        self.backfilled = 0
        self.last_by_type: dict[str, dict[str, Any]] = {}
        self.gaps: deque[GapRecord] = deque(maxlen=GAP_HISTORY)
        self.backfill_running = False
        self._last_updated: dict[str, str] = {}
        self._live_during: dict[str, set[str]] | None = None
        self._pre_gap: dict[str, str] = {}
        self._pending_since: float | None = None
        self._was_connected = False
        self._gap_started: float | None = None
        self._ready = asyncio.Event()
        # One backfill at a time: a reconnect that completes while the previous backfill is still
        # firing (the reconnect button) waits for it, so both never read the same window.
        self._backfill_lock = asyncio.Lock()
        self._overflow_logged = False
        self._unsubs: list[CALLBACK_TYPE] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    @callback
    def async_start(self) -> None:
        """Attach to the link and start the drain task."""
        self._unsubs.append(self.coordinator.supervisor.add_event_listener(self._on_event))
        self._unsubs.append(self.coordinator.supervisor.add_listener(self._on_snapshot))
        self._spawn(self._drain(), "drain")

    @callback
    def async_stop(self) -> None:
        """Detach and cancel the drain and any backfill."""
        while self._unsubs:
            self._unsubs.pop()()
        for task in self._tasks:
            task.cancel()

    def _spawn(self, coro: Any, name: str) -> None:
        task = self.entry.async_create_background_task(
            self.hass, coro, f"ha_ingestion {name} {self.entry.entry_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish_extra(self) -> None:
        self.coordinator.extra.update(
            backfilled=self.backfilled,
            last_gap=self.gaps[-1].duration if self.gaps else None,
            overflow=self.overflow,
        )

    # ------------------------------------------------------------------ live path

    @callback
    def _on_event(self, event: dict[str, Any]) -> None:
        """Hot path: one remote event."""
        event_type = event.get("event_type", "")
        self.last_by_type[event_type] = event
        if event_type == STATE_CHANGED:
            data = event.get("data")
            new_state = data.get("new_state") if type(data) is dict else None
            if type(new_state) is dict:
                entity_id = data["entity_id"]  # type: ignore[index]
                updated: str = new_state.get("last_updated", "")
                self._last_updated[entity_id] = updated
                if self._live_during is not None:
                    self._live_during.setdefault(entity_id, set()).add(updated)
        if not self.forward:
            return
        if len(self.queue) >= self.queue_size:
            self.overflow += 1
            # The coordinator's throttled publish (scheduled for this event) carries it.
            self.coordinator.extra["overflow"] = self.overflow
            if not self._overflow_logged:
                self._overflow_logged = True
                _LOGGER.warning(
                    "Local processing is behind: event queue full (%d); counting dropped events",
                    self.queue_size,
                )
            return
        self.queue.append(event)
        self._ready.set()

    async def _drain(self) -> None:
        queue = self.queue
        fire = self.hass.bus.async_fire
        entry_id = self.entry.entry_id
        while True:
            await self._ready.wait()
            self._ready.clear()
            sent = 0
            while queue:
                event = queue.popleft()
                fire(
                    EVENT_INGESTED,
                    {
                        "entry_id": entry_id,
                        "remote_name": self.entry.title,
                        "event_type": event.get("event_type"),
                        "data": event.get("data"),
                        "time_fired": event.get("time_fired"),
                        "origin": event.get("origin"),
                        "backfilled": False,
                    },
                )
                self.forwarded += 1
                sent += 1
                if sent % DRAIN_BATCH == 0:
                    await asyncio.sleep(0)  # let the reader run: it must never fall behind
            if self._overflow_logged:
                self._overflow_logged = False
                _LOGGER.info("Event queue drained; %d events dropped so far", self.overflow)

    # ------------------------------------------------------------------ gaps and backfill

    @callback
    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        connected = snapshot.state is LinkState.CONNECTED
        if self._was_connected and not connected:
            lost = (snapshot.last_disconnected or datetime.now(UTC)).timestamp()
            self._gap_started = lost
            if self._pending_since is None:
                # Everything seen before this moment is known here; from now on record what
                # arrives live, so the backfill never fires a change twice.
                self._pending_since = lost
                self._pre_gap = dict(self._last_updated)
                self._live_during = {}
        elif connected and not self._was_connected and self._gap_started is not None:
            start, self._gap_started = self._gap_started, None
            end = (snapshot.last_connected or datetime.now(UTC)).timestamp()
            self._spawn(self._backfill(start, end), "backfill")
        self._was_connected = connected

    async def _backfill(self, gap_start: float, gap_end: float) -> None:
        """Fetch and fire what the remote recorded during the gap (and any unfinished earlier one)."""
        async with self._backfill_lock:
            await self._backfill_locked(gap_start, gap_end)

    async def _backfill_locked(self, gap_start: float, gap_end: float) -> None:
        fired = 0
        error: str | None = None
        self.backfill_running = True
        try:
            if self.backfill_enabled and STATE_CHANGED in self.event_types:
                fired = await self._backfill_states(self._pending_since or gap_start)
            self._pending_since = None
            self._pre_gap = {}
            self._live_during = None
            if self._gap_started is not None:
                # The link dropped again while this ran (it yields while firing): baseline that
                # gap now, on everything known including what was just fired.
                self._pending_since = self._gap_started
                self._pre_gap = dict(self._last_updated)
                self._live_during = {}
        except HaClientError as err:
            # Keep the window open: the next reconnect backfills it together with its own gap.
            error = str(err)
            _LOGGER.warning("Backfill after the outage of %s failed: %s", self.entry.title, err)
        finally:
            self.backfill_running = False
        self.gaps.append(
            GapRecord(
                start=datetime.fromtimestamp(gap_start, UTC),
                end=datetime.fromtimestamp(gap_end, UTC),
                duration=max(0.0, gap_end - gap_start),
                event_types=self.event_types,
                backfilled=fired,
                backfill_error=error,
            )
        )
        self._publish_extra()
        self.coordinator.async_publish()

    async def _backfill_states(self, gap_start: float) -> int:
        now = datetime.now(UTC).timestamp()
        start_time = _iso(max(gap_start - self.detection_margin, now - self.max_window))
        # The remote reports the start-time placeholder row at the start it parsed from this text
        # (whole microseconds): compare with exactly that, or the placeholder may look newer.
        start = datetime.fromisoformat(start_time).timestamp()
        supervisor = self.coordinator.supervisor
        states = await supervisor.command({"type": "get_states"})
        entity_ids = sorted(
            {s["entity_id"] for s in states if isinstance(s, dict) and "entity_id" in s}
            | set(self._last_updated)
        )
        changes: list[tuple[float, str, dict[str, Any], dict[str, Any] | None]] = []
        for chunk in _chunks(entity_ids, HISTORY_CHUNK):
            history = await supervisor.command(
                {
                    "type": "history/history_during_period",
                    "start_time": start_time,
                    "end_time": _iso(now),
                    "entity_ids": chunk,
                    "include_start_time_state": True,
                    "significant_changes_only": False,
                    "minimal_response": False,
                    "no_attributes": False,
                }
            )
            if isinstance(history, dict):
                changes.extend(self._select(history, start))
        changes.sort(key=lambda change: change[0])
        fired = 0
        for updated, entity_id, new_state, old_state in changes:
            self.hass.bus.async_fire(
                EVENT_INGESTED,
                {
                    "entry_id": self.entry.entry_id,
                    "remote_name": self.entry.title,
                    "event_type": STATE_CHANGED,
                    "data": {
                        "entity_id": entity_id,
                        "old_state": old_state,
                        "new_state": new_state,
                    },
                    "time_fired": _iso(updated),
                    "origin": "REMOTE",
                    "backfilled": True,
                },
            )
            fired += 1
            self.backfilled += 1
            known = _epoch(self._last_updated.get(entity_id))
            if known is None or updated > known:
                self._last_updated[entity_id] = new_state["last_updated"]
            if fired % DRAIN_BATCH == 0:
                await asyncio.sleep(0)
        if fired:
            _LOGGER.info(
                "Recovered %d state changes missed while the link to %s was down",
                fired,
                self.entry.title,
            )
        return fired

    def _select(
        self, history: dict[str, Any], start: float
    ) -> Iterable[tuple[float, str, dict[str, Any], dict[str, Any] | None]]:
        """State changes in the window that did not arrive live, each with its previous state."""
        live = self._live_during or {}
        for entity_id, rows in history.items():
            if not isinstance(rows, list):
                continue
            seen_before = _epoch(self._pre_gap.get(entity_id))
            floor = start if seen_before is None else max(start, seen_before)
            seen_live = {e for e in map(_epoch, live.get(entity_id, ())) if e is not None}
            previous: dict[str, Any] | None = None
            for row in rows:
                raw = row.get("lu") if isinstance(row, dict) else None
                if not isinstance(raw, int | float):
                    continue
                # The remote's database keeps its clock's sub-microsecond digits; its events
                # carry last_updated rounded to whole microseconds. Compare like with like.
                updated = datetime.fromtimestamp(raw, UTC).timestamp()
                state = {
                    "entity_id": entity_id,
                    "state": row.get("s"),
                    "attributes": row.get("a") or {},
                    "last_changed": _iso(row.get("lc") or updated),
                    "last_updated": _iso(updated),
                }
                # `> floor` drops what arrived before the gap and the start-time placeholder
                # row (its lu is the window start); `seen_live` drops what arrived after it.
                if updated > floor and not _contains(seen_live, updated):
                    yield updated, entity_id, state, previous
                previous = state


def _contains(values: set[float], value: float) -> bool:
    """Float timestamps from ISO text and from the database agree to the microsecond."""
    return any(abs(v - value) < 1e-6 for v in values)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
