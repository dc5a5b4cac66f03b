"""The checkpoint Store: throttled writes, immediate flush, removal."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.ha_ingestion.capture.checkpoint import SAVE_DELAY, Checkpoint, storage_key


async def test_writes_are_throttled_and_flushed(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    """Many changes: one write after SAVE_DELAY; flush writes at once; load reads it back."""
    state = {"n": 0}
    checkpoint = Checkpoint(hass, "entry1")
    assert await checkpoint.async_load(lambda: dict(state)) is None
    for n in range(100):
        state["n"] = n
        checkpoint.schedule()
    await hass.async_block_till_done()
    assert storage_key("entry1") not in hass_storage
    freezer.tick(SAVE_DELAY + 1)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass_storage[storage_key("entry1")]["data"] == {"n": 99}
    assert checkpoint.writes == 1

    state["n"] = 100
    await checkpoint.async_flush()
    assert hass_storage[storage_key("entry1")]["data"] == {"n": 100}
    again = Checkpoint(hass, "entry1")
    assert await again.async_load(dict) == {"n": 100}
    await again.async_remove()
    assert storage_key("entry1") not in hass_storage


async def test_unreadable_store_is_none(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    """Stored data that is not an object is treated as no checkpoint."""
    hass_storage[storage_key("e2")] = {"version": 1, "minor_version": 1, "key": "k", "data": [1]}
    assert await Checkpoint(hass, "e2").async_load(dict) is None
    checkpoint = Checkpoint(hass, "e3")
    checkpoint.schedule()  # before load: nothing to write, nothing raised
    await checkpoint.async_flush()
    assert storage_key("e3") not in hass_storage
