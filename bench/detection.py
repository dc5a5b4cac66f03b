"""detection: how fast a frozen peer is noticed, and how fast the link comes back after a thaw.

Each run: a fresh LinkEngine (heartbeat_interval=1, heartbeat_timeout=1, default backoff) links to
the server process; after a random 0.2-1.5 s of idle link (pings flowing) the server is frozen with
SIGSTOP (sockets kept, nothing read or answered). Measured:

- detection: from the last byte the client received to the state leaving CONNECTED;
- thaw: the server gets SIGCONT the moment the state leaves CONNECTED; reconnect excess is the time
  from the attempt the engine scheduled (its backoff delay) to CONNECTED again.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    ConnectionConfig,
    EngineConfig,
    LinkEngine,
    LinkSnapshot,
    LinkState,
)

from .common import Result, ServerProcess, log, summary
from .server import TOKEN

INTERVAL = 1.0
TIMEOUT = 1.0
CLOSE_ALLOWANCE = 2.0  # the brief's "+ 2 s" (the session's close handshake timeout is 2 s)
RECONNECT_ALLOWANCE = 1.0
FULL_RUNS = 10
QUICK_RUNS = 3


class _Run:
    """Transitions of one engine, stamped as they happen (the listener runs synchronously)."""

    def __init__(self, sup: LinkEngine, server: ServerProcess) -> None:
        self.sup = sup
        self.server = server
        self.session: Any = None
        self.up = asyncio.Event()
        self.left = asyncio.Event()
        self.back = asyncio.Event()
        self.armed = False
        self.t_left = 0.0
        self.t_thaw = 0.0
        self.last_rx = 0.0
        self.delay: float | None = None
        self.t_scheduled = 0.0
        self.t_back = 0.0
        self.left_to: LinkState | None = None
        self.error: str | None = None

    def __call__(self, snap: LinkSnapshot) -> None:
        now = time.monotonic()
        if not self.armed:
            if snap.state is LinkState.CONNECTED:
                self.session = self.sup._session
                self.up.set()
            return
        if not self.left.is_set():
            if snap.state is not LinkState.CONNECTED:
                self.t_left = now
                self.left_to = snap.state
                # The session that died; `_last_rx` is the loop (monotonic) time of its last frame.
                self.last_rx = self.session._last_rx
                self.t_thaw = self.server.thaw()
                self.error = snap.last_error.type if snap.last_error else None
                self.left.set()
            return
        if self.delay is None and snap.current_backoff is not None:
            self.delay = snap.current_backoff
            self.t_scheduled = now
        if snap.state is LinkState.CONNECTED and not self.back.is_set():
            self.t_back = now
            self.back.set()


async def _one_run(
    http: aiohttp.ClientSession, server: ServerProcess, rng: random.Random, seed: int
) -> dict[str, Any]:
    config = EngineConfig(
        connection=ConnectionConfig(
            url=server.url, token=TOKEN, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT
        ),
        backoff=BackoffConfig(),
    )
    sup = LinkEngine(http, config, rng=random.Random(seed))
    run = _Run(sup, server)
    sup.add_listener(run)
    await sup.start()
    try:
        async with asyncio.timeout(15):
            await run.up.wait()
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        run.armed = True
        t_freeze = server.freeze()
        async with asyncio.timeout(INTERVAL + TIMEOUT + CLOSE_ALLOWANCE + 15):
            await run.left.wait()
        async with asyncio.timeout(60):
            await run.back.wait()
    finally:
        server.thaw()
        await sup.close()
    planned = run.t_scheduled + (run.delay or 0.0)
    return {
        "detection_s": run.t_left - run.last_rx,
        "freeze_to_detection_s": run.t_left - t_freeze,
        "left_to": str(run.left_to),
        "error": run.error,
        "scheduled_delay_s": run.delay,
        "reconnect_after_thaw_s": run.t_back - run.t_thaw,
        "reconnect_excess_s": run.t_back - max(planned, run.t_thaw),
    }


async def run(quick: bool) -> Result:
    """Freeze, detect, thaw, reconnect; `runs` times."""
    runs = QUICK_RUNS if quick else FULL_RUNS
    result = Result(
        "detection",
        quick,
        params={"runs": runs, "heartbeat_interval": INTERVAL, "heartbeat_timeout": TIMEOUT},
    )
    rng = random.Random(7)
    samples: list[dict[str, Any]] = []
    async with ServerProcess() as server, aiohttp.ClientSession() as http:
        for i in range(runs):
            sample = await _one_run(http, server, rng, seed=i)
            samples.append(sample)
            log(
                f"detection: run {i + 1}/{runs}: detected in {sample['detection_s']:.3f} s "
                f"({sample['error']}), back {sample['reconnect_after_thaw_s']:.3f} s after thaw "
                f"(scheduled delay {sample['scheduled_delay_s']:.3f} s)"
            )
    result.details["runs"] = samples
    detection = summary([s["detection_s"] for s in samples])
    excess = summary([s["reconnect_excess_s"] for s in samples])
    after_thaw = summary([s["reconnect_after_thaw_s"] for s in samples])
    result.details["summary"] = {
        "detection_s": detection,
        "reconnect_excess_s": excess,
        "reconnect_after_thaw_s": after_thaw,
    }
    limit = INTERVAL + TIMEOUT + CLOSE_ALLOWANCE
    for key in ("min", "median", "max"):
        value = detection[key]
        assert value is not None
        result.add(
            f"detection {key}", value, "s", target=f"<= {limit:g} s", ok=value <= limit, digits=3
        )
    for key in ("min", "median", "max"):
        value = excess[key]
        assert value is not None
        result.add(
            f"reconnect beyond scheduled delay {key}",
            value,
            "s",
            target=f"<= {RECONNECT_ALLOWANCE:g} s",
            ok=value <= RECONNECT_ALLOWANCE,
            digits=3,
        )
    value = after_thaw["median"]
    result.add("reconnect after thaw median", value, "s", digits=3)
    return result
