"""A real local `hass` with this checkout's integration, and a logged-in Chromium page on it.

The flows are driven the way a user drives them: through Home Assistant's own frontend in Debian's
Chromium (installed by scripts/setup; Playwright, pinned in requirements/tools.txt, never downloads
a browser). The frontend validates a form before it sends it (a required field left empty is
refused in the browser), which the flow manager tests cannot see.

- `browser_local` (session): a real `hass` with the integration symlinked in, started and onboarded
  by `tests.e2e_ha.local_hass.start_local` (the launcher of the e2e tests and scripts/develop).
- `ui` (function): Chromium (headless, its own fresh profile) with one page logged in to
  `browser_local`: the onboarded user's tokens, obtained through the real login flow, are put in
  localStorage `hassTokens`, where the frontend keeps them. Every Playwright wait is bounded
  (`TIMEOUT_MS` unless a step says otherwise). `ui.shot(step)` saves a screenshot; a last one is
  saved when the test ends (`...-FAILED.png` when it failed), all under
  .test-results/browser/<Home Assistant version>/ (gitignored).
- `linked` (function): one entry of the integration linked to the shared remote (made over REST
  through the config flow when there is none).

Without a Chromium (native mode, not installed) the tests are skipped, saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import shutil
import time
from typing import Any

import aiohttp
from homeassistant import const as ha_const
from playwright.async_api import Error as PlaywrightError, Locator, Page, async_playwright, expect
import pytest

from tests.e2e_ha.local_hass import start_local, wait_until
from tests.harness import RemoteHass, RemoteHassError, run_sync
from tests.harness.develop import LOCAL_EXTRA, existing_entries, link, rest, stored_entries
from tests.harness.fixtures import _sockets_allowed

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".test-results" / "browser" / ha_const.__version__
MANIFEST = json.loads(
    (ROOT / "custom_components" / "ha_ingestion" / "manifest.json").read_text(encoding="utf-8")
)
INTEGRATION_NAME: str = MANIFEST["name"]
DOMAIN: str = MANIFEST["domain"]
LOCAL_NAME = "Browser Local"
VIEWPORT = {"width": 1280, "height": 800}
# Every Playwright wait (locator actions, expect, navigation) is bounded by this unless a step says.
TIMEOUT_MS = 30_000
# A flow step that connects to the remote (validation) may take longer than a click.
FLOW_TIMEOUT_MS = 45_000
# Chromium as root in a container: no sandbox, no GPU, nothing that calls the internet.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
FAILED_KEY = pytest.StashKey[bool]()
# The same bound for Playwright's assertions (their own default is 5 s).
expect.set_options(timeout=TIMEOUT_MS)


def find_chromium() -> str | None:
    """Debian's Chromium (or the one `HA_INGESTION_CHROMIUM` names)."""
    for candidate in (
        os.environ.get("HA_INGESTION_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The README screenshots (marker `screenshots`) run only when asked: `-m screenshots`."""
    if "screenshots" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("screenshots") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the package-wide fixture: these tests use real `hass` processes, no test `hass`."""
    return


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test itself failed (the `ui` fixture names its last screenshot so)."""
    report = yield
    if report.when == "call":
        item.stash[FAILED_KEY] = report.failed
    return report


@pytest.fixture(scope="module")
def browser_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteHass]:
    """A real local Home Assistant with this checkout's integration, for one test module.

    Not for the whole session: its link uses the shared remote's client token, and a link left
    running after the module would send that token again when a later test revokes it (a second
    failed login on the remote, which that test counts).
    """
    config_dir = tmp_path_factory.mktemp("browser") / "local"
    try:
        with _sockets_allowed():
            local = run_sync(
                start_local(config_dir, name=LOCAL_NAME, entities_yaml="", extra_yaml=LOCAL_EXTRA)
            )
    except RemoteHassError as err:
        pytest.fail(f"could not start the local Home Assistant: {err}", pytrace=False)
    yield local
    with _sockets_allowed():
        run_sync(local.close())
    local.cleanup()


async def hass_tokens(local: RemoteHass) -> dict[str, Any]:
    """What the frontend keeps in localStorage `hassTokens` after a login on `local`.

    The tokens come from the real login flow (username and password) for the frontend's own
    client id (the instance's URL).
    """
    async with aiohttp.ClientSession() as http:
        code = await local._login_code(http)
        tokens = await local._exchange_code(http, code)
    return {
        **tokens,
        "hassUrl": local.url,
        "clientId": local.client_id,
        "expires": int(time.time() * 1000) + int(tokens["expires_in"]) * 1000,
    }


def deep_text_js() -> str:
    """A JS function (element) -> its text, shadow roots included (what a user reads in it)."""
    return """(element) => {
        const text = (node) => {
            if (!node) return "";
            if (node.nodeType === Node.TEXT_NODE) return node.textContent;
            let out = node.shadowRoot ? text(node.shadowRoot) : "";
            for (const child of node.childNodes) out += " " + text(child);
            return out;
        };
        return text(element).replace(/\\s+/g, " ").trim();
    }"""


@dataclass
class Ui:
    """One logged-in page on the local Home Assistant, and what the flows tests do with it."""

    page: Page
    local: RemoteHass
    name: str
    console_errors: list[str] = field(default_factory=list)
    _shots: int = 0

    # ------------------------------------------------------------------ artifacts

    def artifact(self, suffix: str) -> Path:
        """A path under .test-results/browser/<version>/ named after the test."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return ARTIFACTS / f"{self.name}{suffix}"

    async def shot(self, step: str) -> Path:
        """Save a screenshot of the page as it is now."""
        self._shots += 1
        path = self.artifact(f"-{self._shots:02d}-{step}.png")
        await self.page.screenshot(path=path)
        return path

    # ------------------------------------------------------------------ navigation

    async def open(self, path: str) -> None:
        """Go to a frontend path and wait until the frontend has drawn its sidebar."""
        await self.page.goto(path)
        await expect(self.page.locator("ha-sidebar")).to_be_visible()

    def entry_row(self, title: str) -> Locator:
        """The row of one entry on the integration's page."""
        return self.page.locator("ha-config-entry-row").filter(has_text=title)

    async def open_integration_page(self, title: str) -> Locator:
        """Settings -> Devices & services -> the integration's page; the row of entry `title`."""
        await self.open(f"/config/integrations/integration/{DOMAIN}")
        row = self.entry_row(title)
        await expect(row).to_be_visible()
        return row

    async def open_options(self, title: str) -> None:
        """The entry's Configure button: its options form, once shown."""
        row = await self.open_integration_page(title)
        await row.get_by_role("button", name="Configure").first.click()
        await expect(self.dialog.get_by_role("button", name="Submit")).to_be_visible()

    # ------------------------------------------------------------------ the flow dialog

    @property
    def dialog(self) -> Locator:
        """The config/options flow dialog."""
        return self.page.locator("dialog-data-entry-flow")

    def selector(self, label: str) -> Locator:
        """The form field (`ha-selector`) labelled `label` (the frontend marks a required one *)."""
        return self.dialog.locator(self._selector(label))

    def _selector(self, label: str) -> Locator:
        # Relative (no root): usable inside another locator's `has`.
        return self.page.locator("ha-selector").filter(has_text=re.compile(re.escape(label)))

    async def field(self, label: str) -> Locator:
        """The <input> of the field labelled `label`, its collapsed section expanded first."""
        selector = self.selector(label)
        summary = (
            self.dialog.locator("ha-expansion-panel")
            .filter(has=self._selector(label))
            .last.locator("#summary")
            .first
        )
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        # A click while the dialog still settles can be lost: expand until the field shows.
        while not await selector.is_visible():
            if time.monotonic() > deadline:
                await expect(selector).to_be_visible(timeout=1)  # fails, saying what it saw
            if await summary.count() and await summary.get_attribute("aria-expanded") != "true":
                await summary.click()
            with contextlib.suppress(AssertionError):
                await expect(selector).to_be_visible(timeout=2_000)
        return selector.locator("input")

    async def submit(self) -> None:
        """Press the form's Submit button."""
        await self.dialog.get_by_role("button", name="Submit").click()

    def errors(self) -> Locator:
        """The error alerts shown in the dialog (form-level and next to fields)."""
        return self.dialog.locator("ha-alert[alert-type='error']")

    async def outcome(self, done: Locator, timeout: float = FLOW_TIMEOUT_MS) -> str | None:
        """Wait until `done` or an error shows in the dialog; None for `done`, else the error."""
        await expect(done.or_(self.errors()).first).to_be_visible(timeout=timeout)
        if await done.count() and await done.first.is_visible():
            return None
        return " | ".join(t.strip() for t in await self.errors().all_inner_texts())

    async def text_after(self, element: Locator) -> str:
        """What a user reads in the element right after `element` (the field an error is about)."""
        next_sibling = await element.evaluate_handle("(el) => el.nextElementSibling")
        text: str = await self.page.evaluate(deep_text_js(), next_sibling)
        return text


@pytest.fixture
async def ui(
    browser_local: RemoteHass, request: pytest.FixtureRequest, socket_enabled: None
) -> AsyncIterator[Ui]:
    """A headless Chromium page logged in to the local Home Assistant (English, 1280x800)."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "no Chromium: scripts/setup installs Debian's 'chromium' (as root), or set "
            "HA_INGESTION_CHROMIUM to a Chromium binary"
        )
    tokens = await hass_tokens(browser_local)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for stale in ARTIFACTS.glob(f"{name}-*"):  # an earlier run's, which would mislead
        stale.unlink()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), timeout=TIMEOUT_MS
        )
        try:
            context = await browser.new_context(
                viewport=VIEWPORT,
                base_url=browser_local.url,
                locale="en-US",
                timezone_id="UTC",
                color_scheme="light",
            )
            context.set_default_timeout(TIMEOUT_MS)
            context.set_default_navigation_timeout(TIMEOUT_MS)
            # Before any script of the page runs: the frontend finds itself logged in.
            await context.add_init_script(
                script=f"window.localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))});"
            )
            page = await context.new_page()
            ui = Ui(page, browser_local, name)
            page.on(
                "console",
                lambda message: (
                    ui.console_errors.append(f"{message.text} ({message.location.get('url')})")
                    if message.type == "error"
                    else None
                ),
            )
            yield ui
            failed = request.node.stash.get(FAILED_KEY, True)
            with contextlib.suppress(PlaywrightError):  # a crashed page: the test says why
                await page.screenshot(path=ui.artifact("-FAILED.png" if failed else "-end.png"))
            if ui.console_errors:
                ui.artifact("-console.txt").write_text(
                    "\n".join(ui.console_errors) + "\n", encoding="utf-8"
                )
        finally:
            await browser.close()


@dataclass
class Entry:
    """One config entry of the integration on the local Home Assistant."""

    entry_id: str
    title: str

    def stored(self, local: RemoteHass) -> dict[str, Any]:
        """The entry as stored on disk (data and options, which the REST API does not show)."""
        return next((e for e in stored_entries(local) if e["entry_id"] == self.entry_id), {})


async def remove_entries(local: RemoteHass) -> None:
    """Remove every entry of the integration (over REST)."""
    for entry in await existing_entries(local):
        status, data = await rest(
            local, "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}"
        )
        assert status == 200, (status, data)


@pytest.fixture
async def no_entries(browser_local: RemoteHass, socket_enabled: None) -> None:
    """No entry of the integration on the local Home Assistant."""
    await remove_entries(browser_local)


@pytest.fixture
async def linked(browser_local: RemoteHass, remote: RemoteHass) -> Entry:
    """One loaded entry linked to the shared remote (made through the config flow over REST)."""
    entries = await existing_entries(browser_local)
    if len(entries) != 1 or entries[0]["title"] != remote.name:
        await remove_entries(browser_local)
        outcome = await link(browser_local, remote.url, remote.token or "", True, ("", None))
        assert outcome.startswith("linked"), outcome
        entries = await existing_entries(browser_local)

    async def loaded() -> bool:
        return [e["state"] for e in await existing_entries(browser_local)] == ["loaded"]

    await wait_until(loaded, 30, "the entry loaded", browser_local)
    return Entry(entries[0]["entry_id"], entries[0]["title"])


async def wait_stored(
    local: RemoteHass, entry: Entry, key: str, value: Any, timeout: float = 15
) -> None:
    """Wait (bounded) until the entry's stored data holds `key: value` (stores are written late)."""

    def holds() -> bool:
        return entry.stored(local).get("data", {}).get(key) == value

    await wait_until(holds, timeout, f"{key}={value!r} stored for {entry.title}", local)
