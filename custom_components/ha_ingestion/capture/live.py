"""The live hot path: each remote event checked, filtered, queued, and fired locally.

Per event, from the reader (never raises): check the event (`events.check_*`; bad input is
skipped and counted), drop what a self-link would feed back (`selflink`) and what a link both ways
would echo (`is_echo`: a set lookup or a comparison per event), note the entity's newest
change, queue it. While a gap is open (`CaptureState.hold`), live state changes wait in `held` so
each entity's changes reach the bus in order; other event types go on, and the times of what was
delivered are kept in the gap so the backfill skips exactly those. A drain task fires queued events
as `ha_ingestion_event`; the queue is bounded in count and bytes, overflow is counted and logged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback

from ..const import (  # noqa: TID252 - the package's own constants and logger
    EVENT_INGESTED,
    LOGGER,
)
from .checkpoint import Checkpoint
from .events import (
    STATE_CHANGED,
    Rejected,
    SkipCounter,
    check_event,
    check_state_changed,
    local_event,
)
from .selflink import OwnEntities
from .state import CaptureSettings, CaptureState

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


QUEUE_SIZE = 10_000
QUEUE_BYTES = 32 * 1024 * 1024
DRAIN_BATCH = 256
LAST_BY_TYPE = 64
SENTINELS = 20  # live state changes remembered after each connect
CALL_SERVICE = "call_service"

type Queued = tuple[dict[str, Any], int]


class LivePath:
    """Forwards live remote events to the local bus through a bounded queue."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        settings: CaptureSettings,
        state: CaptureState,
        *,
        checkpoint: Checkpoint,
        skips: SkipCounter,
        own: OwnEntities | None,
        not_forwarded: Callable[[str], bool] | None,
        on_overflow: Callable[[], None],
        event_bytes: Callable[[], int] = lambda: 0,
        remote_mirrors: set[str] | None = None,
        remote_user_id: str | None = None,
    ) -> None:
        """`own`: this integration's entities when the remote is this instance (self-link).

        `not_forwarded`: state changes of these entities are not fired as events; they are
        bookkept as delivered (their local entity carries them), so backfill skips them alike.
        `on_overflow`: an event was dropped (`state.overflow` counts it).
        `event_bytes`: the wire size of the event being handed over (the engine's
        `message_bytes`), counted against the queue's byte budget.
        `remote_mirrors` (mirror/, kept current there): remote entities that are mirrors made by
        this integration; their state changes are never captured. `remote_user_id`: the link's
        token user on the remote; `call_service` events in its context (our forwarded calls) are
        never captured.
        """
        self.hass = hass
        self.entry = entry
        self.settings = settings
        self.state = state
        self.checkpoint = checkpoint
        self.skips = skips
        self.own = own
        self.not_forwarded = not_forwarded
        self.remote_mirrors: set[str] = remote_mirrors if remote_mirrors is not None else set()
        self.remote_user_id = remote_user_id
        self.echo_skipped = 0
        self._on_overflow = on_overflow
        self._event_bytes = event_bytes
        self.queue: deque[Queued] = deque()
        # Live state changes that wait while a gap is recovered (fired after its changes).
        self.held: deque[Queued] = deque()
        self.queue_size = QUEUE_SIZE
        self.queue_bytes_limit = QUEUE_BYTES
        self.queue_bytes = 0
        self.forwarded = 0
        self.self_skipped = 0
        self.last_by_type: dict[str, dict[str, Any]] = {}
        self._ready = asyncio.Event()
        self._overflow_logged = False

    # ------------------------------------------------------------------ self-link

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
            and self.own is not None
            and entity_id in self.own.entity_ids
        )

    # ------------------------------------------------------------------ link both ways

    def is_echo(self, event_type: str, entity_id: str | None, event: dict[str, Any]) -> bool:
        """What a link both ways would capture again: never captured.

        Events this integration fired (captured once already, on the remote), state changes of
        the remote's mirrors (captured, or mirrored, where they come from), and the remote's
        `call_service` events of our own forwarded calls.
        """
        if event_type == EVENT_INGESTED:
            return True
        if entity_id is not None:
            return entity_id in self.remote_mirrors
        if event_type == CALL_SERVICE and self.remote_user_id is not None:
            context = event.get("context")
            return type(context) is dict and context.get("user_id") == self.remote_user_id
        return False

    # ------------------------------------------------------------------ per event

    @callback
    def on_event(self, event: dict[str, Any]) -> None:
        """Hot path: one remote event. Never raises: bad input is skipped and counted."""
        try:
            event_type, data = check_event(event, self.settings.subscribed)
            if event_type == STATE_CHANGED:
                entity_id, updated = check_state_changed(data)
            else:
                entity_id, updated = None, None
        except Rejected as rejected:
            self.skips.skip(rejected.reason)
            return
        if event_type in self.last_by_type or len(self.last_by_type) < LAST_BY_TYPE:
            self.last_by_type[event_type] = event
        if self.own is not None and self._is_own(event_type, entity_id):
            self.self_skipped += 1
            return
        if self.is_echo(event_type, entity_id, event):
            self.echo_skipped += 1
            return
        state = self.state
        if updated is not None:
            state.note_remote_time(updated)
        forward = self.settings.forward
        if entity_id is not None and self.not_forwarded and self.not_forwarded(entity_id):
            queued = forward  # delivered as a local state: bookkept, not fired
        else:
            queued = forward and self._enqueue(
                event, self.held if state.hold and event_type == STATE_CHANGED else self.queue
            )
        if entity_id is None or updated is None:
            return
        if len(state.after_connect) < SENTINELS:
            state.after_connect.append((entity_id, updated))
        gap = state.gap
        if gap is None:
            if updated > state.seen.get(entity_id, -1):
                state.seen[entity_id] = updated
        elif queued:
            # Delivered live while the gap is open: the backfill must skip exactly this one.
            gap.live.setdefault(entity_id, set()).add(updated)
        self.checkpoint.schedule()

    def _enqueue(self, event: dict[str, Any], queue: deque[Queued]) -> bool:
        waiting = len(self.queue) + len(self.held)
        # Only counted when the drain is behind; an event into an empty queue is fired next.
        size = self._event_bytes() if waiting else 0
        if waiting >= self.queue_size or self.queue_bytes + size > self.queue_bytes_limit:
            self.state.overflow += 1
            self._on_overflow()
            if not self._overflow_logged:
                self._overflow_logged = True
                LOGGER.warning(
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

    def release_held(self) -> None:
        """The gap is closed: the held live changes go first (older than anything queued since)."""
        self.queue.extendleft(reversed(self.held))
        self.held.clear()
        self._ready.set()

    # ------------------------------------------------------------------ drain

    async def drain(self) -> None:
        """The drain task: fire queued events as `ha_ingestion_event` until cancelled."""
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
                LOGGER.info("Event queue drained; %d events dropped so far", self.state.overflow)
