"""Recovered changes of mirrored entities become the mirrors' recorded history (no hole).

Capture recovers an outage's state changes from the remote's history (`capture/recovery.py`);
each change of a mirrored entity is handed here (`record`) instead of being fired as an
`ha_ingestion_event` (with *Also fire state changes* on: as well). Here it becomes a past state
of the mirror, written by the LOCAL recorder (`recorder_history.py`, on the recorder's thread,
through its queue):

- under the mirror's registered local entity id, at the remote's `last_changed`/`last_updated`,
  in the order capture hands them (each entity's changes in time order);
- with the attributes the mirror would have recorded live: the remote's, the mirror's own
  friendly name, the domain's unrecorded attributes left out; shared `state_attributes` rows;
- in batches of `BATCH`, at most `IN_FLIGHT` batches queued before capture's next history request
  waits for them (`flush`), so an outage of hours never queues the recorder more than that;
- nothing is fired: no `state_changed`, no automation trigger, no live logbook entry, and the
  live state (the state machine's) is never touched: an older recovered change cannot overwrite
  it.

When the gap is closed (`gap_recovered`): `MendHole` per `MEND_BATCH` mirrors removes the
`unavailable` rows the mirrors wrote because the link was down (marked: `local_entities.py`;
only when the whole gap was recovered) and links the rows of the span in order
(`old_state_id`). It is queued after the last batch, and the
gap's long-term statistics (`gap_statistics.py`, told by capture right after) go through the same
queue after it: states first, then statistics.

Without a local recorder, nothing is taken (`record` answers False): capture fires the change as
an event, as before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import time
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.recorder import get_instance

from .entity import mirror_class
from .recorder_history import (
    MendHole,
    MendOutcome,
    PastRow,
    WriteOutcome,
    WritePastStates,
    mark_bytes,
)

if TYPE_CHECKING:
    from .mirror import EntityMirror

BATCH = 500  # recovered changes per recorder task
IN_FLIGHT = 4  # tasks queued and not done before `flush` waits
MEND_BATCH = 200  # mirrors per MendHole task
US = 1_000_000

type _Identity = tuple[str, str | None, frozenset[str]] | None


class RecoveredHistory:
    """The mirrors' side of a recovered gap: changes in, past states and a mended span out."""

    def __init__(self, hass: HomeAssistant, mirror: EntityMirror) -> None:
        """Nothing queued yet."""
        self.hass = hass
        self._mirror = mirror
        self._rows: list[PastRow] = []
        self._queued: deque[asyncio.Future[None]] = deque()
        # Per remote entity, for the gap being recovered: (local id, friendly name, unrecorded).
        self._identity: dict[str, _Identity] = {}
        # Spans (epoch seconds) this entry was unloading in (a reload, this process): the
        # `unavailable` Home Assistant writes for each removed mirror falls in one.
        self.unloads: list[tuple[float, float]] = []
        self.taken = 0
        self.written = 0
        self.duplicate = 0
        self.not_recorded = 0
        self.removed_unavailable = 0
        self.relinked = 0
        self.failed_tasks = 0
        self.gaps = 0

    def _recorder_ready(self) -> bool:
        if "recorder" not in self.hass.config.components:
            return False
        try:
            get_instance(self.hass)
        except KeyError:
            return False
        return True

    @callback
    def record(
        self,
        remote_id: str,
        state: Any,
        attributes: Any,
        changed_us: int,
        updated_us: int,
    ) -> bool:
        """One recovered change: True when it becomes a past state of a mirror (taken)."""
        if type(state) is not str or type(attributes) is not dict:
            return False
        identity = self._identity.get(remote_id)
        if identity is None:
            # Not kept while unknown: the recorder may not be ready yet, the mirror not yet made.
            identity = self._identify(remote_id)
            if identity is None:
                return False
            self._identity[remote_id] = identity
        entity_id, friendly_name, unrecorded = identity
        if friendly_name is not None:
            attributes = {**attributes, "friendly_name": friendly_name}
        self._rows.append(
            PastRow(
                entity_id=entity_id,
                state=state,
                attributes=attributes,
                changed=changed_us / US,
                updated=updated_us / US,
                unrecorded=unrecorded,
            )
        )
        self.taken += 1
        if len(self._rows) >= BATCH:
            self._queue_rows()
        return True

    def _identify(self, remote_id: str) -> _Identity:
        """The mirror's local id, its own friendly name and its unrecorded attributes."""
        if not self._recorder_ready():
            return None
        entity_id = self._mirror.local_entity_id(remote_id)
        if entity_id is None:
            return None
        live = self.hass.states.get(entity_id)
        name = live.attributes.get("friendly_name") if live is not None else None
        cls = mirror_class(remote_id.partition(".")[0])
        unrecorded = frozenset(
            cls._entity_component_unrecorded_attributes | cls._unrecorded_attributes
        )
        return entity_id, name if type(name) is str else None, unrecorded

    def _queue_rows(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            future = self.hass.loop.create_future()
            get_instance(self.hass).queue_task(
                WritePastStates(rows, self._told(future, self._on_written))
            )
            self._queued.append(future)

    def _told[T](
        self, future: asyncio.Future[None], handler: Callable[[T], None]
    ) -> Callable[[T], None]:
        """A callback for the recorder's thread: `handler(outcome)` on the loop, then done."""

        def _done(outcome: T) -> None:
            handler(outcome)
            if not future.done():
                future.set_result(None)

        def _tell(outcome: T) -> None:
            self.hass.loop.call_soon_threadsafe(_done, outcome)

        return _tell

    def _on_written(self, outcome: WriteOutcome) -> None:
        self.written += outcome.written
        self.duplicate += outcome.duplicate
        self.not_recorded += outcome.not_recorded
        self.failed_tasks += outcome.failed

    def _on_mended(self, outcome: MendOutcome) -> None:
        self.removed_unavailable += outcome.removed
        self.relinked += outcome.relinked
        self.failed_tasks += outcome.failed

    async def flush(self) -> None:
        """Queue what waits; wait until at most IN_FLIGHT tasks are still queued."""
        self._queue_rows()
        while self._queued and (self._queued[0].done() or len(self._queued) > IN_FLIGHT):
            await self._queued.popleft()

    @callback
    def gap_recovered(self, start_us: int, complete: bool) -> None:
        """The gap is closed: queue what waits, then mend every mirror's span.

        `start_us`: the gap's start (the earlier of both clocks); its link-down `unavailable`
        rows go only when `complete` (every change of the gap was recovered).
        """
        self._identity = {}
        if not self._recorder_ready():
            return
        self.gaps += 1
        self._queue_rows()
        mark = mark_bytes(self._mirror.link_down_mark) if complete else None
        unloads, self.unloads = self.unloads, []
        entity_ids = self._mirror.registered_entity_ids()
        instance = get_instance(self.hass)
        end = time.time()
        for index in range(0, len(entity_ids), MEND_BATCH):
            future = self.hass.loop.create_future()
            instance.queue_task(
                MendHole(
                    entity_ids[index : index + MEND_BATCH],
                    start_us / US,
                    end,
                    mark,
                    self._told(future, self._on_mended),
                    unloads,
                )
            )
            self._queued.append(future)

    async def async_drain(self) -> None:
        """Wait for everything queued (tests, benchmarks)."""
        self._queue_rows()
        while self._queued:
            await self._queued.popleft()

    def as_dict(self) -> dict[str, Any]:
        """Diagnostics."""
        return {
            "taken": self.taken,
            "written": self.written,
            "duplicate": self.duplicate,
            "not_recorded": self.not_recorded,
            "removed_unavailable": self.removed_unavailable,
            "relinked": self.relinked,
            "failed_tasks": self.failed_tasks,
            "gaps": self.gaps,
        }
