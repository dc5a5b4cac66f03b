"""Remote entities that are themselves mirrors made by this integration: never mirrored back.

When two instances link each other, A's mirror of B's `light.porch` is an entity on A; B must
not mirror it again (a mirror of a mirror, then of that mirror...), nor capture its changes as
events. How one is recognised: the remote's entity registry display list
(`config/entity_registry/list_for_display`, allowed for non-admin tokens; a few short fields
per entity) names each registered entity's platform (`pl`); a mirror is registered there with
platform `ha_ingestion` (every mirror has a unique id, so it is always registered, before its
first state is written). Names, attributes and entity ids prove nothing (they are the remote
entity's, verbatim, and users rename).

When it is read: at each connect, and whenever an entity appears that the last read did not
list (the remote may add mirrors at any time: a new link there, a new entity on a third
instance). A read sent after an entity's first state arrived here lists it when it is a mirror.

Until it is classified, an entity is not mirrored (held; `LocalMirrors`); a read that fails
leaves unclassified entities unmirrored (never a mirror of a mirror by mistake), retried at the
next connect, the next unknown entity, or after `RETRY_DELAY`. Entities classified before keep
their verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..client import HaClientError, LinkEngine, LinkSnapshot, TaskSet  # noqa: TID252 - engine
from ..const import DOMAIN, LOGGER  # noqa: TID252 - the package's own constants

LIST_FOR_DISPLAY = "config/entity_registry/list_for_display"
RETRY_DELAY = 60.0


class RemoteMirrors:
    """Which remote entities are mirrors made by this integration (from the remote's registry)."""

    def __init__(
        self,
        engine: LinkEngine,
        title: str,
        tasks: TaskSet,
        on_read: Callable[[], None] | None = None,
    ) -> None:
        """`on_read`: called after each successful read (held entities can be classified)."""
        self.engine = engine
        self.title = title
        self.tasks = tasks
        self.on_read = on_read
        # Remote mirrors; changed in place (capture's live path holds this very set).
        self.entity_ids: set[str] = set()
        # Every entity the last successful read listed, and those a read found unregistered.
        self.not_mirrors: set[str] = set()
        self.reads = 0
        self.failures = 0
        self.last_error: str | None = None
        self._reading = False
        self._again = False
        self._waiting: set[str] = set()
        self._connected = False
        self._failure_logged = False

    # ------------------------------------------------------------------ verdicts

    def classify(self, remote_id: str) -> bool | None:
        """True: a remote mirror; False: not one; None: not known yet (a read is asked for)."""
        if remote_id in self.entity_ids:
            return True
        if remote_id in self.not_mirrors:
            return False
        self._waiting.add(remote_id)
        self.read()
        return None

    # ------------------------------------------------------------------ the link

    def on_snapshot(self, snapshot: LinkSnapshot) -> None:
        """A new connection: read the registry again (what changed while down)."""
        connected = snapshot.connected
        was, self._connected = self._connected, connected
        if connected and not was:
            self.read()

    def read(self) -> None:
        """Read the remote's registry (once more after the one in flight, if one is).

        Not before the link is connected: a subscription's first message comes while it is
        still being set up; the read at connect, sent after it, tells those entities.
        """
        if not self._connected:
            return
        if self._reading:
            self._again = True
            return
        self._reading = True
        self.tasks.start(self._read(), "remote mirrors")

    async def _read(self) -> None:
        try:
            while True:
                self._again = False
                waiting, self._waiting = self._waiting, set()
                try:
                    reply = await self.engine.command({"type": LIST_FOR_DISPLAY})
                except HaClientError as err:
                    self._failed(str(err), waiting)
                    break
                if not self._apply(reply, waiting):
                    self._failed("unexpected reply", waiting)
                    break
                if not self._again:
                    break
        finally:
            self._reading = False

    def _apply(self, reply: Any, waiting: set[str]) -> bool:
        entities = reply.get("entities") if type(reply) is dict else None
        if type(entities) is not list:
            return False
        mirrors: set[str] = set()
        listed: set[str] = set()
        for item in entities:
            if type(item) is not dict:
                continue
            entity_id = item.get("ei")
            if type(entity_id) is not str:
                continue
            listed.add(entity_id)
            if item.get("pl") == DOMAIN:
                mirrors.add(entity_id)
        # Unregistered entities seen before this read (no unique id there) are no mirrors.
        listed.update(waiting - mirrors)
        self.entity_ids.clear()
        self.entity_ids.update(mirrors)
        # An unregistered entity is in no read: the verdict of an earlier one stands (else each
        # connect would hold every such entity until a second read).
        self.not_mirrors = (listed | self.not_mirrors) - mirrors
        self.reads += 1
        self.last_error = None
        self._failure_logged = False
        if self.on_read is not None:
            self.on_read()
        return True

    def _failed(self, error: str, waiting: set[str]) -> None:
        self._waiting |= waiting
        self.failures += 1
        self.last_error = error
        if not self._failure_logged:
            self._failure_logged = True
            LOGGER.warning(
                "Cannot read the entity registry of %s (%s): its new entities are not mirrored "
                "until it can be read (a mirror of a mirror is never made by mistake)",
                self.title,
                error,
            )
        self.tasks.start(self._retry(), "remote mirrors retry")

    async def _retry(self) -> None:
        await asyncio.sleep(RETRY_DELAY)
        if self._waiting and self._connected:
            self.read()

    # ------------------------------------------------------------------ diagnostics

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show."""
        return {
            "recognised": len(self.entity_ids),
            "unclassified": len(self._waiting),
            "registry_reads": self.reads,
            "registry_failures": self.failures,
            "last_error": self.last_error,
        }
