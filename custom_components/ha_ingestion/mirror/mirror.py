"""The mirror orchestrator: `subscribe_entities` updates become local, registry-backed entities.

- Which: the entry's `EntityFilter` (sent to the remote, so excluded entities never cross the
  wire; checked here again) and a domain this integration can host (`MIRROR_DOMAINS`).
- Identity: unique id `<entry unique id>_mirror:<remote entity id>` (the entry's unique id is the
  remote instance's), suggested entity id `<domain>.<prefix>_<object id>`; the registry keeps it
  (and every user customization) across restarts, reloads and reconnects.
- Availability: a state the current subscription told; the link down (or the subscription not
  confirmed) makes every mirrored entity `unavailable`, never deleted. The first message of each
  new subscription holds every current state: entities it does not hold stay unavailable.
- Removal: only after the remote's `r` AND its entity registry confirms the entity is gone
  (`config/entity_registry/get` answers `not_found`): an integration reloading on the remote
  removes states for a moment, its entities stay registered there, so they stay here too.
- Big messages (the first one of a subscription holds every state: 20,000 entities on a big
  remote) are applied in slices (`slices.Slices`), yielding to the event loop between them, in
  message order; a small one with nothing waiting is applied at once. A link lost meanwhile
  drops what is still waiting (the next subscription's first message tells it all again), and
  makes every mirror unavailable the same way: in slices when they are many.
- A remote without `subscribe_entities` (`unknown_command`): `get_states` once per connection,
  then the `state_changed` events of the link (when subscribed), an older change never
  overwriting a newer one.
- Long-term statistics for an outage: `statistics.py` fills them from the remote's when capture
  closes a gap (given to capture as its `on_gap_closed` listener).
- Bad input (an entity id invalid here, an unsupported domain, attributes the recorder would not
  store, an entity id taken by a local entity) is a counted skip, logged once per entity, listed
  in diagnostics; never a crash, never an overwrite.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_ACCESS_TOKEN, MAX_LENGTH_STATE_ENTITY_ID
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback, valid_entity_id
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import slugify
import orjson

from ..capture.selflink import remote_is_this_instance  # noqa: TID252 - one self-link rule
from ..client import (  # noqa: TID252 - the package's engine
    EntitiesUpdate,
    EntityFilter,
    EntityStates,
    HaClientError,
    HaCommandError,
    LinkEngine,
    LinkSnapshot,
    RemoteState,
    compress_state,
)
from ..compat import ENTITY_LIMIT, enabled_entities  # noqa: TID252 - release differences
from ..const import (  # noqa: TID252 - the package's own constants
    CONF_BACKFILL_MAX_WINDOW,
    CONF_FORWARD_STATE_CHANGES,
    CONF_MIRROR_ENTITIES,
    CONF_MIRROR_EXCLUDE,
    CONF_MIRROR_INCLUDE,
    CONF_MIRROR_PREFIX,
    DOMAIN,
    LOGGER,
)
from ..slices import SLICE_ITEMS, Slices  # noqa: TID252 - long work in slices
from .entity import MirrorEntity, mirror_class
from .statistics import StatisticsFiller

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


# Domains whose entity component hosts other integrations' platform entities and whose every
# entity service a read-only mirror refuses cleanly, on every release supported: gated by a
# feature flag (a mirror's `supported_features` is None: `ServiceNotSupported`), or calling an
# entity method by name that `MirrorEntity` refuses (tests/mirror/test_domains.py checks both);
# nothing else in the domain calls into its entities' internals. Left out (README "Which
# domains, and why"): light, humidifier, number, text, update (their services are functions that
# read typed entity properties), date, time, datetime (a function, not a method by name),
# vacuum (its `get_segments` command tests a flag in None), media_player (its image proxy and
# browse command call the entity), device_tracker (a state of the remote's zones), camera,
# image, calendar, todo & co. (views of the entity), and no-platform ones (input_*, script...).
MIRROR_DOMAINS: tuple[str, ...] = (
    "alarm_control_panel",
    "binary_sensor",
    "button",
    "climate",
    "cover",
    "event",
    "fan",
    "lawn_mower",
    "lock",
    "notify",
    "remote",
    "scene",
    "select",
    "sensor",
    "siren",
    "switch",
    "valve",
    "water_heater",
    "weather",
)
UNIQUE_MARK = "mirror:"
# The recorder stores no attributes above this size (recorder/const.py MAX_STATE_ATTRS_BYTES).
MAX_ATTRIBUTES_BYTES = 16384
SKIPPED_KEPT = 20  # entity ids listed per skip reason in diagnostics
NOT_FOUND = "not_found"


def mirror_filter(options: Mapping[str, Any]) -> EntityFilter:
    """What to ask the remote for: the options' patterns; no include = the domains mirrored here.

    Other domains are only asked for when an include names them (then counted as skipped).
    """
    return EntityFilter(
        include=tuple(options[CONF_MIRROR_INCLUDE]) or MIRROR_DOMAINS,
        exclude=tuple(options[CONF_MIRROR_EXCLUDE]),
    )


def default_prefix(title: str) -> str:
    """The entity-id prefix from the remote's name."""
    return slugify(title) or "remote"


@dataclass(frozen=True, kw_only=True)
class MirrorChoice:
    """Whether to mirror, and which entities: decided before the engine exists (it asks for them)."""

    enabled: bool
    refused: str | None
    filter: EntityFilter
    self_link: bool

    @classmethod
    def from_options(
        cls, hass: HomeAssistant, entry: HaIngestionConfigEntry, options: Mapping[str, Any]
    ) -> MirrorChoice:
        """Decide from the entry's options (and whether the remote is this instance)."""
        wanted = bool(options[CONF_MIRROR_ENTITIES])
        self_link = remote_is_this_instance(hass, entry.data[CONF_ACCESS_TOKEN])
        try:
            entity_filter = mirror_filter(options)
        except ValueError as err:  # options edited by hand: the flow never saves such patterns
            LOGGER.warning("Not mirroring entities of %s: %s", entry.title, err)
            return cls(
                enabled=False,
                refused="invalid_patterns",
                filter=EntityFilter(),
                self_link=self_link,
            )
        # A link to this instance itself would mirror its own entities into themselves.
        return cls(
            enabled=wanted and not self_link,
            refused="self_link" if wanted and self_link else None,
            filter=entity_filter,
            self_link=self_link,
        )

    @property
    def entities(self) -> EntityFilter | None:
        """What the engine subscribes to for the mirrors (None: not mirroring)."""
        return self.filter if self.enabled else None


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
        self.unique_base = f"{entry.unique_id or entry.entry_id}_{UNIQUE_MARK}"
        self.entities: dict[str, MirrorEntity] = {}  # remote entity id -> entity
        self.removed = 0
        self.filtered_here = 0  # sent by the remote although the filter excludes them
        self.skipped: dict[str, dict[str, str]] = {}  # reason -> {remote id: local id or ""}
        self.skip_counts: dict[str, int] = {}
        self._adders: dict[str, AddConfigEntryEntitiesCallback] = {}
        self._pending: dict[str, RemoteState] = {}  # waiting for their platform
        self._states: Mapping[str, RemoteState] = {}
        self._connected = False
        # Fallback (no subscribe_entities): this connection's states, None until loaded; and
        # the state_changed events that came while get_states was answered.
        self._fallback: EntityStates | None = None
        self._fallback_early: list[dict[str, Any]] = []
        self._loading = False
        self._unsubs: list[CALLBACK_TYPE] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # New mirrors of the message being applied, per domain: added in one call each; how many
        # of them are not registered yet (they count against the entry's entity limit).
        self._new: dict[str, list[MirrorEntity]] | None = None
        self._new_unregistered = 0
        # Messages waiting to be applied (in order): the mirrors a first message does not hold,
        # the states it told, its removals; whether a task applies them; bumped when the link
        # drops (what waits is stale then).
        self._work: deque[tuple[list[str], dict[str, RemoteState], tuple[str, ...]]] = deque()
        self._working = False
        self._link_epoch = 0
        # Set by the first message of each connection (every current state known), cleared at
        # the loss: the statistics fill waits for it to know which mirrors have a state class.
        self.states_known = asyncio.Event()
        # Long-term statistics of mirrored sensors for each closed gap (capture's hook).
        self.statistics = StatisticsFiller(
            hass, entry, self, float(options[CONF_BACKFILL_MAX_WINDOW]) * 3600
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def domains(self) -> tuple[str, ...]:
        """The platforms the entry sets up for mirrored entities."""
        return MIRROR_DOMAINS if self.enabled else ()

    @property
    def remote_states(self) -> Mapping[str, RemoteState]:
        """The remote's current states as this connection told them (empty while down)."""
        return self._states

    def local_entity_id(self, remote_id: str) -> str | None:
        """The registered local entity id of a remote entity's mirror (the user's rename kept)."""
        return er.async_get(self.hass).async_get_entity_id(
            remote_id.partition(".")[0], DOMAIN, self.unique_base + remote_id
        )

    def is_mirrored(self, entity_id: str) -> bool:
        """A remote entity shown here as a local entity."""
        return entity_id in self.entities

    @callback
    def async_start(self) -> None:
        """Forget what the options no longer mirror; follow the link."""
        self._forget_unwanted()
        if not self.enabled:
            return
        engine = self.engine
        self.statistics.async_start(engine)
        self._unsubs.append(engine.add_entities_listener(self._on_entities))
        self._unsubs.append(engine.add_listener(self._on_snapshot))
        self._unsubs.append(engine.add_event_listener(self._on_event))

    async def async_stop(self) -> None:
        """Stop following the link; cancel removal checks (idempotent)."""
        while self._unsubs:
            self._unsubs.pop()()
        await self.statistics.async_stop()
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _registered(self) -> Iterable[er.RegistryEntry]:
        registry = er.async_get(self.hass)
        for reg in er.async_entries_for_config_entry(registry, self.entry.entry_id):
            if reg.unique_id.startswith(self.unique_base):
                yield reg

    def _forget_unwanted(self) -> None:
        """Mirroring off, or an entity now excluded: its local entity goes (its history stays).

        Not for patterns that cannot be read (edited by hand): nothing is known to be unwanted.
        """
        if self.refused == "invalid_patterns":
            return
        registry = er.async_get(self.hass)
        for reg in list(self._registered()):
            remote_id = reg.unique_id[len(self.unique_base) :]
            if not self.enabled or not self.filter.matches(remote_id):
                registry.async_remove(reg.entity_id)

    @callback
    def async_add_platform(self, domain: str, add_entities: AddConfigEntryEntitiesCallback) -> None:
        """A platform is set up: its registered mirrors now (unavailable until told), then news."""
        if not self.enabled:
            return
        self._adders[domain] = add_entities
        known = [
            (reg.unique_id[len(self.unique_base) :], reg.entity_id, reg.original_name)
            for reg in self._registered()
            if reg.domain == domain
        ]
        for remote_id, entity_id, name in known:
            if remote_id.partition(".")[0] == domain and remote_id not in self.entities:
                self._add(remote_id, entity_id, name)
        self._new = {}
        for remote_id in [r for r in self._pending if r.partition(".")[0] == domain]:
            self._apply(remote_id, self._pending.pop(remote_id))
        self._add_new_ones()

    # ------------------------------------------------------------------ updates

    @callback
    def _on_entities(self, update: EntitiesUpdate) -> None:
        """One subscribe_entities message (from the reader): apply it; never raises.

        At once when it is small and nothing waits; else queued for the slicing worker.
        """
        self._states = update.states
        self.states_known.set()
        # What this message says, as it says it (later messages change `update.states`): a copy
        # of the states it changed; for a first message, of all of them (one dict, no object per
        # entity: a big remote's first message is tens of thousands).
        states = update.states
        if update.initial:
            told = dict(states)
            # A new subscription: what it does not hold is not there now (maybe not yet).
            gone = [r for r in self.entities if r not in told]
        else:
            told = {r: states[r] for r in update.changed}
            gone = []
        self._enqueue(gone, told, update.removed)

    def _enqueue(
        self, gone: list[str], told: dict[str, RemoteState], removed: tuple[str, ...]
    ) -> None:
        """Apply at once when it is small and nothing waits; else queue it for the slicing worker."""
        if not self._work and not self._working and len(told) + len(gone) <= SLICE_ITEMS:
            self._new = {}
            try:
                for _ in self._steps(gone, told, removed):
                    pass
            finally:
                self._add_new_ones()
            return
        self._work.append((gone, told, removed))
        if not self._working:
            self._working = True  # before the task: it may start (and end) eagerly
            self._spawn(self._apply_waiting(), "mirror updates")

    async def _apply_waiting(self) -> None:
        """Apply the waiting messages in order, a slice at a time."""
        slices = Slices()
        try:
            while self._work:
                epoch = self._link_epoch
                self._new = {}
                for _ in self._steps(*self._work.popleft()):
                    if slices.full():
                        self._add_new_ones()
                        await slices.pause()
                        if epoch != self._link_epoch:
                            break  # the link dropped: the rest is stale; the queue has what now
                        self._new = {}
                self._add_new_ones()
        finally:
            self._new = None
            self._working = False

    def _steps(
        self, gone: list[str], told: dict[str, RemoteState], removed: tuple[str, ...]
    ) -> Iterator[None]:
        """Apply one message, an entity at a time (a step after each, for slicing)."""
        for remote_id in gone:
            self._apply(remote_id, None)
            yield
        for remote_id, state in told.items():
            self._apply(remote_id, state)
            yield
        for remote_id in removed:
            self._on_removed(remote_id)
            yield

    def _add_new_ones(self) -> None:
        """The mirrors created while applying: one add per platform, not one per entity."""
        new, self._new = self._new or {}, None
        self._new_unregistered = 0
        for domain, entities in new.items():
            self._adders[domain](entities)

    @callback
    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        connected = snapshot.connected
        if self._connected and not connected:
            self.states_known.clear()
            self._states = {}
            self._fallback = None
            self._work.clear()
            self._link_epoch += 1
            # Every mirror unavailable: in slices too (10,000 state writes block the loop 290 ms).
            self._enqueue(list(self.entities), {}, ())
        elif connected and not self._connected:
            status = snapshot.entities
            if status is not None and status.unsupported:
                self._spawn(self._fallback_load(), "mirror states")
        self._connected = connected

    # ------------------------------------------------------------------ fallback

    async def _fallback_load(self) -> None:
        """A remote without subscribe_entities: every state once, then its state_changed."""
        self._fallback, self._fallback_early = None, []
        self._loading = True
        try:
            reply = await self.engine.command({"type": "get_states"})
        except HaClientError as err:
            LOGGER.debug("States of %s not read: %s", self.entry.title, err)
            return
        finally:
            self._loading = False
        states = EntityStates()
        added = dict(
            pair
            for item in (reply if type(reply) is list else ())
            if (pair := compress_state(item))
        )
        self._fallback = states
        self._on_entities(states.apply({"a": added})[0])
        early, self._fallback_early = self._fallback_early, []
        for data in early:
            self._fallback_change(states, data)

    @callback
    def _on_event(self, event: dict[str, Any]) -> None:
        """A remote event (from the reader): for the fallback only, state_changed."""
        data = event.get("data")
        if event.get("event_type") != "state_changed" or type(data) is not dict:
            return
        if self._fallback is not None:
            self._fallback_change(self._fallback, data)
        elif self._loading:
            self._fallback_early.append(data)

    def _fallback_change(self, states: EntityStates, data: dict[str, Any]) -> None:
        entity_id = data.get("entity_id")
        if type(entity_id) is not str:
            return
        new_state = data.get("new_state")
        if new_state is None:
            self._on_entities(states.apply({"r": [entity_id]})[0])
            return
        pair = compress_state(new_state)
        if pair is None:
            return
        known = states.states.get(entity_id)
        if known is not None and pair[1]["lu"] < known.last_updated:
            return  # older than what get_states told (it came before the reply)
        self._on_entities(states.apply({"a": dict([pair])})[0])

    def _apply(self, remote_id: str, state: RemoteState | None) -> None:
        if state is None:  # not in the subscription's first message
            if (entity := self.entities.get(remote_id)) is not None:
                entity.set_remote(None)
            return
        if not self.filter.matches(remote_id):
            self.filtered_here += 1
            return
        domain, _, object_id = remote_id.partition(".")
        if domain not in MIRROR_DOMAINS:
            self._skip("unsupported_domain", remote_id)
            return
        try:
            size = len(orjson.dumps(dict(state.attributes), option=orjson.OPT_NON_STR_KEYS))
        except TypeError:
            size = MAX_ATTRIBUTES_BYTES + 1
        if size > MAX_ATTRIBUTES_BYTES:
            self._skip("attributes_too_large", remote_id, f"{size} bytes")
            return
        entity = self.entities.get(remote_id)
        if entity is not None:
            entity.set_remote(state)
        elif domain not in self._adders:
            self._pending[remote_id] = state
        else:
            self._add_new(remote_id, domain, object_id, state)

    def _add_new(self, remote_id: str, domain: str, object_id: str, state: RemoteState) -> None:
        registry = er.async_get(self.hass)
        unique_id = self.unique_base + remote_id
        entity_id = registry.async_get_entity_id(domain, DOMAIN, unique_id)
        if entity_id is None:
            entity_id = f"{domain}.{self.prefix}_{object_id}"
            if not valid_entity_id(entity_id) or len(entity_id) > MAX_LENGTH_STATE_ENTITY_ID:
                self._skip("invalid_entity_id", remote_id, entity_id)
                return
            if registry.async_is_registered(entity_id) or self.hass.states.get(entity_id):
                self._skip("entity_id_taken", remote_id, entity_id)
                return
            if (
                ENTITY_LIMIT is not None
                and enabled_entities(registry, self.entry.entry_id) + self._new_unregistered
                >= ENTITY_LIMIT
            ):
                # Home Assistant would refuse it (and log a bug report request): one warning.
                self._skip(
                    "entity_limit",
                    remote_id,
                    f"{ENTITY_LIMIT} enabled entities",
                    once=(
                        f"Not mirroring more entities of {self.entry.title}: this link has "
                        f"reached Home Assistant's limit of {ENTITY_LIMIT} enabled entities; "
                        "other entities are not affected; disable mirrors or narrow the "
                        "include/exclude options to choose which ones"
                    ),
                )
                return
            if self._new is not None:
                self._new_unregistered += 1
        self._add(remote_id, entity_id, state=state)

    def _add(
        self,
        remote_id: str,
        entity_id: str,
        name: str | None = None,
        state: RemoteState | None = None,
    ) -> None:
        """Add a mirror; with its state already, so its first recorded state is the remote's."""
        domain = remote_id.partition(".")[0]
        entity = mirror_class(domain)(
            self.entry.entry_id, remote_id, entity_id, self.unique_base + remote_id, name
        )
        if state is not None:
            entity.set_remote(state)
        self.entities[remote_id] = entity
        if self._new is not None:
            self._new.setdefault(domain, []).append(entity)
        else:
            self._adders[domain]([entity])

    def _skip(
        self, reason: str, remote_id: str, detail: str = "", *, once: str | None = None
    ) -> None:
        """Count a skip; log it once per entity, or `once` once for the whole reason."""
        self.skip_counts[reason] = self.skip_counts.get(reason, 0) + 1
        listed = self.skipped.setdefault(reason, {})
        if remote_id in listed:
            return
        if len(listed) < SKIPPED_KEPT:
            listed[remote_id] = detail
        if once is not None:
            if len(listed) == 1:
                LOGGER.warning("%s", once)
            return
        LOGGER.warning(
            "Not mirroring %s of %s (%s%s); other entities are not affected",
            remote_id,
            self.entry.title,
            reason.replace("_", " "),
            f": {detail}" if detail else "",
        )

    # ------------------------------------------------------------------ removal

    def _on_removed(self, remote_id: str) -> None:
        self._pending.pop(remote_id, None)
        entity = self.entities.get(remote_id)
        if entity is None:
            return
        entity.set_remote(None)
        self._spawn(self._confirm_removed(remote_id), "mirror removal")

    def _spawn(self, coro: Any, name: str) -> None:
        task = self.entry.async_create_background_task(
            self.hass, coro, f"ha_ingestion {name} {self.entry.entry_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm_removed(self, remote_id: str) -> None:
        """Remove the local entity only when the remote's entity registry does not know it."""
        try:
            await self.engine.command(
                {"type": "config/entity_registry/get", "entity_id": remote_id}
            )
        except HaCommandError as err:
            if err.code != NOT_FOUND:
                LOGGER.debug("Removal of %s not confirmed: %s", remote_id, err)
                return
        except HaClientError as err:
            LOGGER.debug("Removal of %s not confirmed: %s", remote_id, err)
            return
        else:
            return  # still registered there (reloading, disabled): unavailable, kept
        if remote_id in self._states or (entity := self.entities.pop(remote_id, None)) is None:
            return  # back meanwhile
        self.removed += 1
        registry = er.async_get(self.hass)
        if registry.async_get(entity.entity_id) is not None:
            registry.async_remove(entity.entity_id)
        LOGGER.info(
            "%s removed %s: its mirror %s is removed", self.entry.title, remote_id, entity.entity_id
        )

    # ------------------------------------------------------------------ diagnostics

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show."""
        return {
            "enabled": self.enabled,
            "refused": self.refused,
            "domains": list(MIRROR_DOMAINS),
            "prefix": self.prefix,
            "include": list(self.filter.include),
            "exclude": list(self.filter.exclude),
            "forward_state_changes": self.forward_state_changes,
            "entities": len(self.entities),
            "available": sum(1 for e in self.entities.values() if e.available),
            "waiting_for_platform": len(self._pending),
            "removed": self.removed,
            "filtered_here": self.filtered_here,
            "skipped": dict(self.skip_counts),
            "skipped_entities": {reason: dict(ids) for reason, ids in self.skipped.items()},
            "statistics": self.statistics.as_dict(),
        }
