"""The integration set up through its real config flow in the test `hass`, linked to the real remote.

`link_factory(url)` runs the user step of the config flow against the shared remote (directly or
through a `FaultProxy`), checks the entry is created and loaded, sets small timings through the
options flow (which reloads the entry), and waits until the link's binary sensor is on. It returns
a `Link`: the entry, its entity ids, every `ha_ingestion_event` fired locally and every change of
the connected sensor (with monotonic times), and bounded waits whose failure messages carry the
link's state and the remote's log tail. Every entry is unloaded after the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import time
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import (
    CONF_ACCESS_TOKEN,
    CONF_URL,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify
import pytest

from custom_components.ha_ingestion.client import LinkSnapshot
from custom_components.ha_ingestion.const import (
    CONF_BASE_DELAY,
    CONF_EVENT_TYPES,
    CONF_FAILURE_THRESHOLD,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    CONF_JITTER,
    CONF_MAX_DELAY,
    CONF_MIRROR_ENTITIES,
    CONF_RECOVERY_TIMEOUT,
    CONF_VERIFY_SSL,
    DOMAIN,
    EVENT_INGESTED,
)
from custom_components.ha_ingestion.data import HaIngestionConfigEntry
from custom_components.ha_ingestion.engine_config import options_with_defaults
from custom_components.ha_ingestion.options_flow import sectioned
from tests.e2e.helpers import PING_EVENT
from tests.harness import RemoteHass

HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TIMEOUT = 2.0
MAX_DELAY = 2.0
# Small timings for speed, set through the options flow; a breaker that does not get in the way.
# Mirroring (on by default) is off for the capture proofs, which count every state change as an
# event; `link_factory(..., mirror_entities=True)` turns it on.
E2E_OPTIONS: dict[str, Any] = {
    CONF_MIRROR_ENTITIES: False,
    CONF_EVENT_TYPES: ["state_changed", PING_EVENT],
    CONF_HEARTBEAT_INTERVAL: HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT: HEARTBEAT_TIMEOUT,
    CONF_BASE_DELAY: 0.2,
    CONF_MAX_DELAY: MAX_DELAY,
    CONF_JITTER: False,
    CONF_FAILURE_THRESHOLD: 50,
    CONF_RECOVERY_TIMEOUT: 1.0,
}
CONNECT_TIMEOUT = 30.0


@dataclass
class Link:
    """One config entry of the integration linked to the real remote, and what it did locally."""

    hass: HomeAssistant
    remote: RemoteHass
    entry: HaIngestionConfigEntry
    slug: str
    events: list[dict[str, Any]] = field(default_factory=list)
    # (monotonic time, state) of every write of the connected binary sensor that changed it.
    transitions: list[tuple[float, str]] = field(default_factory=list)
    _unsubs: list[CALLBACK_TYPE] = field(default_factory=list)

    # ------------------------------------------------------------------ entities

    @property
    def connected_id(self) -> str:
        """binary_sensor.<slug>_connected."""
        return f"binary_sensor.{self.slug}_connected"

    @property
    def connection_state_id(self) -> str:
        """sensor.<slug>_connection_state."""
        return f"sensor.{self.slug}_connection_state"

    def state_of(self, entity_id: str) -> str | None:
        """An entity's state (None if it does not exist)."""
        state = self.hass.states.get(entity_id)
        return None if state is None else state.state

    @property
    def connected(self) -> bool:
        """The connected binary sensor is on."""
        return self.state_of(self.connected_id) == STATE_ON

    def snapshot(self) -> LinkSnapshot:
        """The engine's snapshot of the loaded entry."""
        snapshot: LinkSnapshot = self.entry.runtime_data.coordinator.engine.snapshot()
        return snapshot

    # ------------------------------------------------------------------ listening

    def listen(self) -> None:
        """Collect every ha_ingestion_event of this entry and every change of the sensor."""

        @callback
        def on_ingested(event: Event) -> None:
            if event.data.get("entry_id") == self.entry.entry_id:
                self.events.append({**event.data, "_received": time.monotonic()})

        @callback
        def on_state(event: Event[EventStateChangedData]) -> None:
            if event.data.get("entity_id") != self.connected_id:
                return
            new = event.data.get("new_state")
            value = new.state if new is not None else "removed"
            if not self.transitions or self.transitions[-1][1] != value:
                self.transitions.append((time.monotonic(), value))

        self._unsubs.append(self.hass.bus.async_listen(EVENT_INGESTED, on_ingested))
        self._unsubs.append(self.hass.bus.async_listen(EVENT_STATE_CHANGED, on_state))

    def first_after(self, since: float, state: str) -> float | None:
        """When the connected sensor first became `state` at or after `since`."""
        return next((at for at, value in self.transitions if at >= since and value == state), None)

    # ------------------------------------------------------------------ bounded waits

    def describe(self) -> str:
        """The link's state for a failure message, with the remote's log tail."""
        lines = [
            f"{self.connected_id}={self.state_of(self.connected_id)} "
            f"{self.connection_state_id}={self.state_of(self.connection_state_id)} "
            f"entry={self.entry.state}"
        ]
        if self.entry.state is ConfigEntryState.LOADED:
            snap = self.snapshot()
            lines.append(
                f"engine: {snap.state}, last error {snap.last_error}, "
                f"attempts {snap.attempts_total}, reconnects {snap.reconnect_count}"
            )
        now = time.monotonic()
        lines.append(
            "sensor transitions: "
            + str([(round(at - now, 2), value) for at, value in self.transitions[-8:]])
        )
        lines.append(self.remote.log_tail(30))
        return "\n".join(lines)

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.02
    ) -> float:
        """Wait (bounded) until `predicate()`; return the seconds it took."""
        began = time.monotonic()
        while not predicate():
            if time.monotonic() - began > timeout:
                raise AssertionError(f"{what}: not within {timeout:g} s\n{self.describe()}")
            await asyncio.sleep(poll)
        return time.monotonic() - began

    async def wait_connected(self, timeout: float = CONNECT_TIMEOUT) -> float:
        """Wait until the connected binary sensor is on."""
        return await self.wait_until(lambda: self.connected, timeout, f"{self.connected_id} on")

    async def wait_disconnected(self, timeout: float) -> float:
        """Wait until the connected binary sensor is off."""
        return await self.wait_until(
            lambda: self.state_of(self.connected_id) == STATE_OFF,
            timeout,
            f"{self.connected_id} off",
        )

    async def wait_event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Wait until an ha_ingestion_event matching `match` has been fired locally."""
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            found.extend(e for e in self.events if match(e))
            return bool(found)

        await self.wait_until(arrived, timeout, what)
        return found[0]

    # ------------------------------------------------------------------ teardown

    async def unload(self) -> None:
        """Stop listening and unload the entry (idempotent)."""
        while self._unsubs:
            self._unsubs.pop()()
        if self.entry.state is ConfigEntryState.LOADED:
            assert await self.hass.config_entries.async_unload(self.entry.entry_id)
        await self.hass.async_block_till_done()


type LinkFactory = Callable[..., Awaitable[Link]]


async def _configure_options(
    hass: HomeAssistant, entry: HaIngestionConfigEntry, extra: dict[str, Any] | None = None
) -> None:
    """Set the small timings (and `extra`) through the options flow; saving reloads the entry."""
    options = {**E2E_OPTIONS, **(extra or {})}
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM, result
    # The form is sectioned and shows every option: the current ones, with these changed.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        user_input=sectioned(options_with_defaults({**entry.options, **options})),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    for key, value in options.items():
        assert entry.options[key] == value, (key, entry.options)


@pytest.fixture
async def link_factory(
    hass: HomeAssistant, remote: RemoteHass, socket_enabled: None
) -> AsyncIterator[LinkFactory]:
    """Link the integration to the remote through the config flow; unload everything after."""
    links: list[Link] = []

    async def factory(url: str | None = None, **options: Any) -> Link:
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        assert result["type"] is FlowResultType.FORM, result
        assert result["step_id"] == "user"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_URL: url or remote.url,
                CONF_ACCESS_TOKEN: remote.token or "",
                CONF_VERIFY_SSL: True,
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, (
            f"config flow did not create the entry: {result}\n{remote.log_tail(30)}"
        )
        assert result["title"] == remote.name
        entry: HaIngestionConfigEntry = result["result"]
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED, entry.state
        link = Link(hass, remote, entry, slugify(entry.title))
        links.append(link)
        registry = er.async_get(hass)
        assert registry.async_get_entity_id(
            "binary_sensor", DOMAIN, f"{entry.unique_id}_connected"
        ) == (link.connected_id)
        await _configure_options(hass, entry, options)
        assert entry.state is ConfigEntryState.LOADED, entry.state
        link.listen()
        await link.wait_connected()
        return link

    yield factory
    for link in links:
        await link.unload()
