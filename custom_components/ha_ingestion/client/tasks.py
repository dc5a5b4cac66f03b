"""Background tasks of the engine: how they are started, and how they are stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import contextlib
from typing import Any

# Starts a coroutine as a named task; a host (e.g. Home Assistant) may pass its own to track it.
type TaskFactory = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


def create_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """Start `coro` as a task of the running loop: the default `TaskFactory`."""
    return asyncio.create_task(coro, name=name)


def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel each task, except the one running this code (it is ending by itself)."""
    current = asyncio.current_task()
    for task in tasks:
        if task is not None and task is not current:
            task.cancel()


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel each task in turn and wait until it has ended (the running one is left alone).

    An error a task ended with, other than its cancellation, is raised here: it is a bug.
    """
    current = asyncio.current_task()
    for task in tasks:
        if task is not None and task is not current:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class TaskSet:
    """The background tasks one owner started (through `factory`), all ended by `cancel_all`.

    The integration's capture and mirrors keep theirs in one (started as the config entry's
    background tasks); a finished task leaves the set by itself.
    """

    def __init__(self, factory: TaskFactory = create_task) -> None:
        """`factory` starts each task (the default: a plain task of the running loop)."""
        self._factory = factory
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """Tasks still running."""
        return len(self._tasks)

    def start(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start `coro` as a task of this set."""
        task = self._factory(coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_all(self) -> list[BaseException]:
        """Cancel every task and wait for each; the errors they ended with (stopping goes on)."""
        tasks = tuple(self._tasks)
        cancel(*tasks)
        errors: list[BaseException] = []
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as err:  # noqa: BLE001 - the caller logs them; stopping must finish
                errors.append(err)
        self._tasks.difference_update(tasks)  # ended: their own callbacks may not have run yet
        return errors
