"""Shared fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
import importlib
import threading
import time
from typing import TYPE_CHECKING, Any
from unittest.mock import PropertyMock, patch

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import (
    CONF_BASE_DELAY,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    CONF_JITTER,
    CONF_MAX_DELAY,
    CONF_MIRROR_ENTITIES,
    CONF_VERIFY_SSL,
    DOMAIN,
)

from .deprecation_guard import collect_deprecation_reports
from .preload import import_platform_modules

if TYPE_CHECKING:
    from .fake_ha import FakeHA

# The in-process fake Home Assistant WebSocket server and its `fake_ha` fixture.
pytest_plugins = ["tests.fake_ha", "tests.harness.fixtures"]
# The real-`hass` smoke runs under plain pytest, as its own root (tests/smoke/pytest.ini): not here.
collect_ignore = ["smoke"]

# Fast, deterministic retry options for tests: no jitter, short delays. Mirroring (on by default)
# is off here: the tests of capture see every state change as an event; tests/mirror turn it on.
TEST_OPTIONS: dict[str, Any] = {
    CONF_MIRROR_ENTITIES: False,
    CONF_BASE_DELAY: 0.05,
    CONF_MAX_DELAY: 0.2,
    CONF_JITTER: False,
    CONF_HEARTBEAT_INTERVAL: 30.0,
    CONF_HEARTBEAT_TIMEOUT: 10.0,
}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Import the components the integration's platforms use, once per test process.

    Home Assistant imports a component that is not imported yet in its executor; a test that ends
    while such an import still runs (a busy machine, a fresh pytest-xdist worker) leaves an
    executor thread behind, which the test framework reports as a lingering thread.
    """
    import_platform_modules()
    importlib.import_module("homeassistant.components.repairs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests first, the longest (by their time bound) first; stable otherwise.

    They mostly wait on real time: with several pytest-xdist workers the unit tests fill those
    waits instead of queueing behind them, and no long file starts last.
    """

    def order(item: pytest.Item) -> tuple[bool, float]:
        bound = item.get_closest_marker("timeout")
        return item.get_closest_marker("e2e") is None, -float(bound.args[0] if bound else 0)

    items.sort(key=order)


def pytest_configure(config: pytest.Config) -> None:
    """Snapshots live in tests/snapshots/ (Home Assistant's layout) on every release under test.

    Older syrupy takes the directory from Home Assistant's snapshot extension; syrupy 6 from this
    option, whose default would be __snapshots__.
    """
    config.option.snapshot_dirname = "snapshots"


@pytest.fixture(autouse=True)
def verify_cleanup(verify_cleanup: None) -> Generator[None]:
    """The plugin's leak check (`verify_cleanup`, run after this), given ended threads time to go.

    The test's `hass` is stopped before this ends; a worker of its executor can still be on its
    way out on a loaded machine when the plugin looks (seen: `SyncWorker_2` under load, never
    alone). Such workers are joined here for at most 10 s; one that is still alive then is a
    real leak, and the plugin's check fails on it as before.
    """
    before = frozenset(threading.enumerate())
    yield
    # What the plugin does first too: end the loop's default executor (its idle workers exit).
    loop = asyncio.get_event_loop()
    loop.run_until_complete(loop.shutdown_default_executor())
    deadline = time.monotonic() + 10
    for thread in frozenset(threading.enumerate()) - before:
        if thread.name.startswith("SyncWorker_"):
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> Generator[None]:
    """Let Home Assistant load integrations from custom_components/."""
    return


@pytest.fixture(autouse=True)
def fail_on_deprecation_reports() -> Generator[None]:
    """Home Assistant's "will stop working" / "deprecated" reports about us fail the test."""
    with collect_deprecation_reports() as reports:
        yield
    if reports.reports:
        pytest.fail(
            "Home Assistant reported deprecated use by ha_ingestion:\n"
            + "\n".join(reports.reports),
            pytrace=False,
        )


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Enable the entities that are disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


def linked_entry(fake_ha: FakeHA, **options: Any) -> MockConfigEntry:
    """A config entry linked to the fake remote, with the tests' options (`TEST_OPTIONS`) and
    `options` over them; not added to hass."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=fake_ha.location_name,
        unique_id=fake_ha.user_id,
        data={CONF_URL: fake_ha.url, CONF_ACCESS_TOKEN: fake_ha.token, CONF_VERIFY_SSL: True},
        options={**TEST_OPTIONS, **options},
    )


@pytest.fixture
def mock_config_entry(fake_ha: FakeHA) -> MockConfigEntry:
    """A config entry linked to the fake remote (not added to hass)."""
    return linked_entry(fake_ha)


type SetUpEntry = Callable[[MockConfigEntry], Awaitable[MockConfigEntry]]


@pytest.fixture
async def set_up_entry(hass: HomeAssistant) -> AsyncGenerator[SetUpEntry]:
    """Set an entry up (added to hass first if it is not yet) and wait for what its setup started;
    every entry set up this way is unloaded at the end of the test."""
    entries: list[MockConfigEntry] = []

    async def _set_up(entry: MockConfigEntry) -> MockConfigEntry:
        if hass.config_entries.async_get_entry(entry.entry_id) is None:
            entry.add_to_hass(hass)
        if entry not in entries:
            entries.append(entry)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        return entry

    yield _set_up
    for entry in entries:
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` is true; fail after `timeout` seconds (bounded, never hangs)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def entry_device(registry: dr.DeviceRegistry, entry: MockConfigEntry) -> dr.DeviceEntry:
    """The one device of an entry: the remote instance."""
    devices = dr.async_entries_for_config_entry(registry, entry.entry_id)
    assert len(devices) == 1
    assert devices[0].identifiers == {(DOMAIN, entry.entry_id)}
    return devices[0]


def link_state(entry: MockConfigEntry) -> LinkState:
    """The engine state of a loaded entry."""
    state: LinkState = entry.runtime_data.coordinator.engine.state
    return state


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> AsyncGenerator[MockConfigEntry]:
    """The integration set up and linked to the fake remote."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(mock_config_entry) is LinkState.CONNECTED)
    yield mock_config_entry
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
