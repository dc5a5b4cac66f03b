"""Prints how long `hass.config_entries.async_setup` of one mirroring entry takes (no assertion).

Not collected by the suite (no `test_` prefix): run it by path (docs/performance.md):
`scripts/run --ha current python -m pytest -q -s -p no:cacheprovider tests/mirror/measure_setup.py`
The remote has a sensor and a light; each run is a fresh test `hass` (components not set up yet,
their modules already imported by tests/conftest.py).
"""

from __future__ import annotations

import time

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.const import (
    CONF_BACKFILL,
    CONF_FAILURE_THRESHOLD,
    CONF_MIRROR_ENTITIES,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from tests.conftest import TEST_OPTIONS
from tests.fake_ha import FakeHA

RUNS = 7


@pytest.mark.parametrize("run", range(RUNS))
async def test_measure_setup(hass: HomeAssistant, fake_ha: FakeHA, run: int) -> None:
    await fake_ha.fire_state_changed("sensor.power", "12", {"unit_of_measurement": "W"})
    await fake_ha.fire_state_changed("light.desk", "on", {"brightness": 10})
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=fake_ha.location_name,
        unique_id=fake_ha.user_id,
        data={CONF_URL: fake_ha.url, CONF_ACCESS_TOKEN: fake_ha.token, CONF_VERIFY_SSL: True},
        options={
            **TEST_OPTIONS,
            CONF_FAILURE_THRESHOLD: 1000,
            CONF_BACKFILL: False,
            CONF_MIRROR_ENTITIES: True,
        },
    )
    entry.add_to_hass(hass)
    began = time.perf_counter()
    assert await hass.config_entries.async_setup(entry.entry_id)
    took = time.perf_counter() - began
    await hass.async_block_till_done()
    print(f"\nSETUP_MS run={run} {took * 1000:.1f} components={len(hass.config.components)}")  # noqa: T201
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
