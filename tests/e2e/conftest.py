"""End-to-end fixtures: ONE real `hass` for the whole e2e session, restored between tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import contextlib
import os

import aiohttp
import pytest
import pytest_socket

from custom_components.ha_ingestion.client import Supervisor, SupervisorConfig
from tests.harness import FaultProxy, RemoteHass, RemoteHassError, run_sync

from .helpers import RESULTS, LinkWatch, record, write_results

# The failed-login threshold the shared remote runs with: the revocation test proves we never
# reach it (no ip_bans.yaml entry).
LOGIN_ATTEMPTS_THRESHOLD = 3


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the package-wide fixture: these tests need no in-process `hass`."""
    return


@contextlib.contextmanager
def _sockets_allowed() -> Iterator[None]:
    """Session fixtures run outside a test's socket_enabled: allow sockets while they work."""
    pytest_socket.enable_socket()
    try:
        yield
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)


@pytest.fixture(scope="session")
def remote_hass() -> Iterator[RemoteHass]:
    """Start, onboard and persist one real remote Home Assistant for every e2e test."""
    with _sockets_allowed():
        remote = RemoteHass(name="E2E Remote", login_attempts_threshold=LOGIN_ATTEMPTS_THRESHOLD)
    try:
        with _sockets_allowed():
            timings = run_sync(remote.setup())
    except RemoteHassError as err:
        remote.cleanup()
        pytest.fail(f"could not start the remote Home Assistant: {err}", pytrace=False)
    record("harness", **{f"{k}_s": v for k, v in timings.items()})
    yield remote
    with _sockets_allowed():
        run_sync(remote.close())
    record(
        "harness", timings=remote.timings, config_dir_kept=bool(os.environ.get("HA_HARNESS_KEEP"))
    )
    remote.cleanup()


@pytest.fixture
async def remote(remote_hass: RemoteHass, socket_enabled: None) -> AsyncIterator[RemoteHass]:
    """The shared remote, running, thawed, with a valid client token and no IP ban."""
    remote_hass.thaw()
    if not remote_hass.running:
        await remote_hass.start()
    await remote_hass.wait_ready(30)
    if remote_hass.token_revoked:
        await remote_hass.new_token()
    assert not remote_hass.ip_bans(), f"the remote banned us: {remote_hass.ip_bans()}"
    yield remote_hass
    remote_hass.thaw()


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The aiohttp session the engine uses."""
    async with aiohttp.ClientSession() as session:
        yield session


type LinkFactory = Callable[[SupervisorConfig], Awaitable[tuple[Supervisor, LinkWatch]]]


@pytest.fixture
async def make_link(http: aiohttp.ClientSession) -> AsyncIterator[LinkFactory]:
    """Start supervisors (with a watcher each); all are closed after the test."""
    supervisors: list[Supervisor] = []

    async def factory(config: SupervisorConfig) -> tuple[Supervisor, LinkWatch]:
        supervisor = Supervisor(http, config)
        watch = LinkWatch(supervisor)
        supervisors.append(supervisor)
        await supervisor.start()
        return supervisor, watch

    yield factory
    for supervisor in supervisors:
        await supervisor.close()


@pytest.fixture
async def proxy(remote: RemoteHass) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the remote."""
    async with FaultProxy(remote.port) as fault_proxy:
        yield fault_proxy


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the measured figures and write them to bench/results/e2e.json."""
    if not RESULTS:
        return
    terminalreporter.section("e2e measured figures")
    for scenario, figures in RESULTS.items():
        terminalreporter.write_line(f"{scenario}: {figures}")
    if (path := write_results()) is not None:
        terminalreporter.write_line(f"(written to {path})")
