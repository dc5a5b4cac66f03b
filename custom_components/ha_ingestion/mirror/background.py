"""Background tasks of the mirror path: the config entry's, kept in the engine's `TaskSet`.

Started as the entry's background tasks (Home Assistant cancels them when the entry unloads);
ended by the mirror path itself with `TaskSet.cancel_all` (`client/tasks.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant

from ..client import TaskSet  # noqa: TID252 - the one helper for background tasks

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


def entry_tasks(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> TaskSet:
    """A task set whose tasks are `entry`'s background tasks `ha_ingestion <name> <entry id>`."""
    return TaskSet(
        lambda coro, name: entry.async_create_background_task(
            hass, coro, f"ha_ingestion {name} {entry.entry_id}"
        )
    )


async def cancel_all(tasks: TaskSet) -> None:
    """End every task of `tasks`; an error one ended with (other than its cancellation) is raised.

    Such an error is a bug: stopping does not hide it.
    """
    if errors := await tasks.cancel_all():
        raise errors[0]
