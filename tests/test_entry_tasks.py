"""A config entry's background tasks: stopping ends them all and logs an error one ended with."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.const import DOMAIN
from custom_components.ha_ingestion.entry_tasks import end_tasks, entry_tasks


async def test_stopping_ends_every_task_and_logs_the_error_one_ended_with(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    entry = MockConfigEntry(domain=DOMAIN)
    entry.add_to_hass(hass)
    tasks = entry_tasks(hass, entry)
    running = asyncio.Event()

    async def forever() -> None:
        await asyncio.Event().wait()

    async def fails_when_cancelled() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("broken cleanup")

    first = tasks.start(forever(), "forever")
    tasks.start(fails_when_cancelled(), "broken")
    await running.wait()
    assert first.get_name() == f"ha_ingestion forever {entry.entry_id}"
    assert first in entry._background_tasks  # the entry's own: cancelled by HA on unload

    await end_tasks(tasks, "test")

    assert not tasks
    assert first.cancelled()
    assert "A test task ended with an error" in caplog.text
    assert "broken cleanup" in caplog.text
    await end_tasks(tasks, "test")  # idempotent: nothing left
