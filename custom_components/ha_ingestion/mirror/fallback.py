"""A remote without `subscribe_entities` (`unknown_command`): the mirrors' states another way.

`get_states` once per connection, then the `state_changed` events of the link (when subscribed),
an older change never overwriting a newer one; each turned into the update a `subscribe_entities`
message would have been (`EntityStates`), so the mirrors apply both the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import callback

from ..client import (  # noqa: TID252 - the package's engine
    EntitiesUpdate,
    EntityStates,
    HaClientError,
    LinkEngine,
    TaskSet,
    compress_state,
)
from ..const import LOGGER  # noqa: TID252 - the package's one logger


class StatesFallback:
    """The states of a remote without `subscribe_entities`, as `subscribe_entities` updates."""

    def __init__(
        self,
        engine: LinkEngine,
        title: str,
        on_entities: Callable[[EntitiesUpdate], None],
        tasks: TaskSet,
    ) -> None:
        """`on_entities`: where the updates go; `title`: the entry's, for the log."""
        self.engine = engine
        self.title = title
        self.on_entities = on_entities
        self.tasks = tasks
        # This connection's states, None until loaded; and the state_changed events that came
        # while get_states was answered.
        self._states: EntityStates | None = None
        self._early: list[dict[str, Any]] = []
        self._loading = False

    def start(self) -> None:
        """A new connection to such a remote: read every state once."""
        self.tasks.start(self._load(), "mirror states")

    def link_lost(self) -> None:
        """This connection's states are no longer current."""
        self._states = None

    async def _load(self) -> None:
        """Every state once, then the state_changed events that came meanwhile."""
        self._states, self._early = None, []
        self._loading = True
        try:
            reply = await self.engine.command({"type": "get_states"})
        except HaClientError as err:
            LOGGER.debug("States of %s not read: %s", self.title, err)
            return
        finally:
            self._loading = False
        states = EntityStates()
        added = dict(
            pair
            for item in (reply if type(reply) is list else ())
            if (pair := compress_state(item))
        )
        self._states = states
        self.on_entities(states.apply({"a": added})[0])
        early, self._early = self._early, []
        for data in early:
            self._change(states, data)

    @callback
    def on_event(self, event: dict[str, Any]) -> None:
        """A remote event (from the reader): for the fallback only, state_changed."""
        data = event.get("data")
        if event.get("event_type") != "state_changed" or type(data) is not dict:
            return
        if self._states is not None:
            self._change(self._states, data)
        elif self._loading:
            self._early.append(data)

    def _change(self, states: EntityStates, data: dict[str, Any]) -> None:
        entity_id = data.get("entity_id")
        if type(entity_id) is not str:
            return
        new_state = data.get("new_state")
        if new_state is None:
            self.on_entities(states.apply({"r": [entity_id]})[0])
            return
        pair = compress_state(new_state)
        if pair is None:
            return
        known = states.states.get(entity_id)
        if known is not None and pair[1]["lu"] < known.last_updated:
            return  # older than what get_states told (it came before the reply)
        self.on_entities(states.apply({"a": dict([pair])})[0])
