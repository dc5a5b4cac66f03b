"""The capture orchestrator: builds the live path and the gap recovery, and owns their lifecycle.

What each part does: `live.py` (per event: check, self-link filter, bounded queue, drain),
`recovery.py` (the open gap, its backfill, the commit wait, repairs), `checkpoint.py` (the
durable state and its (de)serialisation), `state.py` (what the two paths share). Here: start
(restore the checkpoint, attach to the engine, start the drain), stop (detach, cancel, write the
checkpoint), and what the rest of the integration reads: `stats` (a frozen `CaptureStats`, with
listeners told when a gap closed) and, for a self-link, `own_event_filter`.

Data flows one way: capture gets the engine (`LinkEngine`) and its hooks (`not_forwarded`,
`on_gap_closed`) at construction; it knows nothing of the coordinator that reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
import dataclasses
from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import CALLBACK_TYPE, CoreState, HomeAssistant, callback

from ..client import LinkEngine  # noqa: TID252 - the package's engine
from ..const import CONF_REMOTE_USER_ID, LOGGER  # noqa: TID252 - the package's constants
from ..entry_tasks import end_tasks, entry_tasks  # noqa: TID252 - shared with the mirrors
from . import checkpoint as checkpoint_module
from .checkpoint import Checkpoint
from .events import SkipCounter
from .live import LivePath
from .recovery import GapClosedListener, GapRecovery
from .selflink import OwnEntities, remote_is_this_instance
from .state import CaptureSettings, CaptureState, PastStatesSink
from .stats import CaptureStats

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


# The Store's final write at Home Assistant's stop happens in one of these states.
_STOPPING = frozenset({CoreState.stopping, CoreState.final_write, CoreState.stopped})


class EventCapture:
    """Forwards remote events locally and recovers the state changes of every gap exactly once."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        engine: LinkEngine,
        options: dict[str, Any],
        *,
        not_forwarded: Callable[[str], bool] | None = None,
        on_gap_closed: GapClosedListener | None = None,
        held: Callable[[], Iterable[str]] | None = None,
        past: PastStatesSink | None = None,
        fire_past: bool = False,
        remote_mirrors: set[str] | None = None,
    ) -> None:
        """Read the capture options; nothing runs until `async_start()`.

        `not_forwarded` (mirror/): state changes of these entities are not fired as events (their
        local entity carries them). `on_gap_closed` (mirror/): told each closed gap's span
        (start, end) on the remote's clock (µs). `held` (mirror/): the remote entities mirrored
        here, always recovered after an outage (registry entry on the remote or not). `past`
        (mirror/): takes their recovered changes as past states (their recorded history); also
        fired as events only with `fire_past`. `remote_mirrors` (mirror/, kept current there):
        the remote's entities that are mirrors made by this integration, never captured.
        """
        self.hass = hass
        self.entry = entry
        self.engine = engine
        connection = engine.config.connection
        self.settings = CaptureSettings.from_options(tuple(connection.event_types), options)
        self.state = CaptureState()
        self.self_link = remote_is_this_instance(hass, entry.data[CONF_ACCESS_TOKEN])
        # Self-link: this integration's own entities, never captured.
        self.own = OwnEntities(hass) if self.self_link else None
        self.checkpoint = Checkpoint(hass, entry.entry_id)
        self.skips = SkipCounter(LOGGER, "remote events")
        self.live = LivePath(
            hass,
            entry,
            self.settings,
            self.state,
            checkpoint=self.checkpoint,
            skips=self.skips,
            own=self.own,
            not_forwarded=not_forwarded,
            on_overflow=self._on_overflow,
            event_bytes=lambda: engine.message_bytes,
            remote_mirrors=remote_mirrors,
            remote_user_id=entry.data.get(CONF_REMOTE_USER_ID),
        )
        self.recovery = GapRecovery(
            hass,
            entry,
            self.settings,
            self.state,
            connection=connection,
            checkpoint=self.checkpoint,
            skips=self.skips,
            live=self.live,
            own=self.own,
            spawn=self._spawn,
            on_gap_closed=on_gap_closed,
            on_changed=self._on_outage_changed,
            held=held,
            past=past,
            fire_past=fire_past,
        )
        self._stats = CaptureStats()
        self._stats_listeners: list[Callable[[], None]] = []
        self._stopped_cleanly = False
        self._unsubs: list[CALLBACK_TYPE] = []
        self._tasks = entry_tasks(hass, entry)

    # ------------------------------------------------------------------ lifecycle

    async def async_start(self) -> None:
        """Restore the checkpoint, attach to the link and start the drain task."""
        stored = await self.checkpoint.async_load(self._to_store)
        checkpoint_module.restore(
            self.state,
            self.settings,
            stored,
            open_gap=self.recovery.open_gap,
            title=self.entry.title,
        )
        if self.own is not None:
            self.own.async_start()
        self._unsubs.append(self.engine.add_event_listener(self.live.on_event))
        self._unsubs.append(self.engine.add_listener(self.recovery.on_snapshot))
        self._spawn(self.live.drain(), "drain")
        self._publish_stats()

    async def async_stop(self) -> None:
        """Detach, cancel the drain and any backfill, write the checkpoint (idempotent)."""
        while self._unsubs:
            self._unsubs.pop()()
        if self.own is not None:
            self.own.async_stop()
        await end_tasks(self._tasks, "capture")
        await self.recovery.async_close()
        self._stopped_cleanly = True
        await self.checkpoint.async_flush()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.start(coro, name)

    def _to_store(self) -> dict[str, Any]:
        snapshot = self.engine.snapshot()
        if snapshot.last_seen is not None:  # else: the one restored (not linked in this run)
            self.state.last_seen = snapshot.last_seen.timestamp()
        return checkpoint_module.to_store(
            self.state,
            self.settings,
            clean=self._stopped_cleanly or self.hass.state in _STOPPING,
            reconnects=self.state.reconnects_base + snapshot.reconnect_count,
        )

    # ------------------------------------------------------------------ what others read

    @property
    def stats(self) -> CaptureStats:
        """The totals as last published."""
        return self._stats

    @callback
    def add_stats_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call `listener()` when an outage ended or a gap closed; returns its remover."""
        self._stats_listeners.append(listener)
        return lambda: self._stats_listeners.remove(listener)

    @property
    def own_event_filter(self) -> Callable[[dict[str, Any]], bool] | None:
        """Self-link: what tells an event of this integration's own doing; None otherwise."""
        return self.is_own_event if self.self_link else None

    def is_own_event(self, event: dict[str, Any]) -> bool:
        """Self-link: an event of this integration's own doing (never raises on bad input)."""
        return self.live.is_own_event(event)

    @property
    def recovering(self) -> bool:
        """A gap is open (live events wait until the changes before them are fired)."""
        return self.state.gap is not None

    def _on_overflow(self) -> None:
        # No listener is told: a dropped event is a received one, published with the event
        # counters (throttled).
        self._stats = dataclasses.replace(self._stats, overflow=self.state.overflow)

    def _on_outage_changed(self) -> None:
        self._publish_stats()
        for listener in tuple(self._stats_listeners):
            listener()

    def _publish_stats(self) -> None:
        state = self.state
        self._stats = CaptureStats(
            backfilled=state.backfilled,
            last_outage=state.last_outage,
            overflow=state.overflow,
            reconnects_base=state.reconnects_base,
            backfill_available=(
                self.settings.backfill_enabled and self.recovery.history_available is not False
            ),
        )
