"""The remote's devices, areas and names here, over the fake remote (`mirror/devices.py`)."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion import async_remove_config_entry_device
from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import DOMAIN
from custom_components.ha_ingestion.diagnostics import async_get_config_entry_diagnostics
from custom_components.ha_ingestion.mirror import devices as devices_module
from custom_components.ha_ingestion.mirror.devices import parse_device
from custom_components.ha_ingestion.mirror.names import local_name
from tests import fake_ha as fake_module
from tests.conftest import link_state, wait_for
from tests.fake_ha import FakeHA
from tests.mirror.test_mirror import SetupLink, mirror_of, state_of

LAMP = "light_dev"


def lamp(**changes: Any) -> dict[str, Any]:
    return {
        "id": LAMP,
        "name": "Ceiling",
        "name_by_user": None,
        "manufacturer": "Acme",
        "model": "L1",
        "model_id": "l1-x",
        "sw_version": "1.2",
        "hw_version": "rev b",
        "area_id": "kitchen_id",
    } | changes


async def remote_with_devices(fake_ha: FakeHA) -> None:
    fake_ha.areas = {"kitchen_id": "Kitchen", "hall_id": "Hall"}
    fake_ha.devices = {LAMP: lamp()}
    fake_ha.entity_devices = {"switch.ceiling": LAMP, "sensor.ceiling_power": LAMP}
    await fake_ha.fire_state_changed("switch.ceiling", "on", {"friendly_name": "Ceiling"})
    await fake_ha.fire_state_changed(
        "sensor.ceiling_power", "5", {"friendly_name": "Ceiling Power", "unit_of_measurement": "W"}
    )
    await fake_ha.fire_state_changed("switch.pump", "on", {"friendly_name": "Pump"})


async def all_mirrored(hass: HomeAssistant) -> None:
    """The three mirrors of `remote_with_devices` are there (the switch platform loads late)."""
    await wait_for(
        lambda: (
            state_of(hass, "switch.remote_home_ceiling") == "on"
            and state_of(hass, "switch.remote_home_pump") == "on"
            and state_of(hass, "sensor.remote_home_ceiling_power") == "5"
        )
    )


def local_device(hass: HomeAssistant, entry: MockConfigEntry) -> dr.DeviceEntry | None:
    ident = (DOMAIN, f"{entry.unique_id}_{LAMP}")
    for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id):
        if ident in device.identifiers:
            return device
    return None


def friendly(hass: HomeAssistant, entity_id: str) -> Any:
    state = hass.states.get(entity_id)
    return None if state is None else state.attributes.get("friendly_name")


def device_of(hass: HomeAssistant, entity_id: str) -> str | None:
    entry = er.async_get(hass).async_get(entity_id)
    return None if entry is None else entry.device_id


async def reconnect(hass: HomeAssistant, fake_ha: FakeHA, entry: MockConfigEntry) -> None:
    applied = mirror_of(entry).devices.applied
    await fake_ha.close_all()
    await wait_for(lambda: mirror_of(entry).devices.applied > applied)
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()


def test_local_name_is_the_remotes_less_its_device_name() -> None:
    assert local_name("Ceiling Power", "Ceiling") == "Power"
    assert local_name("Ceiling", "Ceiling") is None
    assert local_name("Pump", "Ceiling") == "Pump"
    assert local_name("Pump", None) == "Pump"


def test_bad_devices_are_refused() -> None:
    with pytest.raises(KeyError):
        parse_device({"name": "x"})
    with pytest.raises(TypeError):
        parse_device({"id": 3})
    with pytest.raises(TypeError):
        parse_device([])
    with pytest.raises(TypeError):
        parse_device({"id": "a", "model": 5})
    assert parse_device({"id": "a", "name": "N", "name_by_user": "U"}).name == "U"


async def test_remote_devices_areas_and_names_here(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_devices(fake_ha)
    fake_ha.devices["bad"] = {"id": 7}
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(lambda: local_device(hass, entry) is not None)
    await wait_for(lambda: mirror_of(entry).devices.applied >= 1)
    await wait_for(lambda: state_of(hass, "sensor.remote_home_ceiling_power") == "5")
    await hass.async_block_till_done()
    device = local_device(hass, entry)
    assert device is not None
    assert (device.name, device.manufacturer, device.model, device.model_id) == (
        "Ceiling",
        "Acme",
        "L1",
        "l1-x",
    )
    assert (device.sw_version, device.hw_version) == ("1.2", "rev b")
    assert (
        device.configuration_url == f"{fake_ha.http_url.rstrip('/')}/config/devices/device/{LAMP}"
    )
    areas = ar.async_get(hass)
    kitchen = areas.async_get_area_by_name("Kitchen")
    assert kitchen is not None
    assert device.area_id == kitchen.id
    dev_reg = dr.async_get(hass)
    instance = next(
        d
        for d in dr.async_entries_for_config_entry(dev_reg, entry.entry_id)
        if (DOMAIN, entry.entry_id) in d.identifiers
    )
    assert device.via_device_id == instance.id
    # Mirrors on their device; the one without stays on the instance device, with the link's.
    assert device_of(hass, "sensor.remote_home_ceiling_power") == device.id
    assert device_of(hass, "switch.remote_home_ceiling") == device.id
    assert device_of(hass, "switch.remote_home_pump") == instance.id
    # The friendly names are the remote's.
    await wait_for(
        lambda: (
            (s := hass.states.get("sensor.remote_home_ceiling_power")) is not None
            and s.attributes.get("friendly_name") == "Ceiling Power"
        )
    )
    assert friendly(hass, "switch.remote_home_ceiling") == "Ceiling"
    assert friendly(hass, "switch.remote_home_pump") == f"{entry.title} Pump"
    mapping = (await async_get_config_entry_diagnostics(hass, entry))["mirror"]["devices"]
    assert mapping["admin"] is True
    assert mapping["remote_devices"] == 1
    assert mapping["mapped"] == 1
    assert mapping["mirrors_on_devices"] == 2
    assert mapping["skipped"] == {"bad_id": 1}


async def test_rename_and_area_follow_on_reconnect_unless_changed_here(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_devices(fake_ha)
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(lambda: local_device(hass, entry) is not None)
    await wait_for(lambda: mirror_of(entry).devices.applied >= 1)
    await hass.async_block_till_done()
    # The user renames a mirror here: kept across remote renames.
    er.async_get(hass).async_update_entity("switch.remote_home_ceiling", name="My lamp")
    fake_ha.devices[LAMP] = lamp(name_by_user="Big light", area_id="hall_id")
    await reconnect(hass, fake_ha, entry)
    device = local_device(hass, entry)
    assert device is not None
    assert device.name == "Big light"
    hall = ar.async_get(hass).async_get_area_by_name("Hall")
    assert hall is not None
    assert device.area_id == hall.id
    renamed = er.async_get(hass).async_get("switch.remote_home_ceiling")
    assert renamed is not None
    assert renamed.name == "My lamp"
    # The user moves it here: a later remote area change does not undo that.
    office = ar.async_get(hass).async_get_or_create("Office")
    dr.async_get(hass).async_update_device(device.id, area_id=office.id)
    fake_ha.devices[LAMP] = lamp(name_by_user="Big light", area_id="kitchen_id")
    await reconnect(hass, fake_ha, entry)
    device = local_device(hass, entry)
    assert device is not None
    assert device.area_id == office.id


async def test_removed_only_when_the_remote_confirms(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_devices(fake_ha)
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(lambda: local_device(hass, entry) is not None)
    await wait_for(lambda: mirror_of(entry).devices.applied >= 1)
    device = local_device(hass, entry)
    assert device is not None
    # The user may not delete a device the remote still has.
    assert not await async_remove_config_entry_device(hass, entry, device)
    # The link drops: nothing removed.
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert local_device(hass, entry) is not None
    applied = mirror_of(entry).devices.applied
    fake_ha.refuse = False
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await wait_for(lambda: mirror_of(entry).devices.applied > applied)  # this connect's read
    # Deleted on the remote: removed here at the next read.
    del fake_ha.devices[LAMP]
    await reconnect(hass, fake_ha, entry)
    assert local_device(hass, entry) is None
    assert mirror_of(entry).devices.removed == 1


async def test_a_non_admin_token_keeps_every_mirror_on_the_instance_device(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, caplog: pytest.LogCaptureFixture
) -> None:
    await remote_with_devices(fake_ha)
    fake_ha.admin = False
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(lambda: mirror_of(entry).devices.admin is False)
    await wait_for(lambda: state_of(hass, "switch.remote_home_ceiling") == "on")
    await hass.async_block_till_done()
    assert local_device(hass, entry) is None
    assert link_state(entry) is LinkState.CONNECTED
    mapping = (await async_get_config_entry_diagnostics(hass, entry))["mirror"]["devices"]
    assert mapping["admin"] is False
    assert "not an administrator" in caplog.text


async def test_a_restart_with_the_remote_down_keeps_each_mirror_on_its_device(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_devices(fake_ha)
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(lambda: local_device(hass, entry) is not None)
    await wait_for(lambda: mirror_of(entry).devices.applied >= 1)
    await wait_for(lambda: device_of(hass, "switch.remote_home_ceiling") is not None)
    await hass.async_block_till_done()
    device = local_device(hass, entry)
    assert device is not None
    instance = next(
        d
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if (DOMAIN, entry.entry_id) in d.identifiers
    )
    # Neither the instance device nor one the remote still lists may be deleted by the user.
    assert not await async_remove_config_entry_device(hass, entry, instance)
    fake_ha.refuse = True
    await fake_ha.close_all()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert device_of(hass, "switch.remote_home_ceiling") == device.id
    assert device_of(hass, "switch.remote_home_pump") == instance.id
    assert local_device(hass, entry) is not None
    # Not read on this run: the user may delete it (it may be gone there).
    assert await async_remove_config_entry_device(hass, entry, device)
    fake_ha.refuse = False


@pytest.mark.parametrize(
    "failing", ["config/entity_registry/list_for_display", "config/device_registry/list"]
)
async def test_a_failed_read_changes_nothing(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    await remote_with_devices(fake_ha)
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(lambda: local_device(hass, entry) is not None)
    await wait_for(lambda: mirror_of(entry).devices.applied >= 1)
    await hass.async_block_till_done()
    devices = mirror_of(entry).devices
    reads = devices.reads
    monkeypatch.delitem(fake_module._HANDLERS, failing)  # unknown_command
    del fake_ha.devices[LAMP]
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await wait_for(lambda: any(c["type"] == failing for c in fake_ha.last_connection.commands))
    await hass.async_block_till_done()
    assert devices.reads == reads
    assert devices.admin is True
    assert local_device(hass, entry) is not None


async def test_a_reconnect_applies_many_mirrors_in_slices_each_device_once(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each connect looks at every mirror: in slices, each device made to match once."""
    await remote_with_devices(fake_ha)
    for n in range(40):
        entity_id = f"sensor.ceiling_extra_{n}"
        fake_ha.entity_devices[entity_id] = LAMP
        await fake_ha.fire_state_changed(entity_id, str(n), {"friendly_name": f"Ceiling {n}"})
    entry = await setup_link()
    await all_mirrored(hass)
    await wait_for(
        lambda: (
            (lamp_device := local_device(hass, entry)) is not None
            and device_of(hass, "sensor.remote_home_ceiling_extra_39") == lamp_device.id
        )
    )
    await hass.async_block_till_done()
    device = local_device(hass, entry)
    assert device is not None
    pauses: list[int] = []

    class SmallSlices(devices_module.Slices):
        def __init__(self) -> None:
            super().__init__(items=10)

        async def pause(self) -> None:
            pauses.append(1)
            await super().pause()

    monkeypatch.setattr(devices_module, "Slices", SmallSlices)
    made: list[Any] = []
    get_or_create = dr.DeviceRegistry.async_get_or_create

    def counted(registry: dr.DeviceRegistry, **kwargs: Any) -> dr.DeviceEntry:
        made.append(kwargs["identifiers"])
        return get_or_create(registry, **kwargs)

    monkeypatch.setattr(dr.DeviceRegistry, "async_get_or_create", counted)
    mirror = mirror_of(entry).local.entities["sensor.ceiling_extra_0"]
    writes: list[bool] = []
    write = mirror.async_write_ha_state

    def counted_write() -> None:
        writes.append(mirror.available)
        write()

    monkeypatch.setattr(mirror, "async_write_ha_state", counted_write)
    await reconnect(hass, fake_ha, entry)
    # 43 mirrors on the lamp and one on the instance device: 4 slices of 10 and more.
    assert len(pauses) >= 4
    # The lamp and the instance device, once each (not once or twice per mirror).
    assert len(made) == 2
    assert device_of(hass, "sensor.remote_home_ceiling_extra_0") == device.id
    # An unchanged device writes no state: the mirror's writes are the link's loss and return.
    assert writes == [False, True]
