"""A test Home Assistant with this integration loadable, for the benchmarks that need the HA layer.

Uses `async_test_home_assistant` from pytest-homeassistant-custom-component (an installed package,
not this repository's tests/): a real `HomeAssistant` with registries in memory, custom
integrations enabled (loaded from ./custom_components) and `http` set up without binding a port
(its settings where the release reads them: `tests.harness.http_config`). With `recorder=True` it
also has Home Assistant's recorder with its default settings (SQLite in the instance's directory,
commit every 5 s), as a user's instance has.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from pathlib import Path
import tempfile
import time
from typing import Any, Self
from unittest.mock import PropertyMock, patch

from tests.harness.http_config import configure_http, http_settings

from .common import free_port, wait_for
from .server import TOKEN

COORDINATOR_MODULE = "custom_components.ha_ingestion.coordinator"


def integration_available() -> bool:
    """The HA layer exists: coordinator.py is there."""
    return importlib.util.find_spec(COORDINATOR_MODULE) is not None


class TestHass:
    """`async with TestHass() as env:` gives `env.hass`; `add_entry()` links it to a server."""

    def __init__(self, *, recorder: bool = False) -> None:
        """Nothing happens until `async with`."""
        self._dir = tempfile.TemporaryDirectory(prefix="ha_ingestion_bench_")
        self._stack = contextlib.AsyncExitStack()
        self._recorder = recorder
        self.db_path = Path(self._dir.name) / "home-assistant_v2.db"
        self.hass: Any = None
        # The last `add_entry`'s `async_setup` call: its duration, the components set up then.
        self.setup_seconds = 0.0
        self.components_at_setup = 0

    async def __aenter__(self) -> Self:
        """Create the instance and set up `http`."""
        from homeassistant import loader
        from homeassistant.helpers import frame
        from homeassistant.setup import async_setup_component
        from pytest_homeassistant_custom_component.common import async_test_home_assistant

        # "We found a custom integration ... which has not been tested": expected here.
        logging.getLogger("homeassistant.loader").setLevel(logging.ERROR)
        self.hass = await self._stack.enter_async_context(
            async_test_home_assistant(config_dir=self._dir.name)
        )
        frame.async_setup(self.hass)
        self.hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)  # load ./custom_components
        config = configure_http(self._dir.name, http_settings("127.0.0.1", free_port()))
        if not await async_setup_component(self.hass, "http", config):
            raise RuntimeError("http did not set up")
        if self._recorder:
            await self._setup_recorder()
        return self

    async def _setup_recorder(self) -> None:
        """The recorder with its defaults, its database ready (bootstrap's order)."""
        from homeassistant.helpers import recorder as recorder_helper
        from homeassistant.setup import async_setup_component

        recorder_helper.async_initialize_recorder(self.hass)
        config = {"recorder": {"db_url": f"sqlite:///{self.db_path}"}}
        if not await async_setup_component(self.hass, "recorder", config):
            raise RuntimeError("recorder did not set up")
        if not await recorder_helper.get_instance(self.hass).async_db_ready:
            raise RuntimeError("recorder database not ready")

    async def __aexit__(self, *exc: object) -> None:
        """Unload every entry, stop, clean up."""
        from homeassistant.config_entries import ConfigEntryState

        hass = self.hass
        try:
            for entry in hass.config_entries.async_entries():
                if entry.state is ConfigEntryState.LOADED:
                    await hass.config_entries.async_unload(entry.entry_id)
            if self._recorder:
                await self.recorder_idle()  # else its stop waits for a startup still running
            await hass.async_stop(force=True)
        finally:
            await self._stack.aclose()
            self._dir.cleanup()

    async def recorder_idle(self) -> None:
        """Wait until the recorder has done (and committed) everything queued so far."""
        from homeassistant.helpers.recorder import get_instance

        await get_instance(self.hass).async_block_till_done()

    async def add_entry(
        self,
        url: str,
        options: dict[str, Any] | None = None,
        *,
        all_entities: bool = False,
        unique_id: str = "bench",
    ) -> Any:
        """Add and set up an entry linked to `url`; wait until the link is CONNECTED."""
        from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
        from pytest_homeassistant_custom_component.common import MockConfigEntry

        from custom_components.ha_ingestion.client import LinkState
        from custom_components.ha_ingestion.const import CONF_VERIFY_SSL, DOMAIN

        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Bench Home",
            unique_id=unique_id,
            data={CONF_URL: url, CONF_ACCESS_TOKEN: TOKEN, CONF_VERIFY_SSL: True},
            options=dict(options or {}),
        )
        entry.add_to_hass(self.hass)
        enable = (
            patch(
                "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
                return_value=True,
                new_callable=PropertyMock,
            )
            if all_entities
            else contextlib.nullcontext()
        )
        with enable:
            began = time.perf_counter()
            if not await self.hass.config_entries.async_setup(entry.entry_id):
                raise RuntimeError(f"entry did not set up: {entry.state}")
            self.setup_seconds = time.perf_counter() - began
            self.components_at_setup = len(self.hass.config.components)
            await self.hass.async_block_till_done()
        engine = entry.runtime_data.coordinator.engine
        if not await wait_for(lambda: engine.state is LinkState.CONNECTED, 15):
            raise RuntimeError(f"link did not come up: {engine.state}")
        return entry

    async def remove_entry(self, entry: Any) -> None:
        """Unload and remove an entry."""
        await self.hass.config_entries.async_remove(entry.entry_id)
        await self.hass.async_block_till_done()
