"""The engine's task helpers: a set of background tasks started and ended together."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from custom_components.ha_ingestion.client import TaskSet


async def test_a_task_set_ends_every_task_and_returns_their_errors() -> None:
    started: list[str] = []

    def factory(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        started.append(name)
        return asyncio.create_task(coro, name=name)

    async def forever() -> None:
        await asyncio.Event().wait()

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("broken cleanup")

    async def done() -> None:
        return

    tasks = TaskSet(factory)
    finished = tasks.start(done(), "done")
    first = tasks.start(forever(), "forever")
    tasks.start(fails_when_cancelled(), "fails")
    await finished
    assert started == ["done", "forever", "fails"]
    assert len(tasks) == 2  # a finished task leaves by itself

    errors = await tasks.cancel_all()

    assert [str(err) for err in errors] == ["broken cleanup"]
    assert first.cancelled()
    assert len(tasks) == 0


async def test_the_default_factory_starts_plain_tasks() -> None:
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    tasks = TaskSet()
    task = tasks.start(work(), "work")
    await task
    assert ran.is_set()
    assert task.get_name() == "work"
    assert await tasks.cancel_all() == []
