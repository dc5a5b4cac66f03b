"""The checkpoint Store: throttled writes, immediate flush, removal."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.ha_ingestion.capture.checkpoint import (
    SAVE_DELAY,
    Checkpoint,
    restore,
    storage_key,
)
from custom_components.ha_ingestion.capture.gaps import OpenGap
from custom_components.ha_ingestion.capture.state import CaptureSettings, CaptureState
from custom_components.ha_ingestion.const import CONF_FORWARD_EVENTS, DEFAULT_OPTIONS


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


def _restored(stored: dict[str, Any]) -> CaptureState:
    """Restore `stored` into a fresh state; a gap opened at the start is recorded as such."""
    state = CaptureState()
    settings = CaptureSettings.from_options(
        ("state_changed",), {**DEFAULT_OPTIONS, CONF_FORWARD_EVENTS: True}
    )

    def open_gap(lost_at: float, *, margin: bool = True, last_seen: float | None = None) -> OpenGap:
        state.gap = OpenGap(start_us=0, lost_at=lost_at, last_seen=last_seen)
        return state.gap

    restore(state, settings, stored, open_gap=open_gap, title="Remote")
    return state


def test_outage_across_a_restart_starts_at_the_last_sign_of_life_before_it() -> None:
    """Stopped while linked: the gap opened at the start has the checkpoint's last sign of life.
    Stopped while the link was back and its gap recovered: the stop is a new outage of that gap.
    Stopped while the link was down: the outage goes on from the sign of life before the loss.
    A checkpoint of an earlier release (no last sign of life): the outage is unknown."""
    base = {"clean": True, "saved_at": 1_000.0, "seen": {}, "last_seen": 990.0}
    linked = _restored({**base, "gap": None})
    assert linked.gap is not None
    assert (linked.gap.lost_at, linked.gap.last_seen) == (1_000.0, 990.0)

    recovering = OpenGap(start_us=0, lost_at=500.0, last_seen=400.0, back_at=600.0)
    again = _restored({**base, "gap": recovering.as_dict()})
    assert again.gap is not None
    assert (again.gap.lost_at, again.gap.detected_at) == (500.0, 1_000.0)
    assert (again.gap.last_seen, again.gap.back_at) == (990.0, None)

    down = OpenGap(start_us=0, lost_at=500.0, last_seen=400.0)
    still = _restored({**base, "gap": down.as_dict()})
    assert still.gap == down

    old = _restored({"clean": True, "saved_at": 1_000.0, "seen": {}, "gap": None})
    assert old.gap is not None
    assert old.gap.last_seen is None
    assert old.last_outage is None
