"""Background tasks of the mirror path: tied to the config entry, stopped with the engine's helper.

Started as the entry's background tasks (Home Assistant cancels them when the entry unloads);
stopped by the mirror path itself with `client/tasks.py`'s `cancel_and_wait`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant

from ..client.tasks import cancel_and_wait  # noqa: TID252 - the one way tasks are stopped

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


class BackgroundTasks:
    """The running background tasks of one part of the mirror path."""

    def __init__(self, hass: HomeAssistant, entry: HaIngestionConfigEntry) -> None:
        """No task yet."""
        self.hass = hass
        self.entry = entry
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """How many are running."""
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run `coro` as the entry's background task `ha_ingestion <name> <entry id>`."""
        task = self.entry.async_create_background_task(
            self.hass, coro, f"ha_ingestion {name} {self.entry.entry_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        """Cancel every running task and wait until each has ended (idempotent)."""
        await cancel_and_wait(*self._tasks)
