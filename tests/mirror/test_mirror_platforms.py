"""Only the platforms an entry's mirrors need are loaded (mirror/platforms.py).

The entry forwards its own platforms and those of its registered mirrors at setup; any other
mirrored domain is loaded late, once, when a remote entity of it is mirrored; unload unloads
exactly what was loaded. Against the in-process fake remote (`tests/fake_ha.py`); every wait is
bounded, no test asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntries, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_component import DATA_INSTANCES
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion import PLATFORMS
from custom_components.ha_ingestion.client import TaskSet
from custom_components.ha_ingestion.diagnostics import async_get_config_entry_diagnostics
from custom_components.ha_ingestion.mirror.platforms import EntryPlatforms
from tests.conftest import wait_for
from tests.fake_ha import FakeHA
from tests.mirror.test_mirror import POWER, SetupLink, mirror_of, state_of
from tests.mirror.test_native import REMOTE

OWN = sorted(str(p) for p in PLATFORMS)
LIGHT = REMOTE["light"][2]


class Forwards:
    """Every `async_forward_entry_setups` call (its platforms); optionally held at a gate."""

    def __init__(self, hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail = False
        real = ConfigEntries.async_forward_entry_setups
        real_locked = ConfigEntries._async_forward_entry_setups_locked

        async def forward(entry: Any, platforms: Iterable[Platform | str]) -> None:
            platforms = sorted(str(p) for p in platforms)
            self.calls.append(platforms)
            if self.fail:
                raise ImportError("broken platform")
            await real(hass.config_entries, entry, platforms)

        async def locked(entry: Any, platforms: Iterable[Platform | str]) -> None:
            # Inside the forward, holding the entry's setup lock (as Home Assistant's does).
            self.entered.set()
            if self.gate is not None:
                await self.gate.wait()
            await real_locked(hass.config_entries, entry, platforms)

        monkeypatch.setattr(hass.config_entries, "async_forward_entry_setups", forward)
        monkeypatch.setattr(hass.config_entries, "_async_forward_entry_setups_locked", locked)

    def late(self) -> list[list[str]]:
        """The calls after the first (setup's)."""
        return self.calls[1:]


@pytest.fixture
def forwards(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> Forwards:
    return Forwards(hass, monkeypatch)


def entry_platforms(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    """The domains whose entity component holds a platform of the entry now (unload drops it)."""
    return {
        domain
        for domain, component in hass.data.get(DATA_INSTANCES, {}).items()
        if entry.entry_id in component._platforms
    }


async def sensors_and_a_light(fake_ha: FakeHA) -> None:
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "1200", POWER)
    await fake_ha.fire_state_changed("light.bed_light", "on", LIGHT)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_remote_with_sensors_and_lights_loads_the_light_platform_not_the_others(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, forwards: Forwards
) -> None:
    await sensors_and_a_light(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "light.remote_home_bed_light") == "on")
    assert state_of(hass, "sensor.remote_home_heat_pump_power") == "1200"
    # Setup: the link's own platforms only (nothing registered yet); the light's late, once.
    assert forwards.calls == [OWN, ["light"]]
    assert entry_platforms(hass, entry) == {*OWN, "light"}
    assert "light" in hass.config.components
    for domain in ("vacuum", "camera", "media_player", "notify", "weather", "calendar", "todo"):
        assert domain not in hass.config.components
    # The light's entities are added inside its forward: it is loaded once the forward returns.
    await wait_for(lambda: "light" in mirror_of(entry).platforms.loaded)
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["mirror"]["platforms_loaded"] == sorted({*OWN, "light"})
    assert diagnostics["mirror"]["platforms_waiting"] == []
    assert diagnostics["mirror"]["platform_load_failures"] == 0


async def test_a_new_domain_live_is_loaded_once_and_its_entities_added(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, forwards: Forwards
) -> None:
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "1200", POWER)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "1200")
    assert "switch" not in hass.config.components

    await fake_ha.fire_state_changed("switch.pump", "on", {"friendly_name": "Pump"})
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    await fake_ha.fire_state_changed("switch.valve", "off", {})
    await wait_for(lambda: state_of(hass, "switch.remote_home_valve") == "off")
    await fake_ha.fire_state_changed("switch.pump", "off", {})
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "off")
    assert forwards.late() == [["switch"]]
    assert entry_platforms(hass, entry) == {*OWN, "switch"}
    assert mirror_of(entry).local.pending == {}


async def test_requests_for_the_same_domain_load_it_once_several_domains_in_one_call(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, forwards: Forwards
) -> None:
    entry = await setup_link()
    platforms = mirror_of(entry).platforms
    forwards.gate = asyncio.Event()
    for domain in ("cover", "fan", "cover", "sensor"):  # sensor: loaded already
        platforms.want(domain)
    await wait_for(lambda: len(forwards.calls) == 2)
    platforms.want("cover")  # loading now
    platforms.want("fan")
    platforms.want("lock")  # asked for meanwhile: the next call
    assert platforms.as_dict()["platforms_waiting"] == ["cover", "fan", "lock"]
    forwards.gate.set()
    await wait_for(lambda: len(forwards.calls) == 3)
    await wait_for(lambda: "lock" in platforms.loaded)
    platforms.want("cover")
    platforms.want("lock")
    await hass.async_block_till_done()
    assert forwards.late() == [["cover", "fan"], ["lock"]]
    assert entry_platforms(hass, entry) == {*OWN, "cover", "fan", "lock"}


async def test_registered_mirrors_platforms_load_at_setup_before_the_link_connects(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, forwards: Forwards
) -> None:
    await sensors_and_a_light(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "light.remote_home_bed_light") == "on")

    fake_ha.refuse = True
    await fake_ha.close_all()
    forwards.calls.clear()
    await hass.config_entries.async_reload(entry.entry_id)
    # At once, from setup's own forward: the light mirror exists, unavailable until told.
    assert forwards.calls == [sorted({*OWN, "light"})]
    assert state_of(hass, "light.remote_home_bed_light") == STATE_UNAVAILABLE
    fake_ha.refuse = False
    await wait_for(lambda: state_of(hass, "light.remote_home_bed_light") == "on")
    assert forwards.late() == []


async def test_unload_and_reload_with_late_platforms_are_clean(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    forwards: Forwards,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sensors_and_a_light(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "light.remote_home_bed_light") == "on")

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry_platforms(hass, entry) == set()
    # Removed from the state machine (the registry keeps it, as every registered mirror).
    assert state_of(hass, "light.remote_home_bed_light") in (None, STATE_UNAVAILABLE)
    assert er.async_get(hass).async_get("light.remote_home_bed_light") is not None

    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: state_of(hass, "light.remote_home_bed_light") == "on")
    await hass.config_entries.async_reload(entry.entry_id)
    await wait_for(lambda: state_of(hass, "light.remote_home_bed_light") == "on")
    assert entry_platforms(hass, entry) == {*OWN, "light"}
    assert errors(caplog) == []


async def test_a_load_in_progress_at_unload_finishes_first_one_not_started_is_dropped(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    forwards: Forwards,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await setup_link()
    platforms = mirror_of(entry).platforms
    forwards.gate = asyncio.Event()
    forwards.entered.clear()
    platforms.want("cover")
    await asyncio.wait_for(forwards.entered.wait(), 10)
    unload = hass.async_create_task(hass.config_entries.async_unload(entry.entry_id))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not unload.done()  # waits for the load: never a platform half loaded
    assert entry.state is ConfigEntryState.LOADED
    forwards.gate.set()
    assert await unload
    assert entry_platforms(hass, entry) == set()

    # Asked for, not started, when unload begins: never loaded, nothing raised.
    assert await hass.config_entries.async_setup(entry.entry_id)
    platforms = mirror_of(entry).platforms
    platforms.want("fan")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert "fan" not in platforms.loaded
    assert entry_platforms(hass, entry) == set()
    assert errors(caplog) == []


async def test_a_failed_load_is_counted_logged_once_and_the_link_goes_on(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    forwards: Forwards,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await setup_link()
    forwards.fail = True
    await fake_ha.fire_state_changed("switch.pump", "on", {})
    platforms = mirror_of(entry).platforms
    await wait_for(lambda: platforms.failures == 1)
    platforms.want("switch")  # failed: not tried again until a reload
    platforms.want("fan")
    await wait_for(lambda: platforms.failures == 2)
    assert forwards.late() == [["switch"], ["fan"]]
    assert [m for m in errors(caplog) if "Could not load" in m] == [
        "Could not load the platforms switch of Remote Home; their mirrors wait (see "
        "diagnostics); other entities are not affected"
    ]
    assert "switch.pump" in mirror_of(entry).local.pending
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["mirror"]["platforms_failed"] == ["fan", "switch"]
    assert diagnostics["mirror"]["platform_load_failures"] == 2
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "5", POWER)
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "5")


async def test_a_mirror_whose_platform_loads_after_the_link_dropped_is_unavailable(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, forwards: Forwards
) -> None:
    entry = await setup_link()
    forwards.gate = asyncio.Event()
    forwards.entered.clear()
    await fake_ha.fire_state_changed("switch.pump", "on", {})
    await asyncio.wait_for(forwards.entered.wait(), 10)
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: not mirror_of(entry).local.connected)
    forwards.gate.set()
    await wait_for(lambda: "switch" in mirror_of(entry).platforms.loaded)
    await hass.async_block_till_done()
    # Its told state is stale now: unavailable (the link's doing), never "on".
    assert state_of(hass, "switch.remote_home_pump") == STATE_UNAVAILABLE
    fake_ha.refuse = False
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")


async def test_a_domain_setup_loaded_meanwhile_is_not_forwarded_nor_one_without_a_loaded_entry(
    hass: HomeAssistant, forwards: Forwards
) -> None:
    entry = MockConfigEntry(domain="ha_ingestion", title="Remote Home")
    entry.add_to_hass(hass)
    entry.mock_state(hass, ConfigEntryState.LOADED)
    tasks = TaskSet(hass.async_create_task)
    platforms = EntryPlatforms(hass, entry, tasks)  # type: ignore[arg-type]
    # Asked for while setup runs, then forwarded by setup itself: nothing late.
    platforms.want("cover")
    assert platforms.at_setup(["cover", "sensor"]) == ["cover", "sensor"]
    await hass.async_block_till_done()
    assert forwards.calls == []
    # Setup failed (or the entry is unloading): nothing forwarded; asked for again next time.
    entry.mock_state(hass, ConfigEntryState.SETUP_ERROR)
    platforms.want("fan")
    await hass.async_block_till_done()
    assert forwards.calls == []
    assert platforms.as_dict()["platforms_waiting"] == ["fan"]
    entry.mock_state(hass, ConfigEntryState.LOADED)
    forwards.fail = True  # what is forwarded is all this test looks at
    platforms.want("fan")
    await hass.async_block_till_done()
    assert forwards.calls == [["fan"]]
