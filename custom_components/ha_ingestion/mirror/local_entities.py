"""The local entities of one entry's mirrors: identity, creation, bad-input skips, removal.

- Identity: unique id `<entry unique id>_mirror:<remote entity id>` (the entry's unique id is the
  remote instance's), suggested entity id `<domain>.<prefix>_<object id>`; the registry keeps it
  (and every user customization) across restarts, reloads and reconnects.
- Creation: a platform set up gets its registered mirrors at once (unavailable until told), then
  the new ones; the new mirrors of one message (or slice) are added in one call per platform.
  A state told before its platform is set up waits for it.
- Removal: only after the remote's `r` AND its entity registry confirms the entity is gone
  (`config/entity_registry/get` answers `not_found`): an integration reloading on the remote
  removes states for a moment, its entities stay registered there, so they stay here too. The
  options no longer mirroring an entity remove its local entity at start (its history stays).
- Bad input (an entity id invalid here, an unsupported domain, attributes the recorder would not
  store, an entity id taken by a local entity, the entry's entity limit) is a counted skip,
  logged once per entity, listed in diagnostics; never a crash, never an overwrite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from homeassistant.const import MAX_LENGTH_STATE_ENTITY_ID
from homeassistant.core import Context, HomeAssistant, valid_entity_id
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
import orjson

from ..client import (  # noqa: TID252 - the package's engine
    HaClientError,
    HaCommandError,
    LinkEngine,
    RemoteState,
    TaskSet,
)
from ..compat import ENTITY_LIMIT, enabled_entities  # noqa: TID252 - release differences
from ..const import DOMAIN, LOGGER  # noqa: TID252 - the package's own constants
from .choice import MIRROR_DOMAINS, MirrorChoice
from .control import RemoteControl
from .devices import RemoteDevices
from .entity import MirrorEntity, NativeMirror, mirror_class
from .recorder_history import link_down_context, link_down_mark
from .remote_mirrors import RemoteMirrors

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


UNIQUE_MARK = "mirror:"
# The recorder stores no attributes above this size (recorder/const.py MAX_STATE_ATTRS_BYTES).
MAX_ATTRIBUTES_BYTES = 16384
SKIPPED_KEPT = 20  # entity ids listed per skip reason in diagnostics
NOT_FOUND = "not_found"


class LocalMirrors:
    """The mirror entities of one config entry, by remote entity id."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        engine: LinkEngine,
        choice: MirrorChoice,
        prefix: str,
        tasks: TaskSet,
        remote_states: Callable[[], Mapping[str, RemoteState]],
        control: RemoteControl | None = None,
        remote_mirrors: RemoteMirrors | None = None,
        want_platform: Callable[[str], None] | None = None,
    ) -> None:
        """`remote_states`: the remote's current states (a removal is not confirmed for those).

        `control`: where the native mirrors' service calls go. `remote_mirrors`: which remote
        entities are mirrors made by this integration (never mirrored back; None: no check).
        `want_platform`: told the domain of a mirror that waits for its platform (`platforms.py`
        loads it).
        """
        self.hass = hass
        self.entry = entry
        self.engine = engine
        self.choice = choice
        self.prefix = prefix
        self.tasks = tasks
        self.remote_states = remote_states
        self.unique_base = f"{entry.unique_id or entry.entry_id}_{UNIQUE_MARK}"
        self.entities: dict[str, MirrorEntity] = {}  # remote entity id -> entity
        self.removed = 0
        self.filtered_here = 0  # sent by the remote although the filter excludes them
        self.skipped: dict[str, dict[str, str]] = {}  # reason -> {remote id: local id or ""}
        self.skip_counts: dict[str, int] = {}
        self.pending: dict[str, RemoteState] = {}  # waiting for their platform
        self._adders: dict[str, AddConfigEntryEntitiesCallback] = {}
        self._native: dict[str, type[NativeMirror]] = {}  # domain -> its native mirror class
        self.control = control
        self.remote_mirrors = remote_mirrors
        self.want_platform = want_platform
        # Remote entities not classified yet (mirror there or not): their latest state, applied
        # once the remote's registry tells (`classified`).
        self.unclassified: dict[str, RemoteState] = {}
        # Held states the registry has classified since, applied in slices (`updates.py`); a newer
        # state of one of them takes its place (taken out here when applied).
        self.releasing: dict[str, RemoteState] = {}
        # New mirrors of the message being applied, per domain: added in one call each; how many
        # of them are not registered yet (they count against the entry's entity limit).
        self._new: dict[str, list[MirrorEntity]] | None = None
        self._new_unregistered = 0
        # The link is up (`mirror.py`): while it is not, a mirror's `unavailable` is the link's,
        # written with the entry's link-down mark (removed from the record once recovered).
        self.connected = False
        self.link_down_mark = link_down_mark(self.unique_base)
        # The remote's devices (`devices.py`, set by `mirror.py`): each new mirror's device.
        self.devices: RemoteDevices | None = None

    # ------------------------------------------------------------------ registry

    def local_entity_id(self, remote_id: str) -> str | None:
        """The registered local entity id of a remote entity's mirror (the user's rename kept)."""
        return er.async_get(self.hass).async_get_entity_id(
            remote_id.partition(".")[0], DOMAIN, self.unique_base + remote_id
        )

    def held_remote_ids(self) -> set[str]:
        """Every remote entity mirrored here: registered, created, or waiting for its platform."""
        held = set(self.entities) | set(self.pending)
        held.update(reg.unique_id[len(self.unique_base) :] for reg in self._registered())
        return held

    def registered_entity_ids(self) -> list[str]:
        """The local entity ids of every registered mirror."""
        return [reg.entity_id for reg in self._registered()]

    def registered_domains(self) -> set[str]:
        """The domains of the registered mirrors (their platforms are set up with the entry)."""
        return {reg.domain for reg in self._registered() if reg.domain in MIRROR_DOMAINS}

    def _registered(self) -> Iterable[er.RegistryEntry]:
        registry = er.async_get(self.hass)
        for reg in er.async_entries_for_config_entry(registry, self.entry.entry_id):
            if reg.unique_id.startswith(self.unique_base):
                yield reg

    def forget_unwanted(self) -> None:
        """Mirroring off, or an entity now excluded: its local entity goes (its history stays).

        Not for patterns that cannot be read (edited by hand): nothing is known to be unwanted.
        """
        if self.choice.refused == "invalid_patterns":
            return
        registry = er.async_get(self.hass)
        for reg in list(self._registered()):
            remote_id = reg.unique_id[len(self.unique_base) :]
            if not self.choice.enabled or not self.choice.filter.matches(remote_id):
                registry.async_remove(reg.entity_id)

    # ------------------------------------------------------------------ creation

    def add_platform(
        self,
        domain: str,
        add_entities: AddConfigEntryEntitiesCallback,
        native: type[NativeMirror] | None = None,
    ) -> None:
        """A platform is set up: its registered mirrors now (unavailable until told), then news.

        `native`: the domain's native mirror class (None: read-only mirrors).
        """
        self._adders[domain] = add_entities
        if native is not None:
            self._native[domain] = native
        known = [
            (reg.unique_id[len(self.unique_base) :], reg.entity_id, reg.original_name)
            for reg in self._registered()
            if reg.domain == domain
        ]
        told = self.remote_states()
        self.begin_batch()
        for remote_id, entity_id, name in known:
            if remote_id.partition(".")[0] == domain and remote_id not in self.entities:
                if (state := told.get(remote_id)) is not None:
                    # Set up after the link came back: its first recorded state is the remote's.
                    self.apply(remote_id, state)
                if remote_id not in self.entities:
                    # Not told yet, or its state held until the remote's registry is read: there
                    # at once, unavailable (the link's doing). Else Home Assistant's start writes
                    # `unavailable` for it with a context of its own, which no mend removes.
                    self._add(remote_id, entity_id, name)
        for remote_id in [r for r in self.pending if r.partition(".")[0] == domain]:
            self.apply(remote_id, self.pending.pop(remote_id))
            if remote_id not in told and (entity := self.entities.get(remote_id)) is not None:
                # Told before the link was lost (a platform loaded late): unavailable, the link's
                # doing, as a registered mirror at a start.
                entity.set_remote(None, link_down=link_down_context(self.link_down_mark))
        self.add_batch()

    def begin_batch(self) -> None:
        """From now on, new mirrors wait for `add_batch` (one add per platform)."""
        self._new = {}

    def add_batch(self) -> None:
        """The mirrors created since `begin_batch`: one add per platform, not one per entity."""
        new, self._new = self._new or {}, None
        self._new_unregistered = 0
        for domain, entities in new.items():
            self._adders[domain](entities)

    def drop_batch(self) -> None:
        """Applying stopped midway: no batch any more."""
        self._new = None

    def apply(self, remote_id: str, state: RemoteState | None) -> None:
        """The remote's state of one entity (None: not in the subscription's first message)."""
        if self.releasing:
            self.releasing.pop(remote_id, None)  # older than this one
        if state is None:  # not in the subscription's first message, or the link is down
            if (entity := self.entities.get(remote_id)) is not None:
                entity.set_remote(None, link_down=self._link_down())
            return
        if not self.choice.filter.matches(remote_id):
            self.filtered_here += 1
            return
        if self.remote_mirrors is not None:
            verdict = self.remote_mirrors.classify(remote_id)
            if verdict is None:
                self.unclassified[remote_id] = state  # applied once the registry tells
                return
            if verdict:
                self._skip_remote_mirror(remote_id)
                return
        domain, _, object_id = remote_id.partition(".")
        if domain not in MIRROR_DOMAINS:
            self._skip("unsupported_domain", remote_id)
            return
        try:
            attributes = state.attributes
            if type(attributes) is not dict:
                attributes = dict(attributes)
            size = len(orjson.dumps(attributes, option=orjson.OPT_NON_STR_KEYS))
        except TypeError:
            size = MAX_ATTRIBUTES_BYTES + 1
        if size > MAX_ATTRIBUTES_BYTES:
            self._skip("attributes_too_large", remote_id, f"{size} bytes")
            return
        entity = self.entities.get(remote_id)
        if entity is not None:
            entity.set_remote(state)
        elif domain not in self._adders:
            self.pending[remote_id] = state
            if self.want_platform is not None:
                self.want_platform(domain)
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
        cls: type[MirrorEntity] = self._native.get(domain) or mirror_class(domain)
        entity = cls(
            self.entry.entry_id,
            remote_id,
            entity_id,
            self.unique_base + remote_id,
            name,
            self.control,
        )
        if self.devices is not None:
            entity.set_device(*self.devices.device_for(remote_id, self.unique_base + remote_id))
        if state is not None:
            entity.set_remote(state)
        else:  # registered, not told yet (at a start): unavailable, the link's doing
            entity.mark_link_down(link_down_context(self.link_down_mark))
        self.entities[remote_id] = entity
        if self._new is not None:
            self._new.setdefault(domain, []).append(entity)
        else:
            self._adders[domain]([entity])

    def classified(self) -> dict[str, RemoteState]:
        """The remote's registry was read: drop mirrors of mirrors; the held states to apply.

        They are `releasing` until applied (`updates.py`, in slices: thousands on a first link).
        """
        remote_mirrors = self.remote_mirrors
        if remote_mirrors is None:
            return self.releasing
        for remote_id in [r for r in self.entities if r in remote_mirrors.entity_ids]:
            self._skip_remote_mirror(remote_id)
        held, self.unclassified = self.unclassified, {}
        self.releasing.update(held)
        return self.releasing

    def _skip_remote_mirror(self, remote_id: str) -> None:
        """A remote mirror: never mirrored here (one made before this check is removed)."""
        self._skip(
            "remote_mirror",
            remote_id,
            once=(
                f"Not mirroring the entities of {self.entry.title} that are themselves mirrors "
                "made by this integration (a link both ways); see diagnostics"
            ),
        )
        entity = self.entities.pop(remote_id, None)
        if entity is not None:
            registry = er.async_get(self.hass)
            if registry.async_get(entity.entity_id) is not None:
                registry.async_remove(entity.entity_id)

    def _link_down(self) -> Context | None:
        """A link-down context while the link is down; None while it is up."""
        return None if self.connected else link_down_context(self.link_down_mark)

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

    def on_removed(self, remote_id: str) -> None:
        """The remote removed the entity's state: unavailable; removed once confirmed."""
        self.pending.pop(remote_id, None)
        self.unclassified.pop(remote_id, None)
        self.releasing.pop(remote_id, None)
        entity = self.entities.get(remote_id)
        if entity is None:
            return
        entity.set_remote(None)
        self.tasks.start(self._confirm_removed(remote_id), "mirror removal")

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
        if (
            remote_id in self.remote_states()
            or (entity := self.entities.pop(remote_id, None)) is None
        ):
            return  # back meanwhile
        self.removed += 1
        registry = er.async_get(self.hass)
        if registry.async_get(entity.entity_id) is not None:
            registry.async_remove(entity.entity_id)
        LOGGER.info(
            "%s removed %s: its mirror %s is removed", self.entry.title, remote_id, entity.entity_id
        )
