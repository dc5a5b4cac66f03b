"""Mirrored states are recorded by the local recorder as native states; statistics see them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.components.recorder import Recorder, history
from homeassistant.components.recorder.statistics import list_statistic_ids
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import (
    CONF_BACKFILL,
    CONF_MIRROR_ENTITIES,
    EVENT_INGESTED,
)
from tests.conftest import link_state, linked_entry, wait_for
from tests.fake_ha import FakeHA


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder first: it must be set up before `hass` (the shared autouse asks for hass)."""


POWER: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
}
LOCAL = "sensor.remote_home_heat_pump_power"


async def mirroring(hass: HomeAssistant, fake_ha: FakeHA) -> MockConfigEntry:
    """A link to the fake remote mirroring its entities (no backfill), connected."""
    entry = linked_entry(fake_ha, **{CONF_BACKFILL: False, CONF_MIRROR_ENTITIES: True})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    return entry


async def test_mirrored_states_are_native_states_with_statistics_metadata(
    recorder_mock: Recorder, hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "1200", POWER)
    start = dt_util.utcnow() - timedelta(seconds=1)
    entry = await mirroring(hass, fake_ha)
    await wait_for(lambda: getattr(hass.states.get(LOCAL), "state", None) == "1200")
    for value in ("900", "950"):
        await fake_ha.fire_state_changed("sensor.heat_pump_power", value, POWER)
        await wait_for(lambda v=value: getattr(hass.states.get(LOCAL), "state", None) == v)  # type: ignore[misc]
    await async_wait_recording_done(hass)

    states = await recorder_mock.async_add_executor_job(
        history.state_changes_during_period, hass, start, None, LOCAL
    )
    assert [s.state for s in states[LOCAL]] == ["1200", "900", "950"]
    assert states[LOCAL][-1].attributes["state_class"] == "measurement"
    # The sensor statistics see it as a measurement in W (compiled every 5 minutes).
    ids = await recorder_mock.async_add_executor_job(list_statistic_ids, hass, {LOCAL})
    assert [(i["statistic_id"], i["statistics_unit_of_measurement"]) for i in ids] == [(LOCAL, "W")]
    # Not also stored as events.
    events = await recorder_mock.async_add_executor_job(_event_count, recorder_mock)
    assert events == 0
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("remote_id", "attributes", "unrecorded"),
    [
        ("climate.hall", {"hvac_modes": ["off", "heat"], "temperature": 21}, "hvac_modes"),
        ("select.mode", {"options": ["eco", "comfort"], "icon": "mdi:leaf"}, "options"),
        ("sensor.phase", {"options": ["a", "b"], "device_class": "enum"}, "options"),
        ("event.doorbell", {"event_types": ["ring"], "event_type": "ring"}, "event_types"),
    ],
)
async def test_a_mirror_leaves_out_of_the_recorder_what_its_domain_leaves_out(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    fake_ha: FakeHA,
    remote_id: str,
    attributes: dict[str, Any],
    unrecorded: str,
) -> None:
    """As the remote's own recorder does for the same entity: shown, not recorded."""
    await fake_ha.fire_state_changed(remote_id, "x", attributes)
    start = dt_util.utcnow() - timedelta(seconds=1)
    entry = await mirroring(hass, fake_ha)
    local = remote_id.replace(".", ".remote_home_", 1)
    await wait_for(
        lambda: hass.states.get(local) is not None and hass.states.get(local).state == "x"
    )  # type: ignore[union-attr]
    shown = hass.states.get(local)
    assert shown is not None
    assert shown.attributes[unrecorded] == attributes[unrecorded]
    await async_wait_recording_done(hass)
    states = await recorder_mock.async_add_executor_job(
        history.state_changes_during_period, hass, start, None, local
    )
    recorded = states[local][-1].attributes
    assert unrecorded not in recorded
    kept = next(k for k in attributes if k != unrecorded)
    assert recorded[kept] == attributes[kept]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _event_count(recorder: Recorder) -> int:
    from homeassistant.components.recorder.db_schema import Events, EventTypes
    from homeassistant.components.recorder.util import session_scope

    with session_scope(session=recorder.get_session()) as session:
        return (
            session.query(Events)
            .join(EventTypes, Events.event_type_id == EventTypes.event_type_id)
            .filter(EventTypes.event_type == EVENT_INGESTED)
            .count()
        )
