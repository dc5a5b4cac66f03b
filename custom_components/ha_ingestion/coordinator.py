"""Push coordinator: owns the engine's run; publishes link snapshots and capture's totals."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .capture import CaptureStats
from .client import ErrorCategory, LinkEngine, LinkSnapshot, LinkState, TokenGate
from .const import CONF_REJECTED_TOKEN, DOMAIN, LOGGER, THROTTLE_SECONDS
from .issues import set_entry_issue
from .token_gate import remember_rejected

if TYPE_CHECKING:
    from .capture import EventCapture
    from .data import HaIngestionConfigEntry


RATE_WINDOW = 60.0
REFRESH_INTERVAL = 5.0
ISSUE_LINK_FAILED = "link_failed"
ISSUE_FORBIDDEN = "forbidden"
ISSUE_SUBSCRIPTION_REFUSED = "subscription_refused"
ISSUE_MIRROR_REFUSED = "mirror_refused"


@dataclass(frozen=True, kw_only=True)
class IngestionData:
    """What entities read: the engine snapshot, capture's totals, what the HA layer derives."""

    snapshot: LinkSnapshot
    event_rate: float | None = None
    # The engine's counts without the events a self-link ignores (its own entities' changes):
    # counting those would change the counters again, a loop.
    events_received: int = 0
    last_event_time: datetime | None = None
    capture: CaptureStats = field(default_factory=CaptureStats)
    # True when only the event counters moved: entities that do not follow events skip the write.
    counters_only: bool = False


class HaIngestionCoordinator(DataUpdateCoordinator[IngestionData]):
    """Fed by the engine: link changes are published at once, event counters at most 1/s.

    Capture's totals are read from `capture.stats` at each build, and published at once when
    capture says a gap closed.
    """

    config_entry: HaIngestionConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        engine: LinkEngine,
        capture: EventCapture,
        token_gate: TokenGate,
    ) -> None:
        """Wrap `engine` and read `capture`; nothing runs until `async_start()`.

        `token_gate`: the entry's token gate; a rejection any connection meets is remembered in
        the entry and starts reauth.
        """
        super().__init__(hass, LOGGER, config_entry=entry, name=entry.title, update_interval=None)
        self.engine = engine
        self._gate = token_gate
        self._capture = capture
        # The reconnect loop runs as the entry's background task: tracked (and, if it ever
        # outlives an unload, cancelled) by Home Assistant.
        engine.task_factory = lambda coro, name: entry.async_create_background_task(
            hass, coro, name
        )
        self._forbidden = False
        self._refused: tuple[str, ...] = ()
        self._entities_refused: str | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._pending_publish: CALLBACK_TYPE | None = None
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._last_state: LinkState | None = None
        # Self-link: events that are this integration's own doing (capture tells them).
        self._ignore_event: Callable[[dict[str, Any]], bool] | None = capture.own_event_filter
        self.ignored = 0
        self._ignored_last: datetime | None = None
        self.data = self._build(engine.snapshot())

    # ------------------------------------------------------------------ lifecycle

    async def async_start(self) -> None:
        """Attach to the engine and start the link (or stay `failed` if it already is)."""
        self._unsubs.append(self._gate.add_listener(self._token_rejected))
        self._unsubs.append(self.engine.add_listener(self._on_snapshot))
        self._unsubs.append(self.engine.add_event_listener(self._on_event))
        self._unsubs.append(self._capture.add_stats_listener(self.async_publish))
        self._unsubs.append(
            async_track_time_interval(
                self.hass,
                self._on_tick,
                timedelta(seconds=REFRESH_INTERVAL),
                name="ha_ingestion refresh",
                cancel_on_shutdown=True,
            )
        )
        self._on_snapshot(self.engine.snapshot())  # a link failed before it started
        await self.engine.start()

    async def async_reconnect(self) -> None:
        """An attempt now (button, repair), unless it would send a token the remote rejected."""
        if self._gate.closed:
            self.config_entry.async_start_reauth(self.hass)
            return
        await self.engine.reconnect()

    async def async_stop(self) -> None:
        """Stop the link and every timer; idempotent."""
        while self._unsubs:
            self._unsubs.pop()()
        if self._pending_publish is not None:
            self._pending_publish()
            self._pending_publish = None
        await self.engine.close()
        if self._forbidden:
            self._forbidden = False
            set_entry_issue(self.hass, self.config_entry, ISSUE_FORBIDDEN, None)
        if self._refused:
            self._refused = ()
            set_entry_issue(self.hass, self.config_entry, ISSUE_SUBSCRIPTION_REFUSED, None)
        if self._entities_refused is not None:
            self._entities_refused = None
            set_entry_issue(self.hass, self.config_entry, ISSUE_MIRROR_REFUSED, None)

    # ------------------------------------------------------------------ publishing

    async def _async_update_data(self) -> IngestionData:
        """A refresh (e.g. `homeassistant.update_entity`): the engine's snapshot of now."""
        return self._build(self.engine.snapshot())

    def _build(self, snapshot: LinkSnapshot, *, counters_only: bool = False) -> IngestionData:
        now = monotonic()
        received = snapshot.events_received - self.ignored
        samples = self._rate_samples
        samples.append((now, received))
        while len(samples) > 1 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        rate: float | None = None
        first_time, first_count = samples[0]
        if now > first_time:
            rate = (received - first_count) / (now - first_time) * 60.0
        elif received == 0:
            rate = 0.0
        last = snapshot.last_event_time
        if self.ignored and last is not None and last == self._ignored_last:
            last = self.data.last_event_time  # the newest event was an ignored one
        return IngestionData(
            snapshot=snapshot,
            event_rate=rate,
            events_received=received,
            last_event_time=last,
            capture=self._capture.stats,
            counters_only=counters_only,
        )

    @callback
    def async_publish(self, snapshot: LinkSnapshot | None = None) -> None:
        """Publish `snapshot` (default: a fresh one) to every entity now."""
        if self._pending_publish is not None:
            self._pending_publish()
            self._pending_publish = None
        self.async_set_updated_data(self._build(snapshot or self.engine.snapshot()))

    @callback
    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        """Link state or schedule changed: publish at once."""
        state = snapshot.state
        if state is not self._last_state:
            self._last_state = state
            self._handle_state(snapshot)
        self._handle_forbidden(snapshot)
        self._handle_refused(snapshot)
        self._handle_entities_refused(snapshot)
        self.async_publish(snapshot)

    @callback
    def _on_event(self, event: dict[str, Any]) -> None:
        """One remote event (hot path): publish the counters at most once per second."""
        if self._ignore_event is not None and self._ignore_event(event):
            self.ignored += 1
            self._ignored_last = self.engine.snapshot().last_event_time
            return
        if self._pending_publish is None:
            self._pending_publish = async_call_later(
                self.hass, THROTTLE_SECONDS, self._throttled_publish
            )

    @callback
    def _throttled_publish(self, _now: Any) -> None:
        self._pending_publish = None
        self.async_set_updated_data(self._build(self.engine.snapshot(), counters_only=True))

    @callback
    def _on_tick(self, _now: Any) -> None:
        """Keep time-based values (rate, uptime, countdowns) current while nothing else happens."""
        if self._pending_publish is None:
            self.async_set_updated_data(self._build(self.engine.snapshot()))

    # ------------------------------------------------------------------ reactions

    def _handle_state(self, snapshot: LinkSnapshot) -> None:
        entry = self.config_entry
        if snapshot.state is LinkState.CONNECTED:
            # A new token worked: forget the old one (unless another connection has just met
            # this one's rejection: the link authenticated before it).
            if CONF_REJECTED_TOKEN in entry.data and not self._gate.closed:
                data = {k: v for k, v in entry.data.items() if k != CONF_REJECTED_TOKEN}
                self.hass.config_entries.async_update_entry(entry, data=data)
            set_entry_issue(self.hass, entry, ISSUE_LINK_FAILED, None)
            self._update_device(snapshot)
            return
        if snapshot.state is not LinkState.FAILED:
            return
        error = snapshot.last_error
        if error is not None and error.category is ErrorCategory.AUTHENTICATION:
            # Also an HTTP 401 at the upgrade (the token itself was not judged): the gate closes
            # all the same, so the link and the durable state never disagree.
            if self._gate.closed:
                self._token_rejected()
            else:
                self._gate.close()  # its listener: `_token_rejected`
            return
        set_entry_issue(
            self.hass,
            entry,
            ISSUE_LINK_FAILED,
            ir.IssueSeverity.ERROR,
            {
                "name": entry.title,
                "attempts": str(snapshot.consecutive_failures),
                "error": error.message if error else "",
            },
            fixable=True,
        )

    @callback
    def _token_rejected(self) -> None:
        """The remote rejected the entry's token (on any connection): remember it, start reauth.

        Remembered durably: after a restart or a reload this token is never sent again (each
        failed login counts towards the remote's IP ban), until the user gives another. Reauth
        is started when the gate closes and when the link stops on it: Home Assistant starts
        one flow at most (and none while a reconfigure flow is open, hence the second time).
        """
        remember_rejected(self.hass, self.config_entry)
        self.config_entry.async_start_reauth(self.hass)

    def _handle_forbidden(self, snapshot: LinkSnapshot) -> None:
        """HTTP 403 at the upgrade: a repair that explains the ban or the proxy, until connected."""
        error = snapshot.last_error
        forbidden = (
            snapshot.state is not LinkState.CONNECTED
            and error is not None
            and error.category is ErrorCategory.FORBIDDEN
        )
        if forbidden == self._forbidden:
            return
        self._forbidden = forbidden
        set_entry_issue(
            self.hass,
            self.config_entry,
            ISSUE_FORBIDDEN,
            ir.IssueSeverity.ERROR if forbidden else None,
            {"remote": self.config_entry.title},
        )

    def _handle_refused(self, snapshot: LinkSnapshot) -> None:
        """Subscriptions the remote refused: a repair naming them while the link runs without."""
        if not snapshot.connected:
            return  # decided on each connection
        refused = snapshot.refused_subscriptions
        if refused == self._refused:
            return
        self._refused = refused
        if not refused:
            set_entry_issue(self.hass, self.config_entry, ISSUE_SUBSCRIPTION_REFUSED, None)
            return
        reasons = {s.event_type: s.refused for s in snapshot.subscriptions if s.refused}
        set_entry_issue(
            self.hass,
            self.config_entry,
            ISSUE_SUBSCRIPTION_REFUSED,
            ir.IssueSeverity.WARNING,
            {
                "remote": self.config_entry.title,
                "event_types": ", ".join(refused),
                "error": "; ".join(f"{t}: {reasons[t]}" for t in refused),
            },
        )

    def _handle_entities_refused(self, snapshot: LinkSnapshot) -> None:
        """The entity states for the mirrors refused (not unknown: that one has a fallback)."""
        status = snapshot.entities
        if not snapshot.connected or status is None:
            return  # decided on each connection; None: not mirroring
        refused = None if status.unsupported else status.refused
        if refused == self._entities_refused:
            return
        self._entities_refused = refused
        set_entry_issue(
            self.hass,
            self.config_entry,
            ISSUE_MIRROR_REFUSED,
            None if refused is None else ir.IssueSeverity.WARNING,
            {"remote": self.config_entry.title, "error": refused or ""},
        )

    def _update_device(self, snapshot: LinkSnapshot) -> None:
        remote = snapshot.remote
        if remote is None:
            return
        registry = dr.async_get(self.hass)
        own = (DOMAIN, self.config_entry.entry_id)
        for device in dr.async_entries_for_config_entry(registry, self.config_entry.entry_id):
            if own in device.identifiers and device.sw_version != remote.version:
                registry.async_update_device(device.id, sw_version=remote.version)
