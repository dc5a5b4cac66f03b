"""The mirror orchestrator: one remote's entities as local, registry-backed entities of one entry.

It follows the engine and hands each part its work (one module per responsibility):

- `choice.py`: what to mirror (the entry's filter, the domains hosted here, never this instance);
- `updates.py`: each `subscribe_entities` message applied, at once or in slices, in order;
- `local_entities.py`: the local entities: identity, creation per platform, skips, removal;
- `fallback.py`: a remote without `subscribe_entities` (`get_states`, then `state_changed`);
- `past_states.py`: the changes recovered after an outage as the mirrors' recorded history (given
  to capture as its sink), `recorder_history.py` its recorder tasks;
- `gap_statistics.py`: the long-term statistics of mirrored sensors for each closed gap (given to
  capture as its `on_gap_closed` listener), `local_recorder.py` its local side;
- `entity.py`: one mirror entity; `platform.py`: the platform setup of every mirrored domain;
  `platforms.py`: which platforms are loaded (registered mirrors' at setup, others when needed).

Availability: a state the current subscription told; the link down (or the subscription not
confirmed) makes every mirrored entity `unavailable`, never deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import time
from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util.hass_dict import HassKey

from ..client import (  # noqa: TID252 - the package's engine
    EntitiesUpdate,
    LinkEngine,
    LinkSnapshot,
    RemoteState,
)
from ..const import (  # noqa: TID252 - the package's own constants
    CONF_BACKFILL_MAX_WINDOW,
    CONF_CONTROL,
    CONF_FORWARD_EVENTS,
    CONF_FORWARD_STATE_CHANGES,
    CONF_MIRROR_PREFIX,
    CONF_VERIFY_SSL,
)
from ..entry_tasks import end_tasks, entry_tasks  # noqa: TID252 - shared with capture
from ..remote_url import configuration_url  # noqa: TID252 - the remote's web address
from .choice import MIRROR_DOMAINS, MirrorChoice, default_prefix
from .control import RemoteControl, RemoteHttp
from .devices import RemoteDevices
from .entity import NativeMirror
from .fallback import StatesFallback
from .gap_statistics import GapStatisticsFiller
from .local_entities import LocalMirrors
from .past_states import RecoveredHistory
from .platforms import EntryPlatforms
from .remote_mirrors import RemoteMirrors
from .updates import SlicedUpdates

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252

# Per entry id, the spans it was unloading in, for its next setup in this process (a reload).
UNLOADS: HassKey[dict[str, list[tuple[float, float]]]] = HassKey("ha_ingestion_unloads")
UNLOADS_KEPT = 10


class EntityMirror:
    """Mirrors one remote's entities for one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        options: Mapping[str, Any],
        engine: LinkEngine,
        choice: MirrorChoice,
    ) -> None:
        """Read the options; nothing runs until `async_start()`.

        `choice`: what to mirror, as `engine` was configured with it.
        """
        self.hass = hass
        self.entry = entry
        self.engine = engine
        self.self_link = choice.self_link
        self.enabled = choice.enabled
        self.refused = choice.refused
        self.filter = choice.filter
        self.prefix = str(options[CONF_MIRROR_PREFIX]) or default_prefix(entry.title)
        self.forward_state_changes = bool(options[CONF_FORWARD_STATE_CHANGES])
        # The remote's mirrors matter when mirroring or capturing (none fired otherwise).
        self._recognise = self.enabled or bool(options[CONF_FORWARD_EVENTS])
        self._states: Mapping[str, RemoteState] = {}
        self._connected = False
        self._unsubs: list[CALLBACK_TYPE] = []
        self._tasks = entry_tasks(hass, entry)
        # The entry's loaded platforms; a mirrored domain's is loaded when a mirror needs it.
        self.platforms = EntryPlatforms(hass, entry, self._tasks)
        # Service calls on native mirrors, forwarded to the remote (or refused: option off).
        self.control = RemoteControl(
            engine,
            entry.title,
            enabled=bool(options.get(CONF_CONTROL, True)),
            remote_entity_id=self.remote_entity_id,
            http=RemoteHttp(
                session=async_get_clientsession(hass),
                base_url=configuration_url(entry.data[CONF_URL]).rstrip("/"),
                token=entry.data[CONF_ACCESS_TOKEN],
                verify_ssl=bool(entry.data.get(CONF_VERIFY_SSL, True)),
            ),
        )
        # Remote entities that are mirrors made by this integration: never mirrored back, their
        # changes never captured (capture's live path reads `remote_mirrors.entity_ids`).
        self.remote_mirrors = RemoteMirrors(
            engine, entry.title, self._tasks, on_read=self._on_registry_read
        )
        self.local = LocalMirrors(
            hass,
            entry,
            engine,
            choice,
            self.prefix,
            self._tasks,
            lambda: self._states,
            self.control,
            self.remote_mirrors,
            self.platforms.want if self.enabled else None,
        )
        # The remote's devices and areas as local devices, read at each connect.
        self.devices = RemoteDevices(
            hass, entry, engine, self.local, self._tasks, configuration_url(entry.data[CONF_URL])
        )
        self.local.devices = self.devices
        self.updates = SlicedUpdates(self.local, self._tasks)
        self.fallback = StatesFallback(engine, entry.title, self._on_entities, self._tasks)
        # Set by the first message of each connection (every current state known), cleared at
        # the loss: the statistics fill waits for it to know which mirrors have a state class.
        self.states_known = asyncio.Event()
        # Long-term statistics of mirrored sensors for each closed gap (capture's hook).
        self.gap_statistics = GapStatisticsFiller(
            hass, entry, self, engine, float(options[CONF_BACKFILL_MAX_WINDOW]) * 3600
        )
        # Recovered changes of mirrored entities as their recorded history (capture's sink).
        self.history = RecoveredHistory(hass, self)
        self.history.unloads = hass.data.setdefault(UNLOADS, {}).pop(entry.entry_id, [])

    # ------------------------------------------------------------------ lifecycle

    def setup_domains(self) -> set[str]:
        """The mirrored domains whose platforms setup loads: those of the registered mirrors.

        Call after `async_start` (which forgets the mirrors the options no longer want). Others
        are loaded late, when a remote entity of theirs is mirrored (`platforms.py`).
        """
        return self.local.registered_domains() if self.enabled else set()

    @property
    def remote_states(self) -> Mapping[str, RemoteState]:
        """The remote's current states as this connection told them (empty while down)."""
        return self._states

    def local_entity_id(self, remote_id: str) -> str | None:
        """The registered local entity id of a remote entity's mirror (the user's rename kept)."""
        return self.local.local_entity_id(remote_id)

    def held_remote_ids(self) -> set[str]:
        """Every remote entity mirrored here (registered ones too, before their platform is up)."""
        return self.local.held_remote_ids() if self.enabled else set()

    @property
    def link_down_mark(self) -> str:
        """The mark of this entry's link-down `unavailable` writes (their context ids)."""
        return self.local.link_down_mark

    def registered_entity_ids(self) -> list[str]:
        """The local entity ids of every registered mirror."""
        return self.local.registered_entity_ids()

    def remote_entity_id(self, entity_id: str) -> str | None:
        """The remote entity a local entity of this link mirrors (None: not one of its mirrors)."""
        for remote_id, entity in self.local.entities.items():
            if entity.entity_id == entity_id:
                return remote_id
        return None

    def is_mirrored(self, entity_id: str) -> bool:
        """A remote entity shown here as a local entity (or about to be: not classified yet)."""
        return entity_id in self.local.entities or entity_id in self.local.unclassified

    @callback
    def async_start(self) -> None:
        """Forget what the options no longer mirror; follow the link."""
        self.local.forget_unwanted()
        engine = self.engine
        # Also when not mirroring: capture skips the remote mirrors' changes.
        if self._recognise and not self.self_link:
            self._unsubs.append(engine.add_listener(self.remote_mirrors.on_snapshot))
        if not self.enabled:
            return
        self.gap_statistics.async_start()
        self._unsubs.append(engine.add_entities_listener(self._on_entities))
        self._unsubs.append(engine.add_listener(self._on_snapshot))
        self._unsubs.append(engine.add_event_listener(self.fallback.on_event))

    @callback
    def note_unloaded(self, began: float) -> None:
        """The entry unloaded (its mirrors removed) since `began`.

        Kept for the next setup in this process (a reload), whose gap's mend removes Home
        Assistant's `unavailable` writes of that span.
        """
        spans = self.hass.data.setdefault(UNLOADS, {}).setdefault(self.entry.entry_id, [])
        spans.append((began, time.time()))
        del spans[:-UNLOADS_KEPT]

    async def async_stop(self) -> None:
        """Stop following the link; cancel removal checks (idempotent)."""
        while self._unsubs:
            self._unsubs.pop()()
        await self.gap_statistics.async_stop()
        await end_tasks(self._tasks, "mirror")

    @callback
    def async_add_platform(
        self,
        domain: str,
        add_entities: AddConfigEntryEntitiesCallback,
        native: type[NativeMirror] | None = None,
    ) -> None:
        """A platform is set up: its registered mirrors now (unavailable until told), then news.

        `native`: the domain's native mirror class (None: read-only mirrors).
        """
        if not self.enabled:
            return
        self.local.add_platform(domain, add_entities, native)

    # ------------------------------------------------------------------ the link

    @callback
    def _on_entities(self, update: EntitiesUpdate) -> None:
        """One subscribe_entities message (from the reader): apply it; never raises.

        At once when it is small and nothing waits; else queued for the slicing worker.
        """
        self._states = update.states
        self.states_known.set()
        self.updates.add(update)

    @callback
    def _on_registry_read(self) -> None:
        if self.enabled:
            self.updates.release(self.local.classified())

    @callback
    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        connected = snapshot.connected
        self.local.connected = connected
        if self._connected and not connected:
            self.states_known.clear()
            self._states = {}
            self.fallback.link_lost()
            self.updates.link_lost()
        elif connected and not self._connected:
            self.devices.link_up()
            status = snapshot.entities
            if status is not None and status.unsupported:
                self.fallback.start()
        self._connected = connected

    # ------------------------------------------------------------------ diagnostics

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show."""
        local = self.local
        return {
            "enabled": self.enabled,
            "refused": self.refused,
            "domains": list(MIRROR_DOMAINS),
            **self.platforms.as_dict(),
            "prefix": self.prefix,
            "include": list(self.filter.include),
            "exclude": list(self.filter.exclude),
            "forward_state_changes": self.forward_state_changes,
            "entities": len(local.entities),
            "available": sum(1 for e in local.entities.values() if e.available),
            "waiting_for_platform": len(local.pending),
            "removed": local.removed,
            "filtered_here": local.filtered_here,
            "skipped": dict(local.skip_counts),
            "remote_mirrors": {
                **self.remote_mirrors.as_dict(),
                "waiting": len(local.unclassified),
            },
            "skipped_entities": {reason: dict(ids) for reason, ids in local.skipped.items()},
            "statistics": self.gap_statistics.as_dict(),
            "history": self.history.as_dict(),
            "control": self.control.as_dict(),
            "devices": self.devices.as_dict(),
        }
