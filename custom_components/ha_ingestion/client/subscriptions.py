"""What the link asks of the remote on each connection: its event types and `subscribe_entities`.

A refusal degrades the link, it never takes it down: a refused event type is left out, a refused
(or too big) entities subscription leaves the mirror without states, and the others keep flowing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
import logging
from typing import Any

from .entities import EntitiesUpdate, EntityStates
from .errors import (
    HaClientError,
    HaMessageTooBigError,
    HaProtocolError,
    HaSubscriptionError,
    HaUnsupportedCommandError,
)
from .models import EngineConfig, ErrorRecord, SubscriptionStatus
from .protocol import HaWebSocketSession

type EntitiesListener = Callable[[EntitiesUpdate], None]
# One subscribe_entities message being applied (`EntityStates.steps`).
type EntitySteps = Generator[None, None, tuple[EntitiesUpdate, list[str]]]


class Subscriptions:
    """The subscriptions of the current connection, made again on each new one."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        record: Callable[[HaClientError, float], ErrorRecord],
        on_unknown: Callable[[HaClientError], None],
        wall: Callable[[], float],
        target: Callable[[], str],
        logger: logging.Logger,
    ) -> None:
        """Prepare them; `record` keeps a refusal, `on_unknown` a message skipped in part."""
        self._record = record
        self._on_unknown = on_unknown
        self._wall = wall
        self._target = target
        self._log = logger
        self._entities_listeners: list[EntitiesListener] = []
        self.configure(config)

    def configure(self, config: EngineConfig) -> None:
        """Take a new configuration: nothing confirmed, nothing refused, no entity problems."""
        self._config = config
        self._subscriptions: dict[str, int | None] = dict.fromkeys(config.connection.event_types)
        # Event types the remote refused on the current connection, with its answer.
        self._refused: dict[str, str] = {}
        # The subscribe_entities subscription: its id on this connection, the remote's refusal.
        self._entities_id: int | None = None
        self._entities_refused: str | None = None
        self._entities_unsupported = False
        self.entity_problems = 0
        # The subscription's states of the current connection; and, once its first message was
        # larger than max_msg_size (it ended the link), why it is not asked for again.
        self._entity_states: EntityStates | None = None
        self._entities_too_big: str | None = None

    def add_entities_listener(self, listener: EntitiesListener) -> Callable[[], None]:
        """Call `listener(update)` for each `subscribe_entities` message; returns an unsubscribe."""
        self._entities_listeners.append(listener)
        return lambda: self._entities_listeners.remove(listener)

    # ------------------------------------------------------------------ each connection

    async def subscribe(self, session: HaWebSocketSession) -> None:
        """Subscribe on a new connection; any error but a refusal fails the attempt."""
        refused: dict[str, str] = {}
        for event_type in self._subscriptions:
            try:
                self._subscriptions[event_type] = await session.subscribe_events(event_type)
            except HaSubscriptionError as err:
                # One refused type (e.g. admin-only for this token) degrades the link, it
                # does not take it down: the others keep flowing.
                refused[event_type] = self._record(err, self._wall()).message
        self._report_refused(refused)
        if self._config.entities is not None:
            await self._subscribe_entities(session)

    def mark_unconfirmed(self) -> None:
        """The connection is gone, and its subscriptions with it."""
        for event_type in self._subscriptions:
            self._subscriptions[event_type] = None
        self._entities_id = None

    def _report_refused(self, refused: dict[str, str]) -> None:
        """Log a change in the set of refused subscriptions (once, not on every reconnect)."""
        if refused.keys() != self._refused.keys():
            if refused:
                self._log.warning(
                    "%s refused the subscription to %s; the link stays up without it (%s)",
                    self._target(),
                    ", ".join(sorted(refused)),
                    "; ".join(refused[t] for t in sorted(refused)),
                )
            else:
                self._log.info("%s accepts every subscription again", self._target())
        self._refused = refused

    # ------------------------------------------------------------------ subscribe_entities

    async def _subscribe_entities(self, session: HaWebSocketSession) -> None:
        """The entities subscription on a new connection; a refusal degrades, never fails, it."""
        assert self._config.entities is not None  # noqa: S101 - only called when configured
        fields = self._config.entities.server_filter()
        refused: str | None = None
        unsupported = False
        self._entity_states = None
        if self._entities_too_big is not None:
            refused = self._entities_too_big
        elif fields is None:
            refused = "nothing matches the include/exclude filter"
        else:
            states = self._entity_states = EntityStates()
            try:
                self._entities_id = await session.subscribe_entities(
                    fields, lambda message: self._on_entities(states, message)
                )
            except HaSubscriptionError as err:
                refused = self._record(err, self._wall()).message
                unsupported = isinstance(err, HaUnsupportedCommandError)
        if (refused, unsupported) != (self._entities_refused, self._entities_unsupported):
            if refused is not None:
                self._log.warning(
                    "%s: no entity states to mirror (%s)%s",
                    self._target(),
                    refused,
                    "; the remote lacks subscribe_entities" if unsupported else "",
                )
            elif self._entities_refused is not None:
                self._log.info("%s accepts the entities subscription again", self._target())
        self._entities_refused, self._entities_unsupported = refused, unsupported

    def check_entities_too_big(self, reason: HaClientError) -> None:
        """A link ended by an oversize frame before the first entities message: it was that one.

        Asking again would end every connection the same way: the link goes on without it (until
        the configuration changes, e.g. a narrower filter).
        """
        states = self._entity_states
        if not isinstance(reason, HaMessageTooBigError) or states is None or states.messages:
            return
        self._entities_too_big = (
            "the remote's entity states exceed the message size limit "
            f"({self._config.connection.max_msg_size} bytes): narrow the include filter"
        )
        self._log.warning(
            "%s: the first message of the entities subscription was too large (%s); "
            "reconnecting without it",
            self._target(),
            reason,
        )

    def _on_entities(self, states: EntityStates, message: Any) -> Awaitable[None] | None:
        """Apply one message of the subscription; a big one in steps, the reader waiting for it.

        Returned to the reader: the rest, when the message is too big for one step. The reader
        reads on only once it is done, so messages still apply in their order.
        """
        steps = states.steps(message)
        return None if self._entities_step(steps) else self._apply_in_steps(steps)

    async def _apply_in_steps(self, steps: EntitySteps) -> None:
        while True:
            await asyncio.sleep(0)
            if self._entities_step(steps):
                return

    def _entities_step(self, steps: EntitySteps) -> bool:
        """One step of a message; True once it is applied (and its update told)."""
        try:
            next(steps)
        except StopIteration as done:
            self._entities_applied(*done.value)
            return True
        return False

    def _entities_applied(self, update: EntitiesUpdate, problems: list[str]) -> None:
        for problem in problems:
            self.entity_problems += 1
            self._on_unknown(HaProtocolError(f"entities message skipped in part: {problem}"))
        for listener in tuple(self._entities_listeners):
            try:
                listener(update)
            except Exception:  # noqa: BLE001 - a broken listener must not end the link
                self._log.exception("Error in entities listener")

    # ------------------------------------------------------------------ for the snapshot

    def statuses(self) -> tuple[SubscriptionStatus, ...]:
        """Each event type's subscription on the current connection."""
        return tuple(
            SubscriptionStatus(
                event_type=event_type,
                confirmed=sub_id is not None,
                subscription_id=sub_id,
                refused=self._refused.get(event_type),
            )
            for event_type, sub_id in self._subscriptions.items()
        )

    def entities_status(self) -> SubscriptionStatus | None:
        """The entities subscription on the current connection (None: not configured)."""
        if self._config.entities is None:
            return None
        return SubscriptionStatus(
            event_type="subscribe_entities",
            confirmed=self._entities_id is not None,
            subscription_id=self._entities_id,
            refused=self._entities_refused,
            unsupported=self._entities_unsupported,
        )
