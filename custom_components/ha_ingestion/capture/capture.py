"""The capture orchestrator: live forwarding, one open gap at a time, backfill, checkpoint.

Live path (per event, from the reader; never raises): check the event (`events.check_*`; bad input
is skipped and counted), drop what a self-link would feed back (`selflink`), note the entity's
newest change, queue it. A drain task fires queued events as `ha_ingestion_event`; the queue is
bounded in count and bytes, overflow is counted and logged.

Gaps: at the disconnect ONE open gap is taken (start on the remote's clock, from what is known
complete, minus the detection margin). Every later connection works on that same record, under
one lock, until the remote's history is known to cover it; only then is it closed. While it is
open, live state changes wait (so each entity's changes reach the bus in order; other event types
go on) and their times are kept so the backfill skips exactly those.

Commit race (as Home Assistant's own `history/stream` solves it): the remote's recorder writes
changes to its database only every commit interval (5 s by default). The backfill reads the
history once at once, then waits until the commit interval has passed since our subscription was
confirmed (an elapsed time, the same on both clocks) and the remote recorder's backlog is empty,
and reads again from the newest change it got. Nothing is asked with an end time of our clock: the
last request of each read is open-ended, the remote's clock ends it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
import logging
import time
from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import CALLBACK_TYPE, CoreState, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import orjson

from ..client import (  # noqa: TID252 - the package's engine
    HaClientError,
    HaCommandError,
    LinkSnapshot,
    LinkState,
)
from ..const import (  # noqa: TID252 - the package's own constants
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_FORWARD_EVENTS,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    EVENT_INGESTED,
)
from ..helpers import set_entry_issue  # noqa: TID252 - the package's own repair helper
from . import checkpoint as checkpoint_module
from .backfill import (
    HISTORY,
    Change,
    Deduplicator,
    HistoryReader,
    NoHistoryError,
    fire_in_batches,
)
from .checkpoint import Checkpoint
from .events import (
    MATCH_ALL,
    STATE_CHANGED,
    Rejected,
    SkipCounter,
    check_event,
    check_state_changed,
    local_event,
    ts_to_us,
    us_to_iso,
)
from .gaps import GapRecord, OpenGap
from .history_session import HistorySession, ReplyTooLargeError
from .selflink import OwnEntities, remote_is_this_instance

if TYPE_CHECKING:
    from ..coordinator import HaIngestionCoordinator  # noqa: TID252
    from ..data import HaIngestionConfigEntry  # noqa: TID252

_LOGGER = logging.getLogger(__package__.rsplit(".", 1)[0])

QUEUE_SIZE = 10_000
QUEUE_BYTES = 32 * 1024 * 1024
DRAIN_BATCH = 256
GAP_HISTORY = 20
LAST_BY_TYPE = 64
# Extra seconds before the detected loss: events in flight when a link silently died are lost too.
GAP_MARGIN = 5.0
# When the remote's clock was never measured (no live change seen yet), start this much earlier.
SKEW_ALLOWANCE = 60.0
# Home Assistant's default recorder commit interval (5 s) plus room for the write itself.
COMMIT_WAIT = 7.0
BACKLOG_POLLS = 60
SENTINELS = 20  # live state changes remembered after each connect
BACKLOG_POLL = 1.0
MAX_PASS_FAILURES = 3
RETRY_DELAY = 10.0
REPLY_LIMIT = 8 * 1024 * 1024
ISSUE_BACKFILL = "backfill_incomplete"
US = 1_000_000


# The Store's final write at Home Assistant's stop happens in one of these states.
_STOPPING = frozenset({CoreState.stopping, CoreState.final_write, CoreState.stopped})


def _now_us() -> int:
    return int(time.time() * US)


class EventCapture:
    """Forwards remote events locally and recovers the state changes of every gap exactly once."""

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
        self.event_types = tuple(coordinator.supervisor.config.connection.event_types)
        self.subscribed = frozenset(self.event_types)
        self.forward = bool(options[CONF_FORWARD_EVENTS])
        # Hook (mirror/): state changes of these entities are not fired as events; they are
        # bookkept as delivered (their local entity carries them), so backfill skips them alike.
        self.not_forwarded: Callable[[str], bool] | None = None
        # Hook (mirror/): a gap was closed, its span (start, end) on the remote's clock (µs).
        self.on_gap_closed: Callable[[int, int], None] | None = None
        # Remote state changes are captured at all (forwarded, subscribed): only then does a
        # checkpoint say anything about them, and is anything owed for a span.
        self.captures_state_changes = self.forward and (
            STATE_CHANGED in self.subscribed or MATCH_ALL in self.subscribed
        )
        # Backfilled changes are local events too: forwarding off means no backfill at all.
        self.backfill_enabled = self.captures_state_changes and bool(options[CONF_BACKFILL])
        self.history_available: bool | None = None
        self.max_window_us = int(float(options[CONF_BACKFILL_MAX_WINDOW]) * 3600 * US)
        self.detection_margin = (
            float(options[CONF_HEARTBEAT_INTERVAL])
            + float(options[CONF_HEARTBEAT_TIMEOUT])
            + GAP_MARGIN
        )
        self.queue: deque[tuple[dict[str, Any], int]] = deque()
        # Live state changes that wait while a gap is recovered (fired after its changes).
        self.held: deque[tuple[dict[str, Any], int]] = deque()
        self.queue_size = QUEUE_SIZE
        self.queue_bytes_limit = QUEUE_BYTES
        self.queue_bytes = 0
        self.overflow = 0
        self.forwarded = 0
        self.backfilled = 0
        # Backfilled changes that may repeat ones fired before a crash (counted, never hidden).
        self.possible_duplicates = 0
        self.self_skipped = 0
        self.skips = SkipCounter(_LOGGER, "remote events")
        self.last_by_type: dict[str, dict[str, Any]] = {}
        self.gaps: deque[GapRecord] = deque(maxlen=GAP_HISTORY)
        self.backfill_running = False
        self.self_link = False
        self.own = OwnEntities(hass)
        self.checkpoint = Checkpoint(hass, entry.entry_id)
        self.reconnects_base = 0
        self.requests = 0
        self.recorder_backlog_max = 0
        self.sentinel_polls = 0
        self._after_connect: list[tuple[str, int]] = []
        self._seen: dict[str, int] = {}
        self._remote_us: int | None = None
        self._offset_us: int | None = None
        self._gap: OpenGap | None = None
        self._hold = False
        self._stopped_cleanly = False
        self._connected = False
        self._connected_mono = 0.0
        self._epoch = 0
        self._ready = asyncio.Event()
        self._backfill_lock = asyncio.Lock()
        self._overflow_logged = False
        self._unsubs: list[CALLBACK_TYPE] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        supervisor = coordinator.supervisor
        self._link = HistorySession(
            async_get_clientsession(hass), supervisor.config.connection, REPLY_LIMIT
        )

    # ------------------------------------------------------------------ lifecycle

    async def async_start(self) -> None:
        """Restore the checkpoint, attach to the link and start the drain task."""
        self._restore(await self.checkpoint.async_load(self._to_store))
        self.self_link = remote_is_this_instance(self.hass, self.entry.data[CONF_ACCESS_TOKEN])
        if self.self_link:
            self.own.async_start()
            self.coordinator.ignore_event = self.is_own_event
        supervisor = self.coordinator.supervisor
        self._unsubs.append(supervisor.add_event_listener(self._on_event))
        self._unsubs.append(supervisor.add_listener(self._on_snapshot))
        self._spawn(self._drain(), "drain")
        self._publish_extra()

    async def async_stop(self) -> None:
        """Detach, cancel the drain and any backfill, write the checkpoint (idempotent)."""
        while self._unsubs:
            self._unsubs.pop()()
        self.coordinator.ignore_event = None
        self.own.async_stop()
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001 - stopping must finish
                _LOGGER.debug("Capture task ended with an error", exc_info=True)
        await self._link.close()
        self._stopped_cleanly = True
        await self.checkpoint.async_flush()

    def _spawn(self, coro: Any, name: str) -> None:
        task = self.entry.async_create_background_task(
            self.hass, coro, f"ha_ingestion {name} {self.entry.entry_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ checkpoint

    def _complete_us(self) -> int | None:
        """Up to where (remote clock) every change is known delivered here."""
        if self._gap is not None:
            return self._gap.start_us
        known = self._remote_us
        if self._connected and self._offset_us is not None:
            estimate = _now_us() + self._offset_us
            known = estimate if known is None else max(known, estimate)
        return known

    def _to_store(self) -> dict[str, Any]:
        snapshot = self.coordinator.supervisor.snapshot()
        return {
            # False in throttled writes: a start that finds it so follows a crash.
            "clean": self._stopped_cleanly or self.hass.state in _STOPPING,
            "saved_at": time.time(),
            # A crash loses at most what was fired in this long since the last write.
            "save_delay": checkpoint_module.SAVE_DELAY,
            "remote_us": self._complete_us(),
            # Off (options without state_changed, forwarding off): this run owes nothing, and
            # the next one's gap begins where this one stopped (no margin, no older claim).
            "state_changes": self.captures_state_changes,
            "offset_us": self._offset_us,
            "seen": dict(self._seen),
            "gap": None if self._gap is None else self._gap.as_dict(),
            "totals": {
                "reconnects": self.reconnects_base + snapshot.reconnect_count,
                "backfilled": self.backfilled,
                "possible_duplicates": self.possible_duplicates,
                "dropped": self.overflow,
                "gaps": [gap.to_store() for gap in self.gaps],
            },
        }

    def _restore(self, stored: dict[str, Any] | None) -> None:
        if not stored:
            return
        try:
            self._seen = {str(k): int(v) for k, v in stored.get("seen", {}).items()}
            totals = stored.get("totals", {})
            self.reconnects_base = int(totals.get("reconnects", 0))
            self.backfilled = int(totals.get("backfilled", 0))
            self.possible_duplicates = int(totals.get("possible_duplicates", 0))
            self.overflow = int(totals.get("dropped", 0))
            self.gaps.extend(GapRecord.from_dict(gap) for gap in totals.get("gaps", ()))
            offset = stored.get("offset_us")
            self._offset_us = None if offset is None else int(offset)
            remote = stored.get("remote_us")
            self._remote_us = None if remote is None else int(remote)
            captured = bool(stored.get("state_changes", True))
            gap_open = bool(stored.get("gap")) and captured
            if gap_open:
                self._gap = OpenGap.from_dict(stored["gap"])
            else:
                # Stopped (or reloaded, or killed) while complete: what happened since is a gap.
                # After a run that did not capture state changes, only what happened since.
                if not captured:
                    self._remote_us = None
                self._open_gap(float(stored.get("saved_at", time.time())), margin=captured)
            if self._gap is not None and not stored.get("clean", False):
                self._mark_crash(self._gap, gap_open, stored)
        except (KeyError, TypeError, ValueError) as err:
            _LOGGER.warning(
                "Capture checkpoint of %s unreadable (%s); starting fresh", self.entry.title, err
            )
            self._seen = {}
            self._gap = None
            return
        self._hold = self._gap is not None and self.backfill_enabled

    def _mark_crash(self, gap: OpenGap, gap_open: bool, stored: dict[str, Any]) -> None:
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
            save_delay = float(stored.get("save_delay", checkpoint_module.SAVE_DELAY))
            gap.crash_window_us = int((save_delay + self.detection_margin) * US)

    def _publish_extra(self) -> None:
        self.coordinator.extra.update(
            backfilled=self.backfilled,
            last_gap=self.gaps[-1].duration if self.gaps else None,
            overflow=self.overflow,
            reconnects_base=self.reconnects_base,
            backfill_available=self.backfill_enabled and self.history_available is not False,
        )

    # ------------------------------------------------------------------ live path

    def is_own_event(self, event: dict[str, Any]) -> bool:
        """Self-link: an event of this integration's own doing (never raises on bad input)."""
        data = event.get("data")
        entity_id = data.get("entity_id") if type(data) is dict else None
        return self._is_own(event.get("event_type"), entity_id)

    def _is_own(self, event_type: Any, entity_id: Any) -> bool:
        """The self-link rule: our own events, and state changes of our own entities."""
        return event_type == EVENT_INGESTED or (
            event_type == STATE_CHANGED
            and type(entity_id) is str
            and entity_id in self.own.entity_ids
        )

    @callback
    def _on_event(self, event: dict[str, Any]) -> None:
        """Hot path: one remote event. Never raises: bad input is skipped and counted."""
        try:
            event_type, data = check_event(event, self.subscribed)
            if event_type == STATE_CHANGED:
                entity_id, updated = check_state_changed(data)
            else:
                entity_id, updated = None, None
        except Rejected as rejected:
            self.skips.skip(rejected.reason)
            return
        if event_type in self.last_by_type or len(self.last_by_type) < LAST_BY_TYPE:
            self.last_by_type[event_type] = event
        if self.self_link and self._is_own(event_type, entity_id):
            self.self_skipped += 1
            return
        if updated is not None:
            self._note_remote_time(updated)
        if entity_id is not None and self.not_forwarded and self.not_forwarded(entity_id):
            queued = self.forward  # delivered as a local state: bookkept, not fired
        else:
            queued = self.forward and self._enqueue(
                event, self.held if self._hold and event_type == STATE_CHANGED else self.queue
            )
        if entity_id is None or updated is None:
            return
        if len(self._after_connect) < SENTINELS:
            self._after_connect.append((entity_id, updated))
        gap = self._gap
        if gap is None:
            if updated > self._seen.get(entity_id, -1):
                self._seen[entity_id] = updated
        elif queued:
            # Delivered live while the gap is open: the backfill must skip exactly this one.
            gap.live.setdefault(entity_id, set()).add(updated)
        self.checkpoint.schedule()

    def _note_remote_time(self, updated: int) -> None:
        if self._remote_us is None or updated > self._remote_us:
            self._remote_us = updated
        offset = updated - _now_us()  # remote clock - ours - latency: never ahead of the truth
        if self._offset_us is None or offset > self._offset_us:
            self._offset_us = offset

    def _enqueue(self, event: dict[str, Any], queue: deque[tuple[dict[str, Any], int]]) -> bool:
        size = 0
        waiting = len(self.queue) + len(self.held)
        if waiting:
            # Only measured when the drain is behind; an event into an empty queue is fired next.
            try:
                size = len(orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS))
            except TypeError:
                size = 0
        if waiting >= self.queue_size or self.queue_bytes + size > self.queue_bytes_limit:
            self.overflow += 1
            # The coordinator's throttled publish (scheduled for this event) carries it.
            self.coordinator.extra["overflow"] = self.overflow
            if not self._overflow_logged:
                self._overflow_logged = True
                _LOGGER.warning(
                    "Local processing is behind: event queue full (%d events, %d bytes); "
                    "counting dropped events",
                    waiting,
                    self.queue_bytes,
                )
            return False
        queue.append((event, size))
        self.queue_bytes += size
        self._ready.set()
        return True

    async def _drain(self) -> None:
        queue = self.queue
        fire = self.hass.bus.async_fire
        entry_id = self.entry.entry_id
        while True:
            await self._ready.wait()
            self._ready.clear()
            sent = 0
            while queue:
                event, size = queue.popleft()
                self.queue_bytes -= size
                fire(
                    EVENT_INGESTED,
                    local_event(
                        entry_id=entry_id,
                        remote_name=self.entry.title,
                        event_type=event["event_type"],
                        data=event["data"],
                        time_fired=event.get("time_fired"),
                        backfilled=False,
                    ),
                )
                self.forwarded += 1
                sent += 1
                if sent % DRAIN_BATCH == 0:
                    await asyncio.sleep(0)  # let the reader run: it must never fall behind
            if self._overflow_logged and not queue:
                self._overflow_logged = False
                _LOGGER.info("Event queue drained; %d events dropped so far", self.overflow)

    # ------------------------------------------------------------------ gaps

    @callback
    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        connected = snapshot.state is LinkState.CONNECTED
        if connected and not self._connected:
            self._connected = True
            self._epoch += 1
            self._connected_mono = time.monotonic()
            self._after_connect = []
            if self._gap is not None:
                self._start_recovery(self._gap)
        elif not connected and self._connected:
            self._connected = False
            if self._gap is None:
                lost = snapshot.last_disconnected
                self._open_gap(lost.timestamp() if lost is not None else time.time())

    def _open_gap(self, lost_at: float, *, margin: bool = True) -> OpenGap:
        """A gap from `lost_at`, reaching back the detection margin (a loss is seen late)."""
        back = int(self.detection_margin * US) if margin else 0
        known = [] if self._remote_us is None else [self._remote_us]
        if self._offset_us is not None:
            known.append(int(lost_at * US) + self._offset_us)
        # Never measured: start early enough for any plausible clock difference.
        start = max(known) if known else int((lost_at - SKEW_ALLOWANCE) * US)
        start -= back
        self._gap = OpenGap(start_us=start, lost_at=lost_at)
        self._hold = self.backfill_enabled and self.history_available is not False
        self.checkpoint.schedule()
        return self._gap

    def _start_recovery(self, gap: OpenGap) -> None:
        if not self.backfill_enabled or self.history_available is False:
            if self.backfill_enabled:
                gap.error = "remote has no history"
                gap.unrecoverable.append(
                    (us_to_iso(gap.start_us), us_to_iso(self._remote_now_us()))
                )
            self._close_gap(gap)
            return
        if not self.backfill_running:
            self.backfill_running = True
            self._spawn(self._recover(), "backfill")

    def _close_gap(self, gap: OpenGap) -> None:
        if not gap.unrecoverable:
            gap.error = None  # a failure that a retry recovered from lost nothing
        if gap.resume_us is not None and (
            self._remote_us is None or gap.resume_us > self._remote_us
        ):
            self._remote_us = gap.resume_us  # complete at least up to the newest change read
        seen = self._seen
        for entity_id, values in gap.live.items():
            newest = max(values)
            if newest > seen.get(entity_id, -1):
                seen[entity_id] = newest
        record = gap.record(time.time(), self.event_types)
        self.gaps.append(record)
        if self.on_gap_closed is not None:
            self.on_gap_closed(gap.start_us, self._remote_now_us())
        self._gap = None
        self._hold = False
        self.queue.extendleft(reversed(self.held))  # older than anything queued since
        self.held.clear()
        self._ready.set()
        if gap.failures and gap.unrecoverable:
            set_entry_issue(
                self.hass,
                self.entry,
                ISSUE_BACKFILL,
                ir.IssueSeverity.WARNING,
                {
                    "name": self.entry.title,
                    "start": gap.unrecoverable[0][0],
                    "end": gap.unrecoverable[-1][1],
                    "error": gap.error or "",
                },
            )
        if gap.fired:
            _LOGGER.info(
                "Recovered %d state changes missed while the link to %s was down",
                gap.fired,
                self.entry.title,
            )
        self.checkpoint.schedule()
        self._publish_extra()
        self.coordinator.async_publish()

    @property
    def recovering(self) -> bool:
        """A gap is open (live events wait until the changes before them are fired)."""
        return self._gap is not None

    @property
    def link_up(self) -> bool:
        """The live link is connected (read fresh: it changes while the backfill awaits)."""
        return self._connected

    def _remote_now_us(self) -> int:
        return _now_us() + (self._offset_us or 0)

    # ------------------------------------------------------------------ backfill

    async def _recover(self) -> None:
        """Work on the open gap until the remote's history is known to cover it."""
        try:
            async with self._backfill_lock:
                await self._recover_locked()
        finally:
            self.backfill_running = False
            await self._link.close()

    async def _recover_locked(self) -> None:
        while (gap := self._gap) is not None and self._connected:
            epoch = self._epoch
            try:
                await self._backfill(gap)
            except NoHistoryError:
                _LOGGER.warning(
                    "%s has no history (recorder/history not loaded): missed state changes "
                    "cannot be recovered; backfill is off for this link",
                    self.entry.title,
                )
                self.history_available = False
                gap.error = "remote has no history"
                gap.unrecoverable.append(
                    (us_to_iso(gap.start_us), us_to_iso(self._remote_now_us()))
                )
                self._close_gap(gap)
                return
            except HaClientError as err:
                if not self.link_up:
                    return  # the link is gone again: the same gap goes on at the next connection
                gap.failures += 1
                gap.error = str(err)
                _LOGGER.warning(
                    "Backfill after the outage of %s failed (%d of %d): %s",
                    self.entry.title,
                    gap.failures,
                    MAX_PASS_FAILURES,
                    err,
                )
                if gap.failures >= MAX_PASS_FAILURES:
                    start = gap.resume_us if gap.resume_us is not None else gap.start_us
                    gap.unrecoverable.append((us_to_iso(start), us_to_iso(self._remote_now_us())))
                    self._close_gap(gap)
                    return
                await self._sleep(RETRY_DELAY)
                continue
            self.history_available = True
            if self._epoch == epoch and self.link_up:
                self._close_gap(gap)
                return
            # Reconnected while reading: the gap now ends at the new connection; read on.

    async def _backfill(self, gap: OpenGap) -> None:
        reader = HistoryReader(self._command, now_us=self._remote_now_us, seen=self._seen)
        # Right after the link came back: was the remote's recorder still behind then?
        initial = await self._backlog()
        busy = bool(initial)
        if initial:
            self.recorder_backlog_max = max(self.recorder_backlog_max, initial)
        entity_ids = await self._entity_ids(gap)
        floor = self._remote_now_us() - self.max_window_us
        if gap.start_us < floor:
            gap.unrecoverable.append((us_to_iso(gap.start_us), us_to_iso(floor)))
            gap.start_us = floor
        # Both reads cover the whole gap. The first one is many requests over seconds, each
        # seeing the history as committed at its own moment: the newest change it got says
        # nothing about what an earlier request missed, so the second read cannot start there.
        # What was fired is skipped by the exactly-once rule, never fired twice.
        await self._read(reader, entity_ids, gap, gap.start_us)
        await self._wait_for_commit(busy)
        await self._confirm_commit(reader)
        await self._read(reader, entity_ids, gap, gap.start_us)
        for begin, end, why in reader.unrecoverable:
            gap.unrecoverable.append(
                (us_to_iso(begin), us_to_iso(end if end is not None else self._remote_now_us()))
            )
            gap.error = why
            gap.failures += 1

    async def _command(self, payload: dict[str, Any]) -> Any:
        self.requests += 1
        return await self._link.command(payload)

    async def _read(
        self, reader: HistoryReader, entity_ids: list[str], gap: OpenGap, start: int
    ) -> None:
        if not entity_ids:
            return
        dedup = Deduplicator(self._seen, gap.live)
        async for changes in reader.slices(entity_ids, start):
            if await fire_in_batches(changes, dedup, self._fire_backfilled):
                self.checkpoint.schedule()
            newest = changes.newest_us
            if newest is not None and (gap.resume_us is None or newest > gap.resume_us):
                gap.resume_us = newest
        if reader.rows_skipped:
            for _ in range(reader.rows_skipped):
                self.skips.skip("bad_history_row")
            reader.rows_skipped = 0

    def _fire_backfilled(self, change: Change) -> None:
        if self._gap is not None and self._gap.note_fired(change.updated_us):
            self.possible_duplicates += 1
        self.backfilled += 1
        self.hass.bus.async_fire(
            EVENT_INGESTED,
            local_event(
                entry_id=self.entry.entry_id,
                remote_name=self.entry.title,
                event_type=STATE_CHANGED,
                data={
                    "entity_id": change.entity_id,
                    "old_state": change.old_state,
                    "new_state": change.new_state,
                },
                time_fired=change.new_state["last_updated"],
                backfilled=True,
            ),
        )

    async def _entity_ids(self, gap: OpenGap) -> list[str]:
        """What to ask history for: the remote's entity registry, and every entity seen here.

        Not `get_states` (the whole remote's states in one message: 21 MB for 16,000 entities);
        the registry's display list is ~60 bytes per entity.
        """
        entity_ids = set(self._seen) | set(gap.live)
        try:
            reply = await self._command({"type": "config/entity_registry/list_for_display"})
        except ReplyTooLargeError:
            _LOGGER.warning(
                "The entity registry of %s is larger than %d bytes; recovering only entities "
                "seen here",
                self.entry.title,
                REPLY_LIMIT,
            )
        except HaCommandError:
            pass  # older remote or a user without access: entities seen here only
        else:
            entities = reply.get("entities") if type(reply) is dict else None
            for item in entities if type(entities) is list else ():
                entity_id = item.get("ei") if type(item) is dict else None
                if type(entity_id) is str and "." in entity_id:
                    entity_ids.add(entity_id)
        if self.self_link:
            entity_ids -= self.own.entity_ids
        return sorted(entity_ids)

    async def _backlog(self) -> int | None:
        """The remote recorder's queue length (`recorder/info`); None when it cannot tell."""
        try:
            info = await self._command({"type": "recorder/info"})
        except HaCommandError:
            return None
        backlog = info.get("backlog") if type(info) is dict else None
        return backlog if type(backlog) is int else None

    async def _wait_for_commit(self, busy: bool) -> None:
        """Until the remote recorder has written everything from before our subscription.

        The recorder takes changes from a first-in, first-out queue and writes what it took at
        least every commit interval. If its queue (`recorder/info` backlog) was empty when the
        link came back (`busy` False), everything from before was taken by then and is written
        once the commit interval has passed since. Otherwise: wait until the queue is empty, then
        one more commit interval. A big outage leaves a busy remote's recorder a long queue
        (126,000 after `scripts/bench backfill`'s 200,000 changes): as long as it gets shorter,
        it is waited for. A backlog that does not get shorter for BACKLOG_POLLS polls in a row
        raises: the gap stays open and is retried, never closed short.
        """
        remaining = self._connected_mono + COMMIT_WAIT - time.monotonic()
        if remaining > 0:
            await self._sleep(remaining)
        shortest: int | None = None
        stalled = 0
        while True:
            backlog = await self._backlog()
            if not backlog:  # empty, or no recorder/info: the commit interval alone
                break
            busy = True
            self.recorder_backlog_max = max(self.recorder_backlog_max, backlog)
            if shortest is None or backlog < shortest:
                shortest, stalled = backlog, 0
            else:
                stalled += 1
                if stalled >= BACKLOG_POLLS:
                    raise RecorderBehindError(
                        f"the remote's recorder backlog ({backlog}) did not get shorter in "
                        f"{BACKLOG_POLLS} checks"
                    )
            await self._sleep(BACKLOG_POLL)
        if busy:
            await self._sleep(COMMIT_WAIT)

    async def _confirm_commit(self, reader: HistoryReader) -> None:
        """Proof, when there is one, that the remote's history covers the reconnect.

        A state change that arrived live after the reconnect happened after everything the gap
        can contain; the recorder writes in order, so once its history shows that change, it
        shows every earlier one. Only entities its history has rows for are used (an entity the
        remote's recorder excludes would never show). Without such a change (an idle remote),
        the commit interval and the empty backlog above are the evidence.
        """
        candidates = [(e, lu) for e, lu in self._after_connect if e in reader.recorded]
        if not candidates:
            return
        entity_id, updated = candidates[0]
        for _ in range(BACKLOG_POLLS):
            self.sentinel_polls += 1
            reply = await self._command(
                {
                    "type": HISTORY,
                    "start_time": us_to_iso(updated - 1),
                    "entity_ids": [entity_id],
                    "include_start_time_state": False,
                    "significant_changes_only": False,
                    "minimal_response": False,
                    # With attributes: asked without them (and without the start state) the
                    # remote answers {} at once for an entity whose *state* has not changed since
                    # (history's entities_may_have_state_changes_after), which hides an
                    # attribute-only change such as an automation's `current`.
                    "no_attributes": False,
                }
            )
            rows = reply.get(entity_id) if type(reply) is dict else None
            for row in rows if type(rows) is list else ():
                if type(row) is dict and ts_to_us(row.get("lu")) == updated:
                    return
            await self._sleep(BACKLOG_POLL)
        raise RecorderBehindError(
            "the remote's history does not show a change it sent after the reconnect yet"
        )


class RecorderBehindError(HaClientError):
    """The remote's recorder did not catch up in time: its history cannot cover the gap yet."""
