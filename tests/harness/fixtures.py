"""Pytest plugin: ONE real remote `hass` shared by every end-to-end package in a session.

Registered in tests/conftest.py (`pytest_plugins`). Nothing starts until a test asks for
`remote` (or `remote_hass`): a run of `pytest -m "not e2e"` starts no Home Assistant.

- `remote_hass` (session): started, onboarded and persisted once, stopped at the end.
- `remote` (function): the same remote, restored for each test: running, thawed, with a valid
  client token and no IP ban.
- `proxy` (function): a `FaultProxy` in front of the remote.
- `postgres` (function): a temporary PostgreSQL server with one database (`tests.harness.postgres`),
  stopped and removed after the test; the test is skipped only where the server is not installed.

The measured figures `record()`ed by the e2e tests (tests/e2e/helpers.py) are printed at the end
of the run and written to bench/results/e2e.json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

import pytest
import pytest_socket  # type: ignore[import-untyped]

from tests.e2e.helpers import RESULTS, record, write_results

from . import FaultProxy, RemoteHass, RemoteHassError, run_sync
from .postgres import BIN_GLOB, PostgresServer, find_bin_dir

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

# The failed-login threshold the shared remote runs with: the revocation tests prove we never
# reach it (no ip_bans.yaml entry).
LOGIN_ATTEMPTS_THRESHOLD = 3
REMOTE_NAME = "E2E Remote"


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
        remote = RemoteHass(name=REMOTE_NAME, login_attempts_threshold=LOGIN_ATTEMPTS_THRESHOLD)
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
async def proxy(remote: RemoteHass) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the remote."""
    async with FaultProxy(remote.port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def postgres(socket_enabled: None) -> Iterator[PostgresServer]:
    """A temporary PostgreSQL server (127.0.0.1, free port, trust auth) with one database."""
    if find_bin_dir() is None:
        pytest.skip(
            f"PostgreSQL server not installed (no initdb/postgres in {BIN_GLOB}); "
            "scripts/setup installs Debian's postgresql package where it can"
        )
    with PostgresServer() as server:
        yield server


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker: hand this worker's measured figures to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["e2e_results"] = json.dumps(RESULTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the pytest-xdist controller: gather a finished worker's measured figures."""
    for scenario, figures in json.loads(node.workeroutput.get("e2e_results", "{}")).items():
        RESULTS.setdefault(scenario, {}).update(figures)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Show the measured figures and write them to bench/results/e2e.json."""
    if not RESULTS:
        return
    terminalreporter.section("e2e measured figures")
    for scenario, figures in RESULTS.items():
        terminalreporter.write_line(f"{scenario}: {figures}")
    if (path := write_results()) is not None:
        terminalreporter.write_line(f"(written to {path})")
