"""`scripts/develop remote stop|start|freeze|thaw|status`: by the PID files, never by a pattern.

Stand-in processes (a Python sleeping with the sandbox's config dir in its command line, as the
sandbox's hass has) take the signals; the real sandbox is exercised by running the demo.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from pathlib import Path
import signal
import subprocess
import sys

import pytest

from tests.harness import develop

SLEEPER = "import time\nwhile True: time.sleep(1)"
# Stands in for scripts/develop: on SIGUSR1 it "starts the sandbox" (writes its PID file).
DEVELOPER = """
import os, signal, sys, time
def start(*_):
    # as a careless writer would: the file exists a moment before its text
    with open(sys.argv[1], "w") as f:
        f.flush(); time.sleep(0.5); f.write(f"{os.getpid()}\\n")
signal.signal(signal.SIGUSR1, start)
open(sys.argv[1] + ".ready", "w").close()
while True: time.sleep(0.1)
"""


@pytest.fixture
async def spawn() -> AsyncIterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start stand-in processes; every one is killed (by its own pid) after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def _spawn(code: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", code, *args])
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def develop_dir(tmp_path: Path) -> Path:
    (tmp_path / "remote").mkdir()
    return tmp_path


def _pid_file(develop_dir: Path) -> Path:
    return develop_dir / "remote" / "hass.pid"


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0.05)


async def _execed(proc: subprocess.Popen[bytes], marker: str) -> None:
    """Wait until the child runs its own program (between fork and exec it is still pytest)."""
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    await _until(lambda: marker.encode() in cmdline.read_bytes().split(b"\0"))


async def test_freeze_thaw_stop_by_pid_file(
    develop_dir: Path,
    spawn: Callable[..., subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    hass = spawn(SLEEPER, "-c", str(develop_dir / "remote"))
    develop.write_pid(_pid_file(develop_dir), hass.pid)
    await _execed(hass, str(develop_dir / "remote"))

    assert await develop.control("freeze", develop_dir) == 0
    assert develop.process_state(hass.pid) == "T"
    assert await develop.control("status", develop_dir) == 0
    assert f"frozen (pid {hass.pid})" in capsys.readouterr().out

    assert await develop.control("thaw", develop_dir) == 0
    await _until(lambda: develop.process_state(hass.pid) in ("S", "R"))
    assert await develop.control("status", develop_dir) == 0
    assert f"running (pid {hass.pid})" in capsys.readouterr().out

    # stop works on a frozen process too (it is thawed first)
    assert await develop.control("freeze", develop_dir) == 0
    assert await develop.control("stop", develop_dir) == 0
    assert hass.wait(timeout=10) == -signal.SIGTERM


async def test_a_recycled_pid_is_not_touched(
    develop_dir: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """The PID file names a process that is not the sandbox's hass: nothing is signalled."""
    stranger = spawn(SLEEPER, "-c", "/somewhere/else")
    develop.write_pid(_pid_file(develop_dir), stranger.pid)
    await _execed(stranger, "/somewhere/else")

    for action in ("freeze", "stop"):
        with pytest.raises(develop.ControlError, match="is not the sandbox's hass"):
            await develop.control(action, develop_dir)
    assert develop.process_state(stranger.pid) in ("S", "R")
    assert stranger.poll() is None


async def test_stale_or_missing_pid_file(
    develop_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(develop.ControlError, match="no PID file"):
        await develop.control("freeze", develop_dir)
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    develop.write_pid(_pid_file(develop_dir), dead.pid)
    with pytest.raises(develop.ControlError, match="stale PID file"):
        await develop.control("thaw", develop_dir)
    assert await develop.control("status", develop_dir) == 0
    assert "sandbox remote: stopped" in capsys.readouterr().out
    # start without a running scripts/develop says so
    with pytest.raises(develop.ControlError, match="no scripts/develop running"):
        await develop.control("start", develop_dir)


async def test_start_asks_the_running_develop(
    develop_dir: Path,
    spawn: Callable[..., subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`remote start` signals scripts/develop (SIGUSR1, by its PID file) and waits for the sandbox."""
    pid_file = _pid_file(develop_dir)
    runner = spawn(DEVELOPER, str(pid_file), "-c", str(develop_dir / "remote"))
    develop.write_pid(develop_dir / "develop.pid", runner.pid)
    ready = Path(f"{pid_file}.ready")
    await _until(ready.exists)  # its SIGUSR1 handler is installed

    assert await develop.control("start", develop_dir) == 0
    assert f"running again (pid {runner.pid})" in capsys.readouterr().out

    # already running: nothing is signalled
    assert await develop.control("start", develop_dir) == 0
    assert "already running" in capsys.readouterr().out


def test_run_parses_remote_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        develop.run(["remote", "explode"])
    assert "invalid choice" in capsys.readouterr().err
