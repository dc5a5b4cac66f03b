"""`subscribe_entities`: which entities to ask for, and the remote's compressed diffs applied.

Pure (no I/O, no Home Assistant): the engine subscribes with `EntityFilter.server_filter()`
and keeps one `EntityStates` per connection; the host hears complete states.

The wire format (Home Assistant's `websocket_api/messages.py`): every event of the subscription is
an object with any of

- `a`: {entity_id: compressed state} — added (the first message after subscribing holds them all);
- `c`: {entity_id: {"+": {...}, "-": {"a": [attribute names]}}} — changed: `+` carries `s` (state),
  `a` (attributes changed or added), `lc` (last changed, also the last updated then), `lu` (last
  updated), `c` (context), `-` the attributes removed;
- `r`: [entity_id] — removed.

A compressed state: `s` state, `a` attributes, `c` context (an id or an object), `lc` last changed
(epoch seconds), `lu` last updated (only when it differs from `lc`). The context is never kept: a
remote user id means nothing here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
import fnmatch
from functools import cached_property
import re
from typing import Any

_GLOB_CHARS = frozenset("*?[")
# Entities of one message applied in one step (a few ms of work, `scripts/bench backfill`): a bigger message (the first
# one of a big remote holds every state) is applied in steps, the host yielding between them.
STEP_ENTITIES = 1000
PATTERN = re.compile(r"^[a-z0-9_*?\[\]!]+(\.[a-z0-9_*?\[\]!]+)?$")


def _kind(pattern: str) -> str:
    if _GLOB_CHARS & set(pattern):
        return "glob"
    return "entity" if "." in pattern else "domain"


@dataclass(frozen=True, kw_only=True)
class EntityFilter:
    """Which remote entities to mirror: include (empty = all) minus exclude; exclude wins.

    A pattern is a domain (`sensor`), an entity id (`sensor.kitchen`) or a glob
    (`sensor.*_power`, matched on the whole entity id).
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject what is no pattern."""
        for pattern in (*self.include, *self.exclude):
            if not PATTERN.match(pattern):
                raise ValueError(f"not a domain, entity id or glob: {pattern!r}")

    @staticmethod
    def _split(patterns: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
        domains: set[str] = set()
        entities: set[str] = set()
        globs: set[str] = set()
        for pattern in patterns:
            {"domain": domains, "entity": entities, "glob": globs}[_kind(pattern)].add(pattern)
        return domains, entities, globs

    @staticmethod
    def _hit(entity_id: str, parts: tuple[set[str], set[str], set[str]]) -> bool:
        domains, entities, globs = parts
        return (
            entity_id in entities
            or entity_id.partition(".")[0] in domains
            or any(fnmatch.fnmatchcase(entity_id, glob) for glob in globs)
        )

    @cached_property
    def _parts(self) -> tuple[tuple[set[str], set[str], set[str]], ...]:
        return self._split(self.include), self._split(self.exclude)

    def matches(self, entity_id: str) -> bool:
        """Mirror this entity (called for every change: the patterns are split once)."""
        include, exclude = self._parts
        if self.exclude and self._hit(entity_id, exclude):
            return False
        return not self.include or self._hit(entity_id, include)

    def server_filter(self) -> dict[str, Any] | None:
        """The `include`/`exclude` fields of `subscribe_entities`; None when nothing can match.

        Home Assistant's filter lets an include beat an exclude in some cases (its entity filter
        rules); ours lets the exclude win. What is sent is chosen so the remote sends exactly
        what `matches`, with one exception: an entity matched by an include glob AND by an exclude
        glob or domain is sent (Home Assistant's include glob wins) and dropped here.
        An empty filter would mean "everything" to the remote: None is returned instead.
        """
        if not self.include:
            if not self.exclude:
                return {}
            return {"exclude": _fields(*self._split(self.exclude))}
        ex_domains, ex_entities, ex_globs = self._split(self.exclude)
        domains, entities, globs = self._split(self.include)
        entities = {e for e in entities if self.matches(e)}
        domains -= ex_domains
        if not domains and not globs:
            # Only entity ids, each already checked against the excludes: exact as it is.
            return {"include": _fields(set(), entities, set())} if entities else None
        # Excluded domains as globs: Home Assistant ignores exclude domains next to includes.
        ex_globs |= {f"{domain}.*" for domain in ex_domains}
        return {
            "include": _fields(domains, entities, globs),
            "exclude": _fields(set(), ex_entities, ex_globs),
        }


def _fields(domains: set[str], entities: set[str], globs: set[str]) -> dict[str, list[str]]:
    return {
        "domains": sorted(domains),
        "entities": sorted(entities),
        "entity_globs": sorted(globs),
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class RemoteState:
    """One remote entity's complete state (no context)."""

    state: str
    attributes: Mapping[str, Any]
    last_changed: float
    last_updated: float


@dataclass(frozen=True, kw_only=True)
class EntitiesUpdate:
    """What one `subscribe_entities` message changed, with every state it now knows.

    `initial`: the first message of a subscription (all matching states of the remote now).
    """

    initial: bool
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    states: Mapping[str, RemoteState]


class BadEntitiesMessageError(ValueError):
    """A part of a message that could not be applied (skipped, counted)."""


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise BadEntitiesMessageError("time is not a number")
    return float(value)


def _compressed(entity_id: Any, value: Any) -> RemoteState:
    if type(entity_id) is not str or type(value) is not dict:
        raise BadEntitiesMessageError("added state is not an object")
    state = value.get("s")
    attributes = value.get("a", {})
    if type(state) is not str or type(attributes) is not dict:
        raise BadEntitiesMessageError("added state without state text or attributes object")
    changed = _number(value.get("lc"))
    updated = _number(value["lu"]) if "lu" in value else changed
    return RemoteState(
        state=state, attributes=attributes, last_changed=changed, last_updated=updated
    )


def _diffed(old: RemoteState, diff: Any) -> RemoteState:
    if type(diff) is not dict:
        raise BadEntitiesMessageError("diff is not an object")
    plus = diff.get("+", {})
    minus = diff.get("-", {})
    if type(plus) is not dict or type(minus) is not dict:
        raise BadEntitiesMessageError("diff parts are not objects")
    state = plus.get("s", old.state)
    added = plus.get("a", {})
    removed = minus.get("a", [])
    if type(state) is not str or type(added) is not dict or type(removed) is not list:
        raise BadEntitiesMessageError("diff of the wrong shape")
    attributes = dict(old.attributes)
    attributes.update(added)
    for key in removed:
        if type(key) is str:
            attributes.pop(key, None)
    changed, updated = old.last_changed, old.last_updated
    if "lc" in plus:
        changed = updated = _number(plus["lc"])
    elif "lu" in plus:
        updated = _number(plus["lu"])
    return RemoteState(
        state=state, attributes=attributes, last_changed=changed, last_updated=updated
    )


def compress_state(state: Any) -> tuple[str, dict[str, Any]] | None:
    """(entity_id, compressed state) of a full state object (`get_states`, `state_changed`).

    For remotes without `subscribe_entities`: their states are applied as `a` messages. None when
    it is no state object.
    """
    if type(state) is not dict:
        return None
    entity_id = state.get("entity_id")
    try:
        changed = datetime.fromisoformat(state["last_changed"]).timestamp()
        updated = datetime.fromisoformat(state["last_updated"]).timestamp()
    except KeyError, TypeError, ValueError:
        return None
    if type(entity_id) is not str:
        return None
    return entity_id, {
        "s": state.get("state"),
        "a": state.get("attributes", {}),
        "lc": changed,
        "lu": updated,
    }


class EntityStates:
    """The states one subscription told so far; `apply` one message at a time."""

    def __init__(self) -> None:
        """Empty: the first message applied is the initial one."""
        self.states: dict[str, RemoteState] = {}
        self.messages = 0
        self.skipped = 0

    def apply(self, message: Any) -> tuple[EntitiesUpdate, list[str]]:
        """Apply one message at once; return the update and why parts of it were skipped."""
        steps = self.steps(message)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                applied: tuple[EntitiesUpdate, list[str]] = done.value
                return applied

    def steps(self, message: Any) -> Generator[None, None, tuple[EntitiesUpdate, list[str]]]:
        """Apply one message, pausing (yield) after each `STEP_ENTITIES` entities.

        Returns (as the generator's value) the update and why parts of it were skipped. A bad
        part (one entity's state or diff, an odd removal) is skipped alone; the rest of the
        message applies. A message of up to `STEP_ENTITIES` entities never pauses. The update is
        known, and `messages` counts it, only once the whole message is applied.
        """
        problems: list[str] = []
        changed: list[str] = []
        removed: list[str] = []
        states = self.states
        if type(message) is not dict:
            problems.append("entities message is not an object")
            message = {}
        added = message.get("a", {})
        diffs = message.get("c", {})
        gone = message.get("r", [])
        if type(added) is not dict or type(diffs) is not dict or type(gone) is not list:
            problems.append("entities message of the wrong shape")
            added, diffs, gone = {}, {}, []
        for done, (entity_id, value) in enumerate(added.items()):
            if done and not done % STEP_ENTITIES:
                yield
            try:
                states[entity_id] = _compressed(entity_id, value)
            except BadEntitiesMessageError as err:
                problems.append(str(err))
                continue
            changed.append(entity_id)
        for done, (entity_id, diff) in enumerate(diffs.items(), len(added)):
            if done and not done % STEP_ENTITIES:
                yield
            old = states.get(entity_id)
            if old is None:
                problems.append("change of an entity never added")
                continue
            try:
                states[entity_id] = _diffed(old, diff)
            except BadEntitiesMessageError as err:
                problems.append(str(err))
                continue
            changed.append(entity_id)
        for entity_id in gone:
            if type(entity_id) is not str:
                problems.append("removed entity id is not text")
                continue
            states.pop(entity_id, None)
            removed.append(entity_id)
        self.skipped += len(problems)
        update = EntitiesUpdate(
            initial=self.messages == 0,
            changed=tuple(changed),
            removed=tuple(removed),
            states=states,
        )
        self.messages += 1
        return update, problems
