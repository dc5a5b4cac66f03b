"""The mirror path's background tasks: stopping them does not hide an error one ended with."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.ha_ingestion.client import TaskSet
from custom_components.ha_ingestion.mirror.background import cancel_all


async def test_stopping_raises_the_error_a_task_ended_with() -> None:
    tasks = TaskSet()
    running = asyncio.Event()

    async def forever() -> None:
        await asyncio.Event().wait()

    async def fails_when_cancelled() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("broken cleanup")

    tasks.start(forever(), "forever")
    tasks.start(fails_when_cancelled(), "broken")
    await running.wait()
    with pytest.raises(RuntimeError, match="broken cleanup"):
        await cancel_all(tasks)
    assert not tasks
    await cancel_all(tasks)  # idempotent: nothing left
