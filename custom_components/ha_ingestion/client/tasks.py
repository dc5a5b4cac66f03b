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
