"""The gap path: one open gap at a time, recovered from the remote's history, then closed.

Over 400 lines: the gap state machine and its backfill share one lock, epoch and retry loop.

At the disconnect ONE open gap is taken (start on the remote's clock, from what is known complete,
minus the detection margin). Every later connection works on that same record, under one lock,
until the remote's history is known to cover it; only then is it closed (repairs raised for what
could not be recovered, the held live changes released, the closed-gap listener told). While it
is open, live state changes wait (`live.py`) and their times are kept so the backfill skips
exactly those.

Commit race (as Home Assistant's own `history/stream` solves it): the remote's recorder writes
changes to its database only every commit interval (5 s by default). The backfill reads the
history once at once, then waits until the commit interval has passed since our subscription was
confirmed (an elapsed time, the same on both clocks) and the remote recorder's backlog is empty,
and reads again from the newest change it got. Nothing is asked with an end time of our clock: the
last request of each read is open-ended, the remote's clock ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime
import time
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from ..client import (  # noqa: TID252 - the package's engine
    ConnectionConfig,
    HaClientError,
    HaCommandError,
    LinkSnapshot,
    LinkState,
)
from ..const import (  # noqa: TID252 - the package's own constants and logger
    DOMAIN,
    EVENT_INGESTED,
    LOGGER,
)
from ..issues import set_entry_issue  # noqa: TID252 - the package's own module
from .backfill import (
    HISTORY,
    Change,
    Deduplicator,
    HistoryReader,
    NoHistoryError,
    fire_in_batches,
)
from .checkpoint import Checkpoint
from .events import STATE_CHANGED, SkipCounter, iso_to_us, local_event, ts_to_us, us_to_iso
from .gaps import OpenGap
from .history_session import HistorySession, ReplyTooLargeError
from .live import LivePath
from .selflink import OwnEntities
from .state import US, CaptureSettings, CaptureState, PastStatesSink

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


# When the remote's clock was never measured (no live change seen yet), start this much earlier.
SKEW_ALLOWANCE = 60.0
# Home Assistant's default recorder commit interval (5 s) plus room for the write itself.
COMMIT_WAIT = 7.0
BACKLOG_POLLS = 60
BACKLOG_POLL = 1.0
MAX_PASS_FAILURES = 3
RETRY_DELAY = 10.0
REPLY_LIMIT = 8 * 1024 * 1024
ISSUE_BACKFILL = "backfill_incomplete"

type GapClosedListener = Callable[[int, int], None]
type Spawn = Callable[[Coroutine[Any, Any, None], str], None]


class GapRecovery:
    """Opens, recovers and closes the gaps of one link (the backfill runs as a spawned task)."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        settings: CaptureSettings,
        state: CaptureState,
        *,
        connection: ConnectionConfig,
        checkpoint: Checkpoint,
        skips: SkipCounter,
        live: LivePath,
        own: OwnEntities | None,
        spawn: Spawn,
        on_gap_closed: GapClosedListener | None,
        on_changed: Callable[[], None],
        held: Callable[[], Iterable[str]] | None = None,
        past: PastStatesSink | None = None,
        fire_past: bool = False,
    ) -> None:
        """`connection`: the live link's (the history session opens its own with it).

        `held`: the remote entities held here another way (mirror/: every mirrored entity,
        registered or not on the remote): always in a gap's entity list.

        `on_gap_closed`: told each closed gap's span (start, end) on the remote's clock (µs).
        `on_changed`: what users see changed: the link is back (an outage ended), or a gap was
        closed (the totals, the outage's recovery).
        """
        self.hass = hass
        self.entry = entry
        self.settings = settings
        self.state = state
        self.checkpoint = checkpoint
        self.skips = skips
        self.own = own
        self.on_gap_closed = on_gap_closed
        self._held = held
        self.past = past
        self.fire_past = fire_past
        self._live = live
        self._spawn = spawn
        self._on_changed = on_changed
        self.history_available: bool | None = None
        self.backfill_running = False
        self.requests = 0
        self.recorder_backlog_max = 0
        self.sentinel_polls = 0
        self._connected_mono = 0.0
        self._epoch = 0
        self._backfill_lock = asyncio.Lock()
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self.session = HistorySession(async_get_clientsession(hass), connection, REPLY_LIMIT)

    async def async_close(self) -> None:
        """Close the history session (idempotent; a backfill opens it again when needed)."""
        await self.session.close()

    # ------------------------------------------------------------------ gaps

    @callback
    def on_snapshot(self, snapshot: LinkSnapshot) -> None:
        """The link came back (work on the open gap) or was lost (open one, unless one is)."""
        connected = snapshot.state is LinkState.CONNECTED
        if connected and not self.state.connected:
            self.state.connected = True
            self._epoch += 1
            self._connected_mono = time.monotonic()
            self.state.after_connect = []
            if (gap := self.state.gap) is not None:
                # The link's return (subscriptions confirmed): the outage users see ends here,
                # and is shown at once; its recovery when the gap is closed.
                gap.back_at = _epoch(snapshot.last_connected)
                self.state.last_outage = gap.outage()
                self._on_changed()
                self._start_recovery(gap)
        elif not connected and self.state.connected:
            self.state.connected = False
            seen = snapshot.last_seen
            last_seen = None if seen is None else seen.timestamp()
            lost = _epoch(snapshot.last_disconnected)
            if self.state.gap is None:
                self.open_gap(lost, last_seen=last_seen)
            else:  # lost again while its gap is recovered: the same gap, a new outage
                self.state.gap.lost_again(lost, last_seen)

    def open_gap(
        self, lost_at: float, *, margin: bool = True, last_seen: float | None = None
    ) -> OpenGap:
        """A gap from `lost_at`, reaching back the detection margin (a loss is seen late).

        `last_seen`: the remote's last sign of life before it (local wall clock), where the
        outage users see begins.
        """
        back = int(self.settings.detection_margin * US) if margin else 0
        known = [] if self.state.remote_us is None else [self.state.remote_us]
        if self.state.offset_us is not None:
            known.append(int(lost_at * US) + self.state.offset_us)
        # Never measured: start early enough for any plausible clock difference.
        start = max(known) if known else int((lost_at - SKEW_ALLOWANCE) * US)
        start -= back
        self.state.gap = OpenGap(start_us=start, lost_at=lost_at, last_seen=last_seen)
        self.state.hold = self.settings.backfill_enabled and self.history_available is not False
        self.checkpoint.schedule()
        return self.state.gap

    def _start_recovery(self, gap: OpenGap) -> None:
        if not self.settings.backfill_enabled or self.history_available is False:
            if self.settings.backfill_enabled:
                gap.error = "remote has no history"
                gap.unrecoverable.append(
                    (us_to_iso(gap.start_us), us_to_iso(self.state.remote_now_us()))
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
            self.state.remote_us is None or gap.resume_us > self.state.remote_us
        ):
            self.state.remote_us = gap.resume_us  # complete at least up to the newest change read
        seen = self.state.seen
        for entity_id, values in gap.live.items():
            newest = max(values)
            if newest > seen.get(entity_id, -1):
                seen[entity_id] = newest
        now = time.time()
        record = gap.record(now, self.settings.event_types)
        self.state.gaps.append(record)
        self.state.last_outage = record.outage
        if self.past is not None and self.settings.backfill_enabled:
            # States first: queued before the statistics fill (told next) queues anything.
            offset = self.state.offset_us or 0
            self.past.gap_recovered(
                min(gap.start_us, gap.start_us - offset, int(gap.lost_at * US)),
                self.history_available is True and not gap.unrecoverable,
            )
        if self.on_gap_closed is not None:
            self.on_gap_closed(gap.start_us, self.state.remote_now_us())
        self.state.gap = None
        self.state.hold = False
        self._live.release_held()
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
        if (outage := record.outage) is not None:
            # The Last outage sensor's value and attributes, in the same words and digits.
            LOGGER.info("Gap of the link to %s closed: %s", self.entry.title, outage.describe())
        if gap.fired:
            LOGGER.info(
                "Recovered %d state changes missed while the link to %s was down",
                gap.fired,
                self.entry.title,
            )
        self.checkpoint.schedule()
        self._on_changed()

    @property
    def link_up(self) -> bool:
        """The live link is connected (read fresh: it changes while the backfill awaits)."""
        return self.state.connected

    # ------------------------------------------------------------------ backfill

    async def _recover(self) -> None:
        """Work on the open gap until the remote's history is known to cover it."""
        try:
            async with self._backfill_lock:
                await self._recover_locked()
        finally:
            self.backfill_running = False
            await self.session.close()

    async def _recover_locked(self) -> None:
        while (gap := self.state.gap) is not None and self.state.connected:
            epoch = self._epoch
            try:
                await self._backfill(gap)
            except NoHistoryError:
                LOGGER.warning(
                    "%s has no history (recorder/history not loaded): missed state changes "
                    "cannot be recovered; backfill is off for this link",
                    self.entry.title,
                )
                self.history_available = False
                gap.error = "remote has no history"
                gap.unrecoverable.append(
                    (us_to_iso(gap.start_us), us_to_iso(self.state.remote_now_us()))
                )
                self._close_gap(gap)
                return
            except HaClientError as err:
                if not self.link_up:
                    return  # the link is gone again: the same gap goes on at the next connection
                gap.failures += 1
                gap.error = str(err)
                LOGGER.warning(
                    "Backfill after the outage of %s failed (%d of %d): %s",
                    self.entry.title,
                    gap.failures,
                    MAX_PASS_FAILURES,
                    err,
                )
                if gap.failures >= MAX_PASS_FAILURES:
                    start = gap.resume_us if gap.resume_us is not None else gap.start_us
                    gap.unrecoverable.append(
                        (us_to_iso(start), us_to_iso(self.state.remote_now_us()))
                    )
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
        reader = HistoryReader(self._command, now_us=self.state.remote_now_us, seen=self.state.seen)
        # Right after the link came back: was the remote's recorder still behind then?
        initial = await self._backlog()
        busy = bool(initial)
        if initial:
            self.recorder_backlog_max = max(self.recorder_backlog_max, initial)
        entity_ids = await self._entity_ids(gap)
        floor = self.state.remote_now_us() - self.settings.max_window_us
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
                (
                    us_to_iso(begin),
                    us_to_iso(end if end is not None else self.state.remote_now_us()),
                )
            )
            gap.error = why
            gap.failures += 1

    async def _command(self, payload: dict[str, Any]) -> Any:
        self.requests += 1
        return await self.session.command(payload)

    async def _read(
        self, reader: HistoryReader, entity_ids: list[str], gap: OpenGap, start: int
    ) -> None:
        if not entity_ids:
            return
        dedup = Deduplicator(self.state.seen, gap.live)
        async for changes in reader.slices(entity_ids, start):
            if await fire_in_batches(changes, dedup, self._fire_backfilled):
                self.checkpoint.schedule()
            if self.past is not None:
                await self.past.flush()
            newest = changes.newest_us
            if newest is not None and (gap.resume_us is None or newest > gap.resume_us):
                gap.resume_us = newest
        if reader.rows_skipped:
            for _ in range(reader.rows_skipped):
                self.skips.skip("bad_history_row")
            reader.rows_skipped = 0

    def _fire_backfilled(self, change: Change) -> None:
        if self.state.gap is not None and self.state.gap.note_fired(change.updated_us):
            self.state.possible_duplicates += 1
        self.state.backfilled += 1
        new_state = change.new_state
        if (
            self.past is not None
            and self.past.record(
                change.entity_id,
                new_state["state"],
                new_state["attributes"],
                iso_to_us(new_state["last_changed"]) or change.updated_us,
                change.updated_us,
            )
            and not self.fire_past
        ):
            return  # stored once: as a past state of its mirror
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
        """What to ask history for: every entity seen here or held here, and the remote's registry.

        Held (`held`: the mirrors, registry entry on the remote or not) and seen (a change
        delivered here) come first: an entity the remote's registry does not list (YAML or
        template entities without a unique id, states set by scripts) is still recovered. Not
        `get_states` (the whole remote's states, attributes and all, in one message); the
        registry's display list is a few short fields per entity.
        """
        entity_ids = set(self.state.seen) | set(gap.live)
        if self._held is not None:
            entity_ids.update(self._held())
        try:
            reply = await self._command({"type": "config/entity_registry/list_for_display"})
        except ReplyTooLargeError:
            LOGGER.warning(
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
                # A mirror there (a link both ways) is not recovered as events here.
                if type(entity_id) is str and "." in entity_id and item.get("pl") != DOMAIN:
                    entity_ids.add(entity_id)
        if self.own is not None:
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
        candidates = [(e, lu) for e, lu in self.state.after_connect if e in reader.recorded]
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


def _epoch(moment: datetime | None) -> float:
    """A snapshot's time on the local wall clock (now when the engine has none)."""
    return time.time() if moment is None else moment.timestamp()


class RecorderBehindError(HaClientError):
    """The remote's recorder did not catch up in time: its history cannot cover the gap yet."""
