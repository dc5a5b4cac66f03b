"""Push coordinator: owns the supervisor, publishes link snapshots to entities, forwards events."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
import logging
from time import monotonic
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .client import ErrorCategory, LinkSnapshot, LinkState, Supervisor
from .const import DOMAIN, THROTTLE_SECONDS

if TYPE_CHECKING:
    from .data import HaIngestionConfigEntry

_LOGGER = logging.getLogger(__package__)

RATE_WINDOW = 60.0
REFRESH_INTERVAL = 5.0
ISSUE_LINK_FAILED = "link_failed"


@dataclass(frozen=True, kw_only=True)
class IngestionData:
    """What entities read: the engine snapshot plus what the HA layer derives from it."""

    snapshot: LinkSnapshot
    event_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # True when only the event counters moved: entities that do not follow events skip the write.
    counters_only: bool = False


class HaIngestionCoordinator(DataUpdateCoordinator[IngestionData]):
    """Fed by the supervisor: link changes are published at once, event counters at most 1/s."""

    config_entry: HaIngestionConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        supervisor: Supervisor,
    ) -> None:
        """Wrap `supervisor`; nothing runs until `async_start()`."""
        super().__init__(hass, _LOGGER, config_entry=entry, name=entry.title, update_interval=None)
        self.supervisor = supervisor
        self._unsubs: list[CALLBACK_TYPE] = []
        self._pending_publish: CALLBACK_TYPE | None = None
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._last_state: LinkState | None = None
        self._reauth_started = False
        self.extra: dict[str, Any] = {}
        self.data = self._build(supervisor.snapshot())

    # ------------------------------------------------------------------ lifecycle

    async def async_start(self) -> None:
        """Attach to the supervisor and start the link."""
        self._unsubs.append(self.supervisor.add_listener(self._on_snapshot))
        self._unsubs.append(self.supervisor.add_event_listener(self._on_event))
        self._unsubs.append(
            async_track_time_interval(
                self.hass,
                self._on_tick,
                timedelta(seconds=REFRESH_INTERVAL),
                name="ha_ingestion refresh",
                cancel_on_shutdown=True,
            )
        )
        await self.supervisor.start()

    async def async_stop(self) -> None:
        """Stop the link and every timer; idempotent."""
        while self._unsubs:
            self._unsubs.pop()()
        if self._pending_publish is not None:
            self._pending_publish()
            self._pending_publish = None
        await self.supervisor.close()

    # ------------------------------------------------------------------ publishing

    def _build(self, snapshot: LinkSnapshot, *, counters_only: bool = False) -> IngestionData:
        now = monotonic()
        samples = self._rate_samples
        samples.append((now, snapshot.events_received))
        while len(samples) > 1 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        rate: float | None = None
        first_time, first_count = samples[0]
        if now > first_time:
            rate = (snapshot.events_received - first_count) / (now - first_time) * 60.0
        elif snapshot.events_received == 0:
            rate = 0.0
        return IngestionData(
            snapshot=snapshot, event_rate=rate, extra=dict(self.extra), counters_only=counters_only
        )

    @callback
    def async_publish(self, snapshot: LinkSnapshot | None = None) -> None:
        """Publish `snapshot` (default: a fresh one) to every entity now."""
        if self._pending_publish is not None:
            self._pending_publish()
            self._pending_publish = None
        self.async_set_updated_data(self._build(snapshot or self.supervisor.snapshot()))

    @callback
    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        """Link state or schedule changed: publish at once."""
        state = snapshot.state
        if state is not self._last_state:
            self._last_state = state
            self._handle_state(snapshot)
        self.async_publish(snapshot)

    @callback
    def _on_event(self, event: dict[str, Any]) -> None:
        """One remote event (hot path): publish the counters at most once per second."""
        if self._pending_publish is None:
            self._pending_publish = async_call_later(
                self.hass, THROTTLE_SECONDS, self._throttled_publish
            )

    @callback
    def _throttled_publish(self, _now: Any) -> None:
        self._pending_publish = None
        self.async_set_updated_data(self._build(self.supervisor.snapshot(), counters_only=True))

    @callback
    def _on_tick(self, _now: Any) -> None:
        """Keep time-based values (rate, uptime, countdowns) current while nothing else happens."""
        if self._pending_publish is None:
            self.async_set_updated_data(self._build(self.supervisor.snapshot()))

    # ------------------------------------------------------------------ refresh on request

    async def _async_update_data(self) -> IngestionData:
        """A refresh someone asked for (`homeassistant.update_entity`): publish the current snapshot.

        Push coordinator: nothing is fetched, the engine's snapshot is always current.
        """
        return self._build(self.supervisor.snapshot())

    # ------------------------------------------------------------------ reactions

    def _handle_state(self, snapshot: LinkSnapshot) -> None:
        entry = self.config_entry
        if snapshot.state is LinkState.CONNECTED:
            self._reauth_started = False
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_LINK_FAILED}_{entry.entry_id}")
            self._update_device(snapshot)
            return
        if snapshot.state is not LinkState.FAILED:
            return
        error = snapshot.last_error
        if error is not None and error.category is ErrorCategory.AUTHENTICATION:
            if not self._reauth_started:
                self._reauth_started = True
                entry.async_start_reauth(self.hass)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{ISSUE_LINK_FAILED}_{entry.entry_id}",
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_LINK_FAILED,
            translation_placeholders={
                "name": entry.title,
                "attempts": str(snapshot.consecutive_failures),
                "error": error.message if error else "",
            },
            data={"entry_id": entry.entry_id},
        )

    def _update_device(self, snapshot: LinkSnapshot) -> None:
        remote = snapshot.remote
        if remote is None:
            return
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(identifiers={(DOMAIN, self.config_entry.entry_id)})
        if device is not None and device.sw_version != remote.version:
            registry.async_update_device(device.id, sw_version=remote.version)
