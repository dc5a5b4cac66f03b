"""Background tasks of a config entry (capture, mirrors), kept in the engine's `TaskSet`.

Started as the entry's background tasks (Home Assistant cancels them if the entry unloads without
us); ended by their owner with `end_tasks`, which waits for each (`client/tasks.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant

from .client import TaskSet
from .const import LOGGER

if TYPE_CHECKING:
    from .data import HaIngestionConfigEntry


def entry_tasks(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> TaskSet:
    """A task set whose tasks are `entry`'s background tasks `ha_ingestion <name> <entry id>`."""
    return TaskSet(
        lambda coro, name: entry.async_create_background_task(
            hass, coro, f"ha_ingestion {name} {entry.entry_id}"
        )
    )


async def end_tasks(tasks: TaskSet, owner: str) -> None:
    """Cancel and wait for every task of `tasks`; an error one ended with is logged (a bug).

    Stopping goes on (the checkpoint is still written, the entry still unloads) and hides nothing.
    """
    for err in await tasks.cancel_all():
        LOGGER.error("A %s task ended with an error", owner, exc_info=err)
