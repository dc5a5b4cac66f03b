"""Mirrored entities against a real remote `hass` (default recorder settings), through a proxy.

The remote's states are set over its REST API (entities without a registry entry there, as
template or REST-created ones are), so removing one there is a confirmed removal.
"""

from __future__ import annotations

import time
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.helpers import area_registry as ar, entity_registry as er
import pytest

from custom_components.ha_ingestion.client import EntitiesUpdate
from custom_components.ha_ingestion.const import (
    CONF_MIRROR_ENTITIES,
    CONF_MIRROR_EXCLUDE,
)
from tests.e2e.helpers import record
from tests.harness import RemoteHass
from tests.harness.proxy import FaultProxy

from .conftest import LinkFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

POWER = "sensor.e2e_mirror_power"
DOOR = "binary_sensor.e2e_mirror_door"
SECRET = "sensor.e2e_mirror_secret"
POWER_ATTRIBUTES: dict[str, Any] = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
    "friendly_name": "E2E power",
}


async def test_mirrored_entities_follow_the_remote_through_a_cut_and_a_removal(
    remote: RemoteHass, proxy: FaultProxy, link_factory: LinkFactory
) -> None:
    await remote.set_state(POWER, "1200", POWER_ATTRIBUTES)
    await remote.set_state(DOOR, "off", {"device_class": "door", "friendly_name": "E2E door"})
    await remote.set_state(SECRET, "1", {"friendly_name": "E2E secret"})
    try:
        link = await link_factory(
            f"{proxy.host}:{proxy.port}",
            **{CONF_MIRROR_ENTITIES: True, CONF_MIRROR_EXCLUDE: [SECRET]},
        )
        hass = link.hass
        power = f"sensor.{link.slug}_e2e_mirror_power"
        door = f"binary_sensor.{link.slug}_e2e_mirror_door"
        await link.wait_until(lambda: link.state_of(power) == "1200", 20, f"{power} mirrored")
        state = hass.states.get(power)
        assert state is not None
        attributes = dict(state.attributes)
        assert attributes.pop("friendly_name").endswith("E2E power")
        assert attributes == {k: v for k, v in POWER_ATTRIBUTES.items() if k != "friendly_name"}
        assert link.state_of(door) == "off"
        assert link.state_of(f"sensor.{link.slug}_e2e_mirror_secret") is None
        reg = er.async_get(hass).async_get(power)
        assert reg is not None
        assert reg.unique_id == f"{link.entry.unique_id}_mirror:{POWER}"

        # Everything the remote sends on the next subscription is recorded here.
        updates: list[EntitiesUpdate] = []
        engine = link.entry.runtime_data.coordinator.engine
        engine.add_entities_listener(updates.append)
        session = engine._session
        assert session is not None
        assert session.compression == 15  # Home Assistant's server accepted permessage-deflate

        # Link cut: unavailable, never deleted; changes meanwhile; back: the current state.
        await proxy.refuse()
        proxy.reset_connections()
        await link.wait_until(
            lambda: link.state_of(power) == STATE_UNAVAILABLE, 20, f"{power} unavailable"
        )
        assert er.async_get(hass).async_get(power) is not None
        await remote.set_state(POWER, "800", POWER_ATTRIBUTES)
        await remote.set_state(SECRET, "2", {"friendly_name": "E2E secret"})
        await proxy.refuse(False)
        back = time.monotonic()
        await link.wait_until(lambda: link.state_of(power) == "800", 30, f"{power} current again")
        mirrored_after_s = time.monotonic() - back
        assert link.state_of(door) == "off"

        # Live: a change, and the excluded entity changing too.
        await remote.set_state(SECRET, "3", {"friendly_name": "E2E secret"})
        await remote.set_state(POWER, "650", {**POWER_ATTRIBUTES, "phase": "L1"})
        await link.wait_until(lambda: link.state_of(power) == "650", 10, f"{power} live change")
        assert hass.states.get(power).attributes["phase"] == "L1"  # type: ignore[union-attr]

        # Removed on the remote (no registry entry there confirms it): removed here.
        await remote.remove_state(DOOR)
        await link.wait_until(
            lambda: er.async_get(hass).async_get(door) is None, 10, f"{door} removed"
        )
        assert hass.states.get(door) is None

        # The excluded entity never crossed the wire: the remote filtered it.
        assert updates
        assert updates[0].initial
        assert all(SECRET not in u.states and SECRET not in u.changed for u in updates)
        assert link.entry.runtime_data.mirror.local.filtered_here == 0
        # Mirrored changes are local states, not also ha_ingestion_events. (A change recovered
        # from the remote's history is fired when, as here, this instance has no recorder to take
        # it as the mirror's past state: whether the cut's change is recovered that way or comes
        # with the relink's current state depends on the remote's commit timing.)
        assert not [
            e
            for e in link.events
            if e.get("event_type") == "state_changed"
            and e["data"].get("entity_id") == POWER
            and not e.get("backfilled")
        ]
        record("mirror", current_state_after_link_back_s=mirrored_after_s)
    finally:
        for entity_id in (POWER, DOOR, SECRET):
            await remote.remove_state(entity_id)


async def test_rename_and_area_survive_a_restart_of_both_sides(
    remote: RemoteHass, link_factory: LinkFactory
) -> None:
    """Local customizations live in the registry under a stable unique id; the remote restarting
    (its REST-made state is gone afterwards, no removal was sent) leaves the mirror unavailable,
    and it shows the state again under the user's entity id once the remote has it."""
    await remote.set_state(POWER, "1200", POWER_ATTRIBUTES)
    try:
        link = await link_factory(**{CONF_MIRROR_ENTITIES: True})
        hass = link.hass
        power = f"sensor.{link.slug}_e2e_mirror_power"
        await link.wait_until(lambda: link.state_of(power) == "1200", 20, f"{power} mirrored")
        area = ar.async_get(hass).async_create("E2E attic")
        registry = er.async_get(hass)
        registry.async_update_entity(
            power, new_entity_id="sensor.attic_power", name="Attic power", area_id=area.id
        )
        await hass.async_block_till_done()

        await remote.restart()
        # The local side restarts its link and entities (a reload: stop, checkpoint, start).
        assert await hass.config_entries.async_reload(link.entry.entry_id)
        await hass.async_block_till_done()
        await link.wait_connected()
        await link.wait_until(
            lambda: link.state_of("sensor.attic_power") == STATE_UNAVAILABLE,
            10,
            "mirror unavailable while the remote does not have the state",
        )
        await remote.set_state(POWER, "900", POWER_ATTRIBUTES)
        await link.wait_until(
            lambda: link.state_of("sensor.attic_power") == "900", 20, "mirror back"
        )
        reg = registry.async_get("sensor.attic_power")
        assert reg is not None
        assert (reg.name, reg.area_id) == ("Attic power", area.id)
        assert reg.unique_id == f"{link.entry.unique_id}_mirror:{POWER}"
        assert hass.states.get(power) is None
        assert (
            hass.states.get("sensor.attic_power")
            .attributes["friendly_name"]
            .endswith(  # type: ignore[union-attr]
                "Attic power"
            )
        )
    finally:
        await remote.remove_state(POWER)
