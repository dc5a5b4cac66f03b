"""The config, options and reconfigure flows as a user drives them: in Home Assistant's frontend.

A real local `hass` runs this checkout's integration; Chromium shows its frontend. Each test
waits for what the user would see (the dialog's next step, an error next to a field), with
Playwright's bounded waits, never a fixed sleep. Screenshots: .test-results/browser/<version>/.
"""

from __future__ import annotations

import re

from playwright.async_api import expect
import pytest

from tests.e2e_ha.local_hass import wait_until
from tests.harness import RemoteHass
from tests.harness.develop import existing_entries

from .conftest import FLOW_TIMEOUT_MS, INTEGRATION_NAME, Entry, Ui, wait_stored

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]

HEARTBEAT_ERROR = "The heartbeat timeout must be less than ten times the heartbeat interval."
DELAY_ERROR = "The first retry delay must not exceed the longest retry delay."
PREFIX = "Entity ID prefix"
CONTROL = "Control the remote from here"


async def test_add_link_through_the_ui(ui: Ui, remote: RemoteHass, no_entries: None) -> None:
    """Settings -> Devices & services -> Add integration -> HA Ingestion -> URL + token."""
    page = ui.page
    await ui.open("/config")
    await page.get_by_text("Devices & services", exact=True).first.click()
    await expect(page).to_have_url(re.compile(r"/config/integrations"))
    await page.get_by_role("button", name="Add integration").click()
    # The brand picker's search box: the first input of its dialog.
    await page.locator("dialog-add-integration").locator("input").first.fill(INTEGRATION_NAME)
    await page.locator("ha-integration-list-item").filter(has_text=INTEGRATION_NAME).click()
    await expect(ui.dialog.get_by_text("Link a Home Assistant")).to_be_visible(
        timeout=FLOW_TIMEOUT_MS
    )
    await (await ui.field("URL")).fill(remote.url)
    await (await ui.field("Long-lived access token")).fill(remote.token or "")
    await ui.shot("form")
    await ui.submit()
    # The flow connects to the remote for real, then says what it linked.
    error = await ui.outcome(ui.dialog.get_by_text(f"Linked to {remote.name}"))
    await ui.shot("created")
    assert error is None, f"the config flow showed: {error}"
    await ui.dialog.get_by_role("button", name=re.compile("finish", re.IGNORECASE)).click()
    await expect(ui.dialog).to_be_hidden()
    # The entry is there for the user, on the integration's page, and it loaded.
    await ui.open_integration_page(remote.name)
    await ui.shot("entry")

    async def loaded() -> bool:
        entries = await existing_entries(ui.local)
        return [(e["title"], e["state"]) for e in entries] == [(remote.name, "loaded")]

    await wait_until(loaded, 30, "the entry made in the UI loaded", ui.local)


async def test_options_saved_unchanged(ui: Ui, linked: Entry) -> None:
    """Opening the options and pressing Submit without changing anything saves them."""
    await ui.open_options(linked.title)
    await ui.shot("form")
    await ui.submit()
    error = await ui.outcome(ui.dialog.locator("step-flow-create-entry"))
    shot = await ui.shot("submitted")
    assert error is None, f"saving the options unchanged was refused: {error!r} (screenshot {shot})"
    await expect(ui.dialog.get_by_text("Options successfully saved")).to_be_visible()


async def test_control_turned_off_in_the_form_is_saved(ui: Ui, linked: Entry) -> None:
    """The Mirroring section's *Control the remote from here* switch, turned off and saved."""
    await ui.open_options(linked.title)
    await ui.field(CONTROL)  # its section expanded
    await ui.selector(CONTROL).locator("ha-switch").click()
    await ui.shot("control-off")
    await ui.submit()
    error = await ui.outcome(ui.dialog.locator("step-flow-create-entry"))
    shot = await ui.shot("control-saved")
    assert error is None, f"saving Control off was refused: {error!r} (screenshot {shot})"

    def control() -> object:
        return linked.stored(ui.local).get("options", {}).get("control")

    await wait_until(lambda: control() is False, 15, "control=False stored", ui.local)


@pytest.mark.parametrize(
    ("values", "message", "field"),
    [
        pytest.param(
            {"Heartbeat interval": "10", "Heartbeat timeout": "100"},
            HEARTBEAT_ERROR,
            "Heartbeat timeout",
            id="heartbeat_timeout_10x_interval",
        ),
        pytest.param(
            {"First retry delay": "120", "Longest retry delay": "60"},
            DELAY_ERROR,
            "First retry delay",
            id="first_delay_above_longest",
        ),
    ],
)
async def test_invalid_options_show_the_error_at_the_field(
    ui: Ui, linked: Entry, values: dict[str, str], message: str, field: str
) -> None:
    """An invalid pair is refused by the integration; the error is shown next to its field."""
    await ui.open_options(linked.title)
    for label, value in values.items():
        await (await ui.field(label)).fill(value)
    # Only the pair is wrong: a prefix the frontend would refuse as missing is filled in.
    prefix = await ui.field(PREFIX)
    if not await prefix.input_value():
        await prefix.fill("browser_remote")
    await ui.submit()
    alert = ui.dialog.locator("ha-alert").filter(has_text=message)
    await expect(alert).to_be_visible(timeout=FLOW_TIMEOUT_MS)
    await alert.scroll_into_view_if_needed()
    await ui.shot("error")
    # Home Assistant's form shows a field's error right above that field (or its section).
    assert field in await ui.text_after(alert), f"{message!r} is not shown at {field!r}"
    stored = linked.stored(ui.local).get("options", {})
    assert stored.get("heartbeat_timeout") != 100
    assert stored.get("base_delay") != 120


async def test_reconfigure_url_through_the_ui(ui: Ui, linked: Entry, remote: RemoteHass) -> None:
    """The entry's menu -> Reconfigure: a new address of the same remote is saved."""
    new_url = f"http://localhost:{remote.port}"
    row = await ui.open_integration_page(linked.title)
    await row.get_by_role("button", name="Menu").first.click()
    await ui.page.get_by_role("menuitem", name="Reconfigure").click()
    await expect(ui.dialog.get_by_text(f"Reconfigure {linked.title}")).to_be_visible()
    url = await ui.field("URL")
    assert await url.input_value() == linked.stored(ui.local)["data"]["url"]
    await url.fill(new_url)
    await ui.shot("form")
    await ui.submit()
    done = ui.dialog.get_by_text(
        re.compile("Reconfiguration was successful|Saved; the link restarts")
    )
    error = await ui.outcome(done)
    await ui.shot("saved")
    assert error is None, f"reconfiguring was refused: {error}"
    await wait_stored(ui.local, linked, "url", f"ws://localhost:{remote.port}/api/websocket")
