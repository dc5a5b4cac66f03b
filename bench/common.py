"""Shared pieces: results, the table, the server process, small helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import platform
import signal
import statistics
import sys
import time
from typing import Any, Self

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    """Progress goes to stderr; stdout is kept for the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- results


@dataclass
class Metric:
    """One row of the table."""

    metric: str
    value: float | str | None
    unit: str = ""
    target: str = ""
    ok: bool | None = None
    digits: int = 2

    def shown(self) -> str:
        """The value as printed."""
        if self.value is None:
            return "n/a"
        if isinstance(self.value, str):
            return self.value
        value = self.value
        text = f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.{self.digits}f}"
        return f"{text} {self.unit}".strip()


@dataclass
class Result:
    """What one benchmark produced."""

    name: str
    quick: bool
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    duration_s: float = 0.0
    host: dict[str, Any] = field(default_factory=lambda: host_info())  # noqa: PLW0108

    def add(
        self,
        metric: str,
        value: float | str | None,
        unit: str = "",
        *,
        target: str = "",
        ok: bool | None = None,
        digits: int = 2,
    ) -> None:
        """Add a row."""
        self.metrics.append(Metric(metric, value, unit, target, ok, digits))

    def write(self) -> Path:
        """Write `bench/results/<name>.json`."""
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.host["load_end"] = _loadavg()
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Result:
        """Read a result written by `write()`."""
        data = json.loads(path.read_text())
        data["metrics"] = [Metric(**m) for m in data["metrics"]]
        return cls(**data)


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def host_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_start": _loadavg(),
    }


def format_table(results: list[Result]) -> str:
    """One table: name, metric, value, target, ok?."""
    rows = [("name", "metric", "value", "target", "ok?")]
    for result in results:
        for m in result.metrics:
            ok = "" if m.ok is None else ("yes" if m.ok else "NO")
            rows.append((result.name, m.metric, m.shown(), m.target, ok))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(widths[i]) if i == 2 and n else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(values: list[float]) -> dict[str, float | None]:
    """min / median / max / mean of a sample (None when empty)."""
    if not values:
        return {"min": None, "median": None, "max": None, "mean": None, "n": 0}
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "n": len(values),
    }


# ---------------------------------------------------------------------- helpers


async def wait_for(predicate: Callable[[], bool], within: float, step: float = 0.01) -> bool:
    """Poll `predicate` until it holds or `within` seconds pass; return whether it held."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def free_port() -> int:
    """A port with nothing listening on it (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def reap(proc: asyncio.subprocess.Process, within: float = 10.0) -> None:
    """Wait for a child asked to end; SIGKILL it after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()


# ---------------------------------------------------------------------- the server process


class ServerProcess:
    """`python -m bench.server` in its own process, and its control API."""

    def __init__(
        self, *, events: int = 0, seed: int = 0, rate: float = 0.0, delay: float = 0.0
    ) -> None:
        """Configure; `async with` starts and stops it."""
        self._args = ["--events", str(events), "--seed", str(seed)]
        self._args += ["--rate", str(rate), "--delay", str(delay)]
        self._proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self.port = 0
        self.control = 0
        self.pid = 0
        self.frozen = False

    @property
    def url(self) -> str:
        """The WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}/api/websocket"

    async def __aenter__(self) -> Self:
        """Start the process and wait for its address line."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.server",
            *self._args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        async with asyncio.timeout(120):
            line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError("bench server did not start")
        info = json.loads(line)
        self.port, self.control, self.pid = info["port"], info["control"], info["pid"]
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the process (thawing it first if it is frozen)."""
        if self._http is not None:
            await self._http.close()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self.thaw()
        proc.send_signal(signal.SIGTERM)
        await reap(proc)

    def freeze(self) -> float:
        """SIGSTOP: sockets stay open, nothing is read or answered."""
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True
        return time.monotonic()

    def thaw(self) -> float:
        """SIGCONT."""
        if self.frozen:
            os.kill(self.pid, signal.SIGCONT)
            self.frozen = False
        return time.monotonic()

    async def call(self, method: str, path: str) -> Any:
        """Call the control API."""
        assert self._http is not None
        async with self._http.request(method, f"http://127.0.0.1:{self.control}{path}") as resp:
            resp.raise_for_status()
            return await resp.json()

    async def down(self) -> float:
        """Stop listening and drop every connection; the server's monotonic time of it."""
        return float((await self.call("POST", "/down"))["t"])

    async def up(self) -> float:
        """Listen again; the server's monotonic time of it."""
        return float((await self.call("POST", "/up"))["t"])

    async def stats(self) -> dict[str, Any]:
        """Upgrade request times, command counts, active connections."""
        return dict(await self.call("GET", "/stats"))

    async def reset(self) -> None:
        """Forget the statistics."""
        await self.call("POST", "/reset")
