"""The remote's devices, areas and names here, with two real `hass` (issue 24, part 1).

The remote is the every-domain remote (the demo integration's devices); the local `hass` is
linked through the fault proxy with default options (an owner's token: an administrator's).

- the remote's devices with mirrors appear here, under the instance device, in the remote's
  areas (by name), and a mirror's friendly name equals the remote's;
- a rename and an area change on the remote follow at the next connection;
- `light.turn_off` targeting a local area reaches the remote lights mirrored in it;
- a dropped link removes no device.
"""

# ruff: noqa: F811 - the `setup` fixture (imported) is every test's parameter

from __future__ import annotations

from typing import Any

import pytest

from .local_hass import wait_until
from .test_control_e2e import (  # noqa: F401 - the module's two Home Assistants
    SETTLE,
    Setup,
    auto_enable_custom_integrations,
    local_states,
    remote_states,
    setup,
    wait_mirrors_settled,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LIGHT = "light.bed_light"


async def remote_device_of(setup: Setup, entity_id: str) -> str:
    for entry in await setup.remote.command({"type": "config/entity_registry/list"}):
        if entry["entity_id"] == entity_id:
            device_id: str = entry["device_id"]
            return device_id
    raise AssertionError(f"{entity_id} not on the remote")


async def local_device(setup: Setup, remote_device_id: str) -> dict[str, Any] | None:
    suffix = f"/config/devices/device/{remote_device_id}"
    for device in await setup.local.command({"type": "config/device_registry/list"}):
        if str(device.get("configuration_url") or "").endswith(suffix):
            return dict(device)
    return None


async def mapped_here(setup: Setup) -> set[str]:
    """The remote device ids of the local devices made from them."""
    mark = "/config/devices/device/"
    return {
        str(d["configuration_url"]).rsplit(mark, 1)[1]
        for d in await setup.local.command({"type": "config/device_registry/list"})
        if mark in str(d.get("configuration_url") or "")
    }


async def area_id_here(setup: Setup, name: str) -> str | None:
    for area in await setup.local.command({"type": "config/area_registry/list"}):
        if area["name"] == name:
            return str(area["area_id"])
    return None


async def remote_area(setup: Setup, name: str) -> str:
    for area in await setup.remote.command({"type": "config/area_registry/list"}):
        if area["name"] == name:
            return str(area["area_id"])
    created = await setup.remote.command({"type": "config/area_registry/create", "name": name})
    return str(created["area_id"])


async def reconnect(setup: Setup) -> None:
    await setup.proxy.reset_connections()
    await wait_until(setup.linked.connected, SETTLE, "the link back", setup.local)


async def test_devices_areas_names_and_area_targets(setup: Setup, socket_enabled: None) -> None:
    found = await wait_mirrors_settled(setup)
    remote_device = await remote_device_of(setup, LIGHT)
    porch = await remote_area(setup, "E2E Porch")
    await setup.remote.command(
        {"type": "config/device_registry/update", "device_id": remote_device, "area_id": porch}
    )
    await reconnect(setup)

    async def in_porch() -> bool:
        device = await local_device(setup, remote_device)
        here = await area_id_here(setup, "E2E Porch")
        return device is not None and here is not None and device["area_id"] == here

    await wait_until(in_porch, SETTLE, "the remote's device here, in its area", setup.local)
    device = await local_device(setup, remote_device)
    assert device is not None
    assert device["via_device_id"] is not None
    registry = await setup.local.command({"type": "config/entity_registry/list"})
    mirror = found[LIGHT]
    assert next(e for e in registry if e["entity_id"] == mirror)["device_id"] == device["id"]
    # The friendly name is the remote's.
    remote = (await remote_states(setup))[LIGHT]["attributes"]["friendly_name"]
    local = (await local_states(setup))[mirror]["attributes"]["friendly_name"]
    assert local == remote
    # An action targeting the local area reaches the remote light.
    await setup.remote.command(
        {
            "type": "call_service",
            "domain": "light",
            "service": "turn_on",
            "target": {"entity_id": LIGHT},
        }
    )
    await setup.local.command(
        {
            "type": "call_service",
            "domain": "light",
            "service": "turn_off",
            "target": {"area_id": await area_id_here(setup, "E2E Porch")},
        }
    )

    async def off() -> bool:
        return (await setup.remote.get_state(LIGHT) or {}).get("state") == "off"

    await wait_until(off, SETTLE, "the remote light off through the area", setup.local)
    # A rename and an area change there follow at the next connection.
    garden = await remote_area(setup, "E2E Garden")
    await setup.remote.command(
        {
            "type": "config/device_registry/update",
            "device_id": remote_device,
            "area_id": garden,
            "name_by_user": "E2E Bedside",
        }
    )
    await reconnect(setup)

    async def followed() -> bool:
        device = await local_device(setup, remote_device)
        here = await area_id_here(setup, "E2E Garden")
        return device is not None and device["name"] == "E2E Bedside" and device["area_id"] == here

    await wait_until(followed, SETTLE, "the rename and the area followed", setup.local)
    # A dropped link removes no device.
    before = len(await setup.local.command({"type": "config/device_registry/list"}))
    await setup.proxy.refuse()
    try:
        await setup.proxy.reset_connections()

        async def down() -> bool:
            return not await setup.linked.connected()

        await wait_until(down, SETTLE, "the link down", setup.local)
        after = len(await setup.local.command({"type": "config/device_registry/list"}))
        assert after == before
        assert await local_device(setup, remote_device) is not None
    finally:
        await setup.proxy.refuse(False)
    await wait_until(setup.linked.connected, SETTLE, "the link back", setup.local)


async def test_a_device_deleted_on_the_remote_is_removed_here(
    setup: Setup, socket_enabled: None
) -> None:
    found = await wait_mirrors_settled(setup)
    entries = await setup.remote.command({"type": "config_entries/get"})
    sink = next(e["entry_id"] for e in entries if e["domain"] == "kitchen_sink")
    registry = await setup.remote.command({"type": "config/entity_registry/list"})
    devices = await setup.remote.command({"type": "config/device_registry/list"})
    # One config entry per device from 2026.8 (`config_entry_id`); a list before.
    sink_devices = {
        d["id"]
        for d in devices
        if d.get("config_entry_id") == sink or sink in d.get("config_entries", ())
    }
    # A kitchen_sink device with a mirror here (kitchen_sink lets a user delete its devices).
    target = next(
        e["device_id"]
        for e in registry
        if e["entity_id"] in found and e.get("device_id") in sink_devices
    )

    async def here() -> bool:
        return await local_device(setup, target) is not None

    await wait_until(here, SETTLE, "its device here", setup.local)
    before = await mapped_here(setup)
    remote_before = {d["id"] for d in devices}
    await setup.remote.command(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": sink,
            "device_id": target,
        }
    )
    await reconnect(setup)

    async def gone() -> bool:
        return await local_device(setup, target) is None

    await wait_until(gone, SETTLE, "the deleted device removed here", setup.local)
    after = await mapped_here(setup)
    remote_after = {
        d["id"] for d in await setup.remote.command({"type": "config/device_registry/list"})
    }
    # Exactly the devices gone there (the target, and devices that went with it, e.g. the
    # children of a power strip), nothing else.
    gone_there = remote_before - remote_after
    assert target in gone_there
    assert set(before) - set(after) == gone_there & set(before)
    assert set(after) <= remote_after
