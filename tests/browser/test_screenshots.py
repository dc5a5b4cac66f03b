"""The README's screenshots: the remote instance's device page and a mirrored entity's more-info.

Deselected unless asked for (marker `screenshots`); re-run them with

    scripts/run python -m pytest -p no:cacheprovider -q tests/browser -m screenshots

A dedicated remote ("Holiday Home") with a few sensors set over its REST API is linked to the local
Home Assistant of tests/browser through the config flow; once its entities are mirrored and a
temperature has changed a few times (each change awaited locally, so the history has points), the
device page and the temperature's more-info dialog are captured at 1280x800 and written, optimised,
to docs/images/device.png and docs/images/mirror.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import io
from pathlib import Path
import time
from typing import Any

from PIL import Image
from playwright.async_api import Locator, Page, expect
import pytest

from tests.e2e_ha.local_hass import wait_until
from tests.harness import RemoteHass
from tests.harness.develop import existing_entries, link, rest

from .conftest import ROOT, TIMEOUT_MS, Ui, remove_entries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.screenshots,
    pytest.mark.timeout(240),
]

IMAGES = ROOT / "docs" / "images"
REMOTE_NAME = "Holiday Home"
TEMPERATURE = "sensor.outdoor_temperature"
# No state_class: the more-info dialog then draws the recorded history (a measurement would show
# 5-minute statistics, which a fresh entity does not have yet).
TEMPERATURE_ATTRIBUTES = {
    "unit_of_measurement": "°C",
    "device_class": "temperature",
    "friendly_name": "Outdoor temperature",
}
TEMPERATURES = ("11.8", "12.3", "12.1", "12.9", "13.6", "13.2", "14.1")
OTHER_STATES: dict[str, tuple[str, dict[str, Any]]] = {
    "sensor.heat_pump_power": (
        "1380",
        {
            "unit_of_measurement": "W",
            "device_class": "power",
            "state_class": "measurement",
            "friendly_name": "Heat pump power",
        },
    ),
    "sensor.living_room_humidity": (
        "48",
        {
            "unit_of_measurement": "%",
            "device_class": "humidity",
            "state_class": "measurement",
            "friendly_name": "Living room humidity",
        },
    ),
    "binary_sensor.front_door": ("off", {"device_class": "door", "friendly_name": "Front door"}),
}


@pytest.fixture
async def holiday_home(tmp_path: Path, socket_enabled: None) -> AsyncIterator[RemoteHass]:
    """A remote of its own, with a name that reads well in the README."""
    home = RemoteHass(tmp_path / "remote", name=REMOTE_NAME, entities_yaml="")
    await home.setup()
    try:
        yield home
    finally:
        await home.close()
        home.cleanup()


async def local_state(local: RemoteHass, entity_id: str) -> str | None:
    """An entity's state on the local Home Assistant (None if it has none)."""
    status, data = await rest(local, "GET", f"/api/states/{entity_id}")
    return str(data["state"]) if status == 200 and isinstance(data, dict) else None


async def mirrored_id(local: RemoteHass, remote_entity_id: str, timeout: float = 60) -> str:
    """The local entity id of a mirrored remote entity (domain.<prefix>_<object id>)."""
    domain, object_id = remote_entity_id.split(".", 1)
    found: list[str] = []

    async def mirrored() -> bool:
        _, states = await rest(local, "GET", "/api/states")
        found[:] = [
            s["entity_id"]
            for s in states or []
            if s["entity_id"].startswith(f"{domain}.") and s["entity_id"].endswith(f"_{object_id}")
        ]
        return bool(found)

    await wait_until(mirrored, timeout, f"{remote_entity_id} mirrored", local)
    return found[0]


async def stable_screenshot(page: Page, timeout: float = TIMEOUT_MS / 1000) -> bytes:
    """A screenshot once two in a row are identical (charts finished drawing), bounded."""
    deadline = time.monotonic() + timeout
    previous = await page.screenshot()
    while True:
        current = await page.screenshot()
        if current == previous:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"the page kept changing for {timeout:g} s")
        previous = current


def save_png(data: bytes, path: Path) -> Path:
    """Write a PNG optimised (Pillow), for the repository."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").save(path, format="PNG", optimize=True)
    return path


async def test_readme_screenshots(holiday_home: RemoteHass, ui: Ui) -> None:
    # holiday_home first: it is still up when `ui` takes its last screenshot.
    local = ui.local
    await holiday_home.set_state(TEMPERATURE, TEMPERATURES[0], TEMPERATURE_ATTRIBUTES)
    for entity_id, (state, attributes) in OTHER_STATES.items():
        await holiday_home.set_state(entity_id, state, attributes)
    await remove_entries(local)
    outcome = await link(local, holiday_home.url, holiday_home.token or "", True, ("", None))
    assert outcome.startswith("linked"), outcome
    (entry,) = await existing_entries(local)

    temperature = await mirrored_id(local, TEMPERATURE)
    for value in TEMPERATURES[1:]:
        await holiday_home.set_state(TEMPERATURE, value, TEMPERATURE_ATTRIBUTES)

        async def arrived(value: str = value) -> bool:
            return await local_state(local, temperature) == value

        await wait_until(arrived, 20, f"{temperature} = {value}", local)
    for entity_id in OTHER_STATES:
        await mirrored_id(local, entity_id)

    async with local.ws() as ws:
        devices = await ws.command({"type": "config/device_registry/list"})
    (device,) = [d for d in devices if entry["entry_id"] in d.get("config_entries", [])]
    assert device["name"] == REMOTE_NAME, device

    await ui.open(f"/config/devices/device/{device['id']}")
    entity_row: Locator = ui.page.get_by_text("Outdoor temperature").first
    await expect(entity_row).to_be_visible()
    await expect(ui.page.get_by_text("Heat pump power").first).to_be_visible()
    await expect(ui.page.get_by_text(REMOTE_NAME).first).to_be_visible()
    save_png(await stable_screenshot(ui.page), IMAGES / "device.png")

    await entity_row.click()
    dialog = ui.page.locator("ha-more-info-dialog")
    await expect(dialog.get_by_text("Outdoor temperature").first).to_be_visible()
    await expect(dialog.get_by_text("14.1").first).to_be_visible()
    # The history chart of the last day: drawn once its canvas is there and stops changing.
    await expect(dialog.locator("ha-chart-base").first).to_be_visible()
    save_png(await stable_screenshot(ui.page), IMAGES / "mirror.png")
    await remove_entries(local)
