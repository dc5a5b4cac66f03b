"""End-to-end fixtures of the engine tests (no in-process `hass`).

The shared real remote (`remote_hass`, `remote`) and the `proxy` come from the plugin
tests/harness/fixtures.py, registered in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from custom_components.ha_ingestion.client import EngineConfig, LinkEngine
from tests.harness.fixtures import LOGIN_ATTEMPTS_THRESHOLD

from .helpers import LinkWatch

__all__ = ["LOGIN_ATTEMPTS_THRESHOLD", "LinkFactory"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the package-wide fixture: these tests need no in-process `hass`."""
    return


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The aiohttp session the engine uses."""
    async with aiohttp.ClientSession() as session:
        yield session


type LinkFactory = Callable[[EngineConfig], Awaitable[tuple[LinkEngine, LinkWatch]]]


@pytest.fixture
async def make_link(http: aiohttp.ClientSession) -> AsyncIterator[LinkFactory]:
    """Start engines (with a watcher each); all are closed after the test."""
    engines: list[LinkEngine] = []

    async def factory(config: EngineConfig) -> tuple[LinkEngine, LinkWatch]:
        engine = LinkEngine(http, config)
        watch = LinkWatch(engine)
        engines.append(engine)
        await engine.start()
        return engine, watch

    yield factory
    for engine in engines:
        await engine.close()
