"""Helpers for the end-to-end tests: link configuration, a link watcher, measured figures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import json
from pathlib import Path
import time
from typing import Any

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
    ConnectionConfig,
    EngineConfig,
    LinkEngine,
    LinkSnapshot,
    LinkState,
)

RESULTS_PATH = Path(__file__).resolve().parents[2] / "bench" / "results" / "e2e.json"
# Measured figures of this session, by scenario; printed at the end and written to RESULTS_PATH.
RESULTS: dict[str, dict[str, Any]] = {}

PING_EVENT = "e2e_ping"
BURST_EVENT = "e2e_burst"


def record(scenario: str, **figures: Any) -> None:
    """Keep (and print) a scenario's measured figures."""
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    RESULTS.setdefault(scenario, {}).update(rounded)
    print(f"[e2e] {scenario}: {json.dumps(rounded)}")  # noqa: T201 - shown with -s and in the summary


def write_results() -> Path | None:
    """Write RESULTS to bench/results/e2e.json (merging with scenarios not run this time)."""
    if not RESULTS:
        return None
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    merged: dict[str, Any] = {}
    if RESULTS_PATH.exists():
        try:
            merged = json.loads(RESULTS_PATH.read_text(encoding="utf-8"))
        except ValueError:
            merged = {}
    merged.update(RESULTS)
    merged["_written"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    RESULTS_PATH.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return RESULTS_PATH


def link_config(
    url: str,
    token: str,
    *,
    heartbeat_interval: float = 5.0,
    heartbeat_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    event_types: tuple[str, ...] = ("state_changed", PING_EVENT),
) -> EngineConfig:
    """Small timings: backoff 0.2 s .. 2 s, a breaker that does not get in the way, a 1 s spread
    after a restart (the default policy is measured with default options in test_restart_policy).
    """
    return EngineConfig(
        connection=ConnectionConfig(
            url=url,
            token=token,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            connect_timeout=connect_timeout,
            command_timeout=10.0,
            event_types=event_types,
        ),
        backoff=BackoffConfig(base=0.2, max_delay=2.0),
        breaker=BreakerConfig(failure_threshold=1000, recovery_timeout=1.0),
        stability_window=5.0,
        reconnect_spread=1.0,
    )


@dataclass
class Transition:
    """A state change seen by the listener."""

    at: float
    state: LinkState


@dataclass
class LinkWatch:
    """Records every state change (with monotonic time) and every event of one engine."""

    engine: LinkEngine
    transitions: list[Transition] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    keep_types: frozenset[str] = frozenset({PING_EVENT, "state_changed"})
    _last: LinkState | None = None

    def __post_init__(self) -> None:
        """Listen."""
        self.engine.add_listener(self._on_snapshot)
        self.engine.add_event_listener(self._on_event)

    def _on_snapshot(self, snapshot: LinkSnapshot) -> None:
        if snapshot.state is not self._last:
            self._last = snapshot.state
            self.transitions.append(Transition(time.monotonic(), snapshot.state))

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event_type") in self.keep_types:
            self.events.append({**event, "_received": time.monotonic()})

    @property
    def state(self) -> LinkState:
        """Current state."""
        return self.engine.state

    def first_after(self, since: float, predicate: Callable[[LinkState], bool]) -> float | None:
        """Time of the first transition after `since` whose state matches."""
        for transition in self.transitions:
            if transition.at >= since and predicate(transition.state):
                return transition.at
        return None

    def states_since(self, since: float) -> list[LinkState]:
        """States entered since `since`."""
        return [t.state for t in self.transitions if t.at >= since]

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.02
    ) -> float:
        """Wait (bounded) until `predicate()`; return the seconds it took."""
        began = time.monotonic()
        deadline = began + timeout
        while not predicate():
            if time.monotonic() > deadline:
                snap = self.engine.snapshot()
                raise AssertionError(
                    f"{what}: not within {timeout:g} s (state {snap.state}, "
                    f"last error {snap.last_error}, transitions "
                    f"{[(round(t.at - began, 2), str(t.state)) for t in self.transitions[-8:]]})"
                )
            await asyncio.sleep(poll)
        return time.monotonic() - began

    async def wait_state(self, state: LinkState, timeout: float) -> float:
        """Wait until the link is in `state`."""
        return await self.wait_until(lambda: self.state is state, timeout, f"link {state}")

    async def wait_left_connected(self, timeout: float) -> float:
        """Wait until the link is no longer CONNECTED."""
        return await self.wait_until(
            lambda: self.state is not LinkState.CONNECTED, timeout, "link loss detected"
        )

    async def wait_event(
        self, event_type: str, timeout: float, match: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Wait until an event of `event_type` (matching `match`) has arrived; return it."""
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            for event in self.events:
                if event.get("event_type") == event_type and (match is None or match(event)):
                    found.append(event)
                    return True
            return False

        await self.wait_until(arrived, timeout, f"event {event_type}")
        return found[0]
