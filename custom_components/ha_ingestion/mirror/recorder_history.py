"""The recorder's side of a mirror's recovered history: two tasks run on the recorder's own thread.

Home Assistant has no public API for past states. What both supported releases have, and what is
used here (the suite runs on both, so a release that changes any of it fails loudly):

- `RecorderTask` subclasses queued with `Recorder.queue_task`: they run on the recorder's thread,
  in its queue's order, after the live states before them are committed (`commit_before`).
- `States.from_event` and the `state_attributes_manager` serialization, fed a `state_changed`
  event built here and never fired: the same columns, the same attribute JSON (the domain's
  unrecorded attributes left out through the state's `state_info`) as a live state.
- `states_meta_manager.get_many` (the mirror's `metadata_id`), `state_attributes_manager`'s
  cache and lookup (`get_from_cache`, `get`): attributes are shared with the rows that have the
  same JSON, new ones get one `state_attributes` row.

`WritePastStates` inserts a batch of recovered states (a batch that is written again after a
crash inserts nothing twice: a row of the same entity at the same `last_updated_ts` is kept).
`MendHole` then, per mirror: deletes the `unavailable` rows the link's loss wrote within the
gap (the mirror writes those with a context whose id ends in the entry's link-down mark,
`link_down_context`: told apart from an `unavailable` the remote really had, which a mirror
writes with a context of its own; and, after a reload, Home Assistant's own `unavailable` write
for each removed entity, written while the entry was unloading), never an entity's newest row, and links every row of the span
to the one before it (`old_state_id`), as the recorder links live states, before anything is
deleted (PostgreSQL checks the foreign key at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
import hashlib
import time
from typing import TYPE_CHECKING, Any

from homeassistant.components.recorder.db_schema import StateAttributes, States
from homeassistant.components.recorder.tasks import RecorderTask
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE
from homeassistant.core import Context, Event, EventOrigin, State
from homeassistant.helpers.recorder import session_scope
from homeassistant.util.ulid import ulid_at_time, ulid_to_bytes
from sqlalchemy import delete, select, update

if TYPE_CHECKING:
    from homeassistant.components.recorder.core import Recorder
    from sqlalchemy.orm import Session

# A recorded time is a float of seconds: two rows within this are the same moment.
SAME_MOMENT = 0.5e-6
LOCAL_ORIGIN = EventOrigin.local.idx


@dataclass(frozen=True, slots=True)
class PastRow:
    """One recovered change of a mirror, as its local state at the remote's times."""

    entity_id: str  # the mirror's registered local entity id
    state: str
    attributes: dict[str, Any]
    changed: float  # epoch seconds, the remote's last_changed
    updated: float  # epoch seconds, the remote's last_updated
    unrecorded: frozenset[str]  # the mirror's unrecorded attributes (its domain's)


@dataclass(kw_only=True)
class WriteOutcome:
    """What one `WritePastStates` did (told back to the event loop)."""

    written: int = 0
    duplicate: int = 0
    not_recorded: int = 0  # no metadata (never recorded here) or excluded from the recorder
    failed: bool = False


@dataclass(kw_only=True)
class MendOutcome:
    """What one `MendHole` did."""

    removed: int = 0
    relinked: int = 0
    failed: bool = False


@dataclass(slots=True)
class WritePastStates(RecorderTask):
    """Insert recovered states of mirrors (recorder thread); `done` is told the outcome."""

    rows: list[PastRow]
    done: Callable[[WriteOutcome], None]

    def run(self, instance: Recorder) -> None:
        """Write the batch in one transaction."""
        outcome = WriteOutcome(failed=True)
        try:
            outcome = write_rows(instance, self.rows)
        finally:
            self.done(outcome)


@dataclass(slots=True)
class MendHole(RecorderTask):
    """After a recovered gap: the link-loss `unavailable` rows out, every row linked in order."""

    entity_ids: list[str]
    start: float  # the gap's start: the oldest moment a row to mend can have (epoch seconds)
    end: float  # when the gap was closed
    mark: bytes | None  # the link-down mark (context id bytes 6-16); None: remove nothing
    done: Callable[[MendOutcome], None]
    # Spans (epoch seconds) the entry was unloading in (a reload): Home Assistant's own
    # `unavailable` write for each removed entity falls in them.
    unloads: list[tuple[float, float]] = field(default_factory=list)

    def run(self, instance: Recorder) -> None:
        """Mend each entity of the batch, in one transaction."""
        outcome = MendOutcome(failed=True)
        try:
            outcome = mend(instance, self.entity_ids, self.start, self.end, self.mark, self.unloads)
        finally:
            self.done(outcome)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def link_down_mark(key: str) -> str:
    """The 16 ULID characters (80 bits) that mark this entry's link-down `unavailable` writes."""
    digest = int.from_bytes(hashlib.sha256(f"ha_ingestion link down {key}".encode()).digest())
    return "".join(_CROCKFORD[(digest >> (5 * i)) & 31] for i in range(16))


def link_down_context(mark: str) -> Context:
    """A context for one link-down write: a ULID of now, its random part the entry's mark."""
    return Context(id=ulid_at_time(time.time())[:10] + mark)


def mark_bytes(mark: str) -> bytes:
    """What the recorder stores of the mark: the last 10 bytes of `context_id_bin`."""
    return ulid_to_bytes("0" * 10 + mark)[6:]


def _event(row: PastRow) -> Event[Any]:
    """The state_changed event the recorder would have written for `row` (never fired)."""
    updated = datetime.fromtimestamp(row.updated, UTC)
    changed = datetime.fromtimestamp(row.changed, UTC) if row.changed != row.updated else updated
    state = State(
        row.entity_id,
        row.state,
        row.attributes,
        last_changed=changed,
        last_updated=updated,
        last_reported=updated,
        context=Context(id=ulid_at_time(row.updated)),
        state_info={"unrecorded_attributes": row.unrecorded},
    )
    return Event(
        EVENT_STATE_CHANGED,
        {"entity_id": row.entity_id, "old_state": None, "new_state": state},
        origin=EventOrigin.remote,
        time_fired_timestamp=row.updated,
        context=state.context,
    )


def write_rows(instance: Recorder, rows: list[PastRow]) -> WriteOutcome:
    """Insert `rows` (recorder thread)."""
    outcome = WriteOutcome()
    if not rows:
        return outcome
    attributes_manager = instance.state_attributes_manager
    entity_filter = instance.entity_filter
    with session_scope(session=instance.get_session()) as session:
        metadata = instance.states_meta_manager.get_many(
            {row.entity_id for row in rows}, session, True
        )
        existing = _existing_moments(session, metadata.values(), rows)
        shared_ids: dict[str, int] = {}
        for row in rows:
            metadata_id = metadata.get(row.entity_id)
            if metadata_id is None or (
                entity_filter is not None and not entity_filter(row.entity_id)
            ):
                outcome.not_recorded += 1
                continue
            if any(abs(row.updated - ts) <= SAME_MOMENT for ts in existing.get(metadata_id, ())):
                outcome.duplicate += 1
                continue
            event = _event(row)
            dbstate = States.from_event(event)
            dbstate.metadata_id = metadata_id
            shared_bytes = attributes_manager.serialize_from_event(event)
            if shared_bytes:
                dbstate.attributes_id = _attributes_id(instance, session, shared_bytes, shared_ids)
            session.add(dbstate)
            outcome.written += 1
    return outcome


def _existing_moments(
    session: Session, metadata_ids: Iterable[int | None], rows: list[PastRow]
) -> dict[int, list[float]]:
    """The recorded moments of these entities within the batch's span."""
    ids = sorted({m for m in metadata_ids if m is not None})
    if not ids:
        return {}
    low = min(row.updated for row in rows) - SAME_MOMENT
    high = max(row.updated for row in rows) + SAME_MOMENT
    found: dict[int, list[float]] = {}
    for metadata_id, moment in session.execute(
        select(States.metadata_id, States.last_updated_ts).where(
            States.metadata_id.in_(ids),
            States.last_updated_ts >= low,
            States.last_updated_ts <= high,
        )
    ):
        found.setdefault(metadata_id, []).append(moment)
    return found


def _attributes_id(
    instance: Recorder, session: Session, shared_bytes: bytes, shared_ids: dict[str, int]
) -> int:
    """The `state_attributes` row of this JSON: the one there is, or a new one."""
    shared = shared_bytes.decode("utf-8")
    if (known := shared_ids.get(shared)) is not None:
        return known
    manager = instance.state_attributes_manager
    hash_ = StateAttributes.hash_shared_attrs_bytes(shared_bytes)
    attributes_id = manager.get_from_cache(shared) or manager.get(shared, hash_, session)
    if attributes_id is None:
        new = StateAttributes(shared_attrs=shared, hash=hash_)
        session.add(new)
        session.flush()
        attributes_id = new.attributes_id
    shared_ids[shared] = attributes_id
    return attributes_id


def mend(
    instance: Recorder,
    entity_ids: list[str],
    start: float,
    end: float,
    mark: bytes | None,
    unloads: list[tuple[float, float]] | None = None,
) -> MendOutcome:
    """Per entity: remove the link-down `unavailable` rows of [start, end], link rows in order."""
    outcome = MendOutcome()
    if not entity_ids:
        return outcome
    with session_scope(session=instance.get_session()) as session:
        metadata = instance.states_meta_manager.get_many(entity_ids, session, True)
        ids = sorted({m for m in metadata.values() if m is not None})
        if not ids:
            return outcome
        rows: dict[int, list[tuple[int, int | None, bool]]] = {}
        spans = unloads or []
        for metadata_id, moment, state_id, old_state_id, state, context, origin in session.execute(
            select(
                States.metadata_id,
                States.last_updated_ts,
                States.state_id,
                States.old_state_id,
                States.state,
                States.context_id_bin,
                States.origin_idx,
            )
            .where(States.metadata_id.in_(ids), States.last_updated_ts >= start)
            .order_by(States.metadata_id, States.last_updated_ts, States.state_id)
        ):
            link_down = (
                mark is not None
                and state == STATE_UNAVAILABLE
                and moment <= end
                and (
                    (context is not None and bytes(context)[6:] == mark)
                    or (origin == LOCAL_ORIGIN and any(a <= moment <= b for a, b in spans))
                )
            )
            rows.setdefault(metadata_id, []).append((state_id, old_state_id, link_down))
        relink: list[dict[str, Any]] = []
        removed: list[int] = []
        for metadata_id, entity_rows in rows.items():
            # Never the newest row: the recorder links the next live state to it.
            drop = {state_id for state_id, _, link_down in entity_rows[:-1] if link_down}
            previous = _anchor(session, metadata_id, start)
            for state_id, old_state_id, _ in entity_rows:
                if state_id in drop:
                    continue
                if previous is not None and old_state_id != previous:
                    relink.append({"state_id": state_id, "old_state_id": previous})
                previous = state_id
            removed.extend(drop)
        if relink:
            session.execute(update(States), relink)
        if removed:
            session.execute(
                update(States).where(States.old_state_id.in_(removed)).values(old_state_id=None)
            )
            session.execute(delete(States).where(States.state_id.in_(removed)))
        outcome.removed = len(removed)
        outcome.relinked = len(relink)
    return outcome


def _anchor(session: Session, metadata_id: int, before: float) -> int | None:
    """The state_id of the entity's newest row before `before` (the first row's old state)."""
    return session.execute(
        select(States.state_id)
        .where(States.metadata_id == metadata_id, States.last_updated_ts < before)
        .order_by(States.last_updated_ts.desc(), States.state_id.desc())
        .limit(1)
    ).scalar()
