"""The engine against the fake Home Assistant over real sockets, with fake time.

Every delay goes through `FakeTime.sleep`, which records it, advances the fake monotonic clock and
yields; past `limit` sleeps it blocks until the test calls `allow()`. No test sleeps through backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
import errno
import logging
import random
from typing import Any

import aiohttp
import pytest

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
    BreakerState,
    ConnectionConfig,
    EngineConfig,
    ErrorCategory,
    HaAuthenticationError,
    HaConnectionClosedError,
    HaWebSocketSession,
    LinkEngine,
    LinkSnapshot,
    LinkState,
    WaitReason,
)
from custom_components.ha_ingestion.client.probe import (
    Probe,
    ProbeResult,
    not_listening,
    probe_target,
    tcp_probe,
)
from tests.fake_ha import FakeHA

WALL0 = 1_700_000_000.0
ENGINE_LOGGER = "custom_components.ha_ingestion.client.engine"


class FakeTime:
    """Injectable clock, wall clock and sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.limit: int | None = None  # sleeps past this many block until allow()
        self.waiting = False
        self.on_sleep: Callable[[float], None] | None = None
        self._gate = asyncio.Event()

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if self.on_sleep is not None:
            self.on_sleep(delay)
        self.now += delay
        await asyncio.sleep(0)
        while self.limit is not None and len(self.sleeps) > self.limit:
            gate = self._gate
            self.waiting = True
            try:
                await gate.wait()
            finally:
                self.waiting = False

    def allow(self, n: int = 1) -> None:
        """Let `n` more sleeps through (including one blocked now)."""
        assert self.limit is not None
        self.limit += n
        self._gate.set()
        self._gate = asyncio.Event()

    def blocked_at(self, n: int) -> bool:
        """Sleep number `n` is the one blocked now."""
        return self.waiting and len(self.sleeps) == n


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll until `predicate()` holds; bounded."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


type MakeEngine = Callable[..., LinkEngine]


@pytest.fixture
async def http() -> AsyncGenerator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_engine(
    http: aiohttp.ClientSession, fake_ha: FakeHA, fake_time: FakeTime
) -> AsyncGenerator[MakeEngine]:
    """Build engines on fake time (closed after the test).

    Defaults: no jitter, base 1 s, cap 60 s, a breaker that does not get in the way, no readiness
    probes (the tests of the probing policy turn them on with an injected probe).
    """
    engines: list[LinkEngine] = []

    def make(
        *,
        backoff: BackoffConfig | None = None,
        breaker: BreakerConfig | None = None,
        max_attempts: int = 0,
        stability_window: float = 30.0,
        error_history_size: int = 50,
        rng: random.Random | None = None,
        probe_interval: float = 0.0,
        reconnect_spread: float = 8.0,
        probe: Probe | None = None,
        **connection: Any,
    ) -> LinkEngine:
        values: dict[str, Any] = {"url": fake_ha.url, "token": "good-token"} | connection
        config = EngineConfig(
            connection=ConnectionConfig(**values),
            backoff=backoff
            or BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=False),
            breaker=breaker or BreakerConfig(failure_threshold=1000, recovery_timeout=60.0),
            max_attempts=max_attempts,
            stability_window=stability_window,
            error_history_size=error_history_size,
            probe_interval=probe_interval,
            reconnect_spread=reconnect_spread,
        )
        engine = LinkEngine(
            http,
            config,
            rng=rng,
            clock=fake_time.clock,
            wall=fake_time.wall,
            sleep=fake_time.sleep,
            **({} if probe is None else {"probe": probe}),
        )
        engines.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in engines:
            await engine.close()


def record_states(engine: LinkEngine) -> list[LinkSnapshot]:
    snapshots: list[LinkSnapshot] = []
    engine.add_listener(snapshots.append)
    return snapshots


def states_of(snapshots: list[LinkSnapshot]) -> list[LinkState]:
    """Distinct consecutive states, in order."""
    out: list[LinkState] = []
    for snap in snapshots:
        if not out or out[-1] is not snap.state:
            out.append(snap.state)
    return out


async def connected(engine: LinkEngine) -> None:
    await wait_for(lambda: engine.state is LinkState.CONNECTED)


def engine_tasks() -> list[asyncio.Task[Any]]:
    """Tasks started by the engine (or its sleeps) still alive."""
    alive = []
    for task in asyncio.all_tasks():
        if task.done() or task is asyncio.current_task():
            continue
        qualname = getattr(task.get_coro(), "__qualname__", "")
        if task.get_name().startswith("ha_ingestion") or qualname in (
            "FakeTime.sleep",
            "Event.wait",
            "sleep",
        ):
            alive.append(task)
    return alive


# ---------------------------------------------------------------------------- connected


async def test_connects_subscribes_and_counts(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.expected_subscriptions = 2
    sup = make_engine(event_types=("state_changed", "call_service"))
    snapshots = record_states(sup)
    events: list[dict[str, Any]] = []
    sup.add_event_listener(events.append)
    await sup.start()
    await sup.start()  # idempotent
    await connected(sup)
    await fake_ha.wait_for_connections(1)
    assert len(fake_ha.connections) == 1
    assert states_of(snapshots) == [LinkState.CONNECTING, LinkState.CONNECTED]

    snap = sup.snapshot()
    assert snap.connected
    assert snap.subscriptions_confirmed
    assert [(s.event_type, s.confirmed) for s in snap.subscriptions] == [
        ("state_changed", True),
        ("call_service", True),
    ]
    assert [s.subscription_id for s in snap.subscriptions] == [4, 5]
    assert snap.attempts_total == 1
    assert snap.successful_connections == 1
    assert snap.failed_connections == 0
    assert snap.reconnect_count == 0
    assert snap.reconnect_success_rate == 1.0
    assert snap.average_reconnect_time is None
    assert snap.uptime_ratio is None  # no (fake) time has passed yet
    assert snap.last_connected == datetime.fromtimestamp(WALL0 + 1000.0, UTC)
    assert snap.current_backoff is None
    assert snap.next_attempt is None
    assert snap.breaker.state is BreakerState.CLOSED
    assert snap.last_error is None
    assert snap.remote is not None
    assert snap.remote.location_name == "Remote Home"
    assert snap.remote.user_id == "remote-user-1"
    assert snap.max_attempts == 0

    fake_time.now += 10
    await fake_ha.fire_state_changed("light.a", "on")
    await fake_ha.fire_state_changed("light.a", "off")
    await fake_ha.fire_event("call_service", {"domain": "light"})
    await fake_ha.fire_event("unsubscribed_type", {})
    await wait_for(lambda: len(events) == 3)
    snap = sup.snapshot()
    assert snap.events_received == 3
    assert snap.events_by_type == {"state_changed": 2, "call_service": 1}
    assert snap.last_event_time == datetime.fromtimestamp(WALL0 + 1010.0, UTC)
    assert snap.uptime_ratio == 1.0

    assert (await sup.command({"type": "get_config"}))["location_name"] == "Remote Home"


async def test_command_when_not_connected(make_engine: MakeEngine) -> None:
    sup = make_engine()
    with pytest.raises(HaConnectionClosedError):
        await sup.command({"type": "get_config"})


async def test_ping_rtt_reported(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_time.limit = 0
    sup = make_engine(heartbeat_interval=0.05)
    await sup.start()
    await connected(sup)
    await wait_for(lambda: sup.snapshot().last_ping_rtt is not None)
    # Measured on the injected (fake) clock, which does not move here.
    assert sup.snapshot().last_ping_rtt == 0.0
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(1))
    assert sup.snapshot().last_ping_rtt is None  # unknown while disconnected: a dead link's
    fake_time.allow()  # last round trip says nothing about now
    await connected(sup)
    assert sup.snapshot().last_ping_rtt == 0.0  # the last one is shown again once connected


# ---------------------------------------------------------------------------- attempt faults


async def _go_down(fake: FakeHA) -> None:
    await fake.go_down()


async def _go_up(fake: FakeHA) -> None:
    await fake.go_up()


def _set(attr: str, value: Any, normal: Any) -> tuple[Any, Any]:
    async def fault(fake: FakeHA) -> None:
        setattr(fake, attr, value)

    async def repair(fake: FakeHA) -> None:
        setattr(fake, attr, normal)

    return fault, repair


ATTEMPT_FAULTS = {
    "refused": ((_go_down, _go_up), ErrorCategory.NETWORK, "HaConnectionRefusedError"),
    "tcp_closed": (_set("refuse", True, False), ErrorCategory.NETWORK, "HaConnectionError"),
    "hang_before_upgrade": (
        _set("hang_before_upgrade", True, False),
        ErrorCategory.TIMEOUT,
        "HaTimeoutError",
    ),
    "hang_after_upgrade": (
        _set("hang_after_upgrade", True, False),
        ErrorCategory.TIMEOUT,
        "HaTimeoutError",
    ),
    "http_503": (
        _set("http_status", 503, None),
        ErrorCategory.SERVICE,
        "HaServiceUnavailableError",
    ),
    "http_404": (_set("http_status", 404, None), ErrorCategory.PROTOCOL, "HaNotHomeAssistantError"),
}


@pytest.mark.parametrize("fault", list(ATTEMPT_FAULTS))
async def test_attempt_fault_retried_with_backoff(
    fault: str, fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    (inject, repair), category, error_type = ATTEMPT_FAULTS[fault]
    fake_ha.expected_subscriptions = 2
    await inject(fake_ha)
    fake_time.limit = 1  # first retry goes through, the second waits
    sup = make_engine(event_types=("state_changed", "call_service"), connect_timeout=0.3)
    snapshots = record_states(sup)
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(2))

    snap = sup.snapshot()
    assert snap.state is LinkState.RECONNECTING
    assert snap.last_error is not None
    assert snap.last_error.category is category
    assert snap.last_error.type == error_type
    assert snap.attempts_total == 2
    assert snap.failed_connections == 2
    assert snap.successful_connections == 0
    assert snap.consecutive_failures == 2
    assert snap.last_failed is not None
    assert snap.reconnect_success_rate == 0.0
    assert not snap.subscriptions_confirmed
    # Next action: another attempt after a growing delay.
    assert fake_time.sleeps == [1.0, 2.0]
    assert snap.current_backoff == 2.0
    assert snap.next_attempt == datetime.fromtimestamp(WALL0 + 1000.0 + 1.0, UTC) + timedelta(
        seconds=2
    )
    assert LinkState.FAILED not in states_of(snapshots)

    await repair(fake_ha)
    fake_time.allow()
    await connected(sup)
    snap = sup.snapshot()
    assert snap.attempts_total == 3
    assert snap.successful_connections == 1
    assert snap.reconnect_count == 0  # it never was connected before
    assert snap.consecutive_failures == 0
    assert snap.reconnect_success_rate == pytest.approx(1 / 3)
    assert snap.subscriptions_confirmed
    assert len(snap.errors) == 2


@pytest.mark.parametrize("how", ["auth_invalid", "http_401"])
async def test_authentication_failure_is_final(
    how: str,
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if how == "auth_invalid":
        fake_ha.token = "another-token"
    else:
        fake_ha.http_status = 401
    sup = make_engine()
    snapshots = record_states(sup)
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.FAILED)

    snap = sup.snapshot()
    assert snapshots[-1].state is LinkState.FAILED  # the owner was told
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    assert snap.last_error.type == "HaAuthenticationError"
    assert snap.attempts_total == 1
    assert snap.failed_connections == 1
    assert snap.current_backoff is None
    assert snap.next_attempt is None
    assert "not retrying until the token is replaced" in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == ENGINE_LOGGER)

    # No further attempt, however long we wait.
    accepted = fake_ha.tcp_accept_count
    for _ in range(20):
        fake_time.now += 3600
        await asyncio.sleep(0.005)
    assert sup.snapshot().attempts_total == 1
    assert fake_ha.tcp_accept_count == accepted
    assert fake_time.sleeps == []
    assert sup.running

    # The owner replaces the token: stop, reconfigure, start.
    await sup.close()
    assert sup.state is LinkState.DISCONNECTED
    fake_ha.token = "good-token"
    fake_ha.http_status = None
    sup.config = EngineConfig(
        connection=ConnectionConfig(url=fake_ha.url, token="good-token"),
        backoff=sup.config.backoff,
    )
    await sup.start()
    await connected(sup)
    assert sup.snapshot().errors[0].category is ErrorCategory.AUTHENTICATION  # history kept
    with pytest.raises(RuntimeError):
        sup.config = sup.config  # not while running


async def test_max_attempts_then_reconnect(
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_ha.refuse = True
    sup = make_engine(max_attempts=3)
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.FAILED)
    snap = sup.snapshot()
    assert snap.attempts_total == 3
    assert snap.failed_connections == 3
    assert snap.max_attempts == 3
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.NETWORK
    assert fake_time.sleeps == [1.0, 2.0]  # two pauses between three attempts
    assert "Giving up" in caplog.text

    for _ in range(20):
        fake_time.now += 3600
        await asyncio.sleep(0.005)
    assert sup.snapshot().attempts_total == 3

    fake_ha.refuse = False
    await sup.reconnect()
    await connected(sup)
    snap = sup.snapshot()
    assert snap.attempts_total == 4
    assert fake_time.sleeps == [1.0, 2.0]  # immediate: no delay before the attempt
    assert snap.breaker.consecutive_failures == 0


async def test_reconnect_when_not_running_starts(fake_ha: FakeHA, make_engine: MakeEngine) -> None:
    sup = make_engine()
    await sup.reconnect()
    await connected(sup)
    assert sup.running


async def test_reconnect_while_connected_reconnects_at_once(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    sup = make_engine()
    await sup.start()
    await connected(sup)
    await sup.reconnect()
    await fake_ha.wait_for_connections(2)
    await connected(sup)
    snap = sup.snapshot()
    assert snap.reconnect_count == 1
    assert fake_time.sleeps == []
    assert fake_ha.connections[0].closed
    assert [c.subscriptions for c in fake_ha.connections] == [["state_changed"]] * 2


async def test_reconnect_resets_open_breaker(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.refuse = True
    fake_time.limit = 1
    sup = make_engine(breaker=BreakerConfig(failure_threshold=2, recovery_timeout=1000.0))
    await sup.start()
    # failure 1 -> sleep 1 ; failure 2 opens the breaker -> sleep 2 (blocked)
    await wait_for(lambda: fake_time.blocked_at(2))
    assert sup.snapshot().breaker.state is BreakerState.OPEN
    assert sup.snapshot().attempts_total == 2

    fake_ha.refuse = False
    await sup.reconnect()
    await connected(sup)
    snap = sup.snapshot()
    assert snap.attempts_total == 3
    assert snap.breaker.state is BreakerState.CLOSED
    assert snap.breaker.consecutive_failures == 0
    assert len(fake_time.sleeps) == 2  # no recovery wait after reconnect()


async def test_breaker_opens_waits_then_one_probe(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.refuse = True
    sup = make_engine(breaker=BreakerConfig(failure_threshold=3, recovery_timeout=30.0))
    trace: list[tuple[float, int, BreakerState]] = []
    fake_time.on_sleep = lambda d: trace.append(
        (d, sup.snapshot().attempts_total, sup.snapshot().breaker.state)
    )
    fake_time.limit = 5
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(6))

    assert fake_time.sleeps == [1.0, 2.0, 4.0, 26.0, 8.0, 22.0]
    assert trace == [
        (1.0, 1, BreakerState.CLOSED),
        (2.0, 2, BreakerState.CLOSED),
        (4.0, 3, BreakerState.OPEN),  # the third failure opened it
        (26.0, 3, BreakerState.OPEN),  # no attempt: wait out the rest of recovery_timeout
        (8.0, 4, BreakerState.OPEN),  # exactly one probe, it failed: open again
        (22.0, 4, BreakerState.OPEN),
    ]
    assert sum(fake_time.sleeps[2:4]) == 30.0
    snap = sup.snapshot()
    assert snap.breaker.times_opened == 2
    assert snap.breaker.consecutive_failures == 4
    assert snap.breaker.opened_at is not None
    assert snap.breaker.retry_at is not None
    assert snap.breaker.retry_at - snap.breaker.opened_at == timedelta(seconds=30)
    assert snap.state is LinkState.RECONNECTING

    fake_ha.refuse = False  # the probe will succeed
    fake_time.allow()
    await connected(sup)
    snap = sup.snapshot()
    assert snap.attempts_total == 5
    assert snap.breaker.state is BreakerState.CLOSED
    assert snap.breaker.opened_at is None


async def test_close_during_probe_then_start_again(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    """A probe abandoned by close() must not leave the breaker waiting for it forever."""
    fake_ha.refuse = True
    sup = make_engine(
        breaker=BreakerConfig(failure_threshold=1, recovery_timeout=10.0), connect_timeout=5
    )
    fake_time.limit = 1
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(2))  # opened; waiting for the recovery
    fake_ha.refuse = False
    fake_ha.hang_before_upgrade = True
    fake_time.allow()
    await wait_for(lambda: fake_ha.http_requests == 1)  # the probe is in flight
    await sup.close()
    assert sup.state is LinkState.DISCONNECTED

    fake_ha.hang_before_upgrade = False
    sleeps_before = len(fake_time.sleeps)
    fake_time.limit = sleeps_before + 5  # a busy loop would block here instead of spinning
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.CONNECTED or fake_time.waiting)
    assert sup.state is LinkState.CONNECTED
    assert fake_time.sleeps[sleeps_before:] == []
    assert sup.snapshot().breaker.state is BreakerState.CLOSED


# ---------------------------------------------------------------------------- link faults


async def _drop_after_events(fake: FakeHA) -> None:
    fake.drop_after_events = 2
    for n in range(3):
        await fake.fire_state_changed("sensor.x", str(n))


async def _freeze(fake: FakeHA) -> None:
    fake.frozen = True


async def _malformed(fake: FakeHA) -> None:
    await fake.send_raw("{this is not json")


async def _oversize(fake: FakeHA) -> None:
    await fake.send_raw('{"type": "event", "pad": "' + "x" * 4096 + '"}')


async def _binary(fake: FakeHA) -> None:
    await fake.send_bytes(b"\x00\x01\x02")


def _close_with(code: int) -> Callable[[FakeHA], Awaitable[None]]:
    async def close(fake: FakeHA) -> None:
        await fake.close_all(code, b"server says bye")

    return close


async def _repair(fake: FakeHA) -> None:
    fake.frozen = False
    fake.drop_after_events = None
    await fake.go_up()


LINK_FAULTS: dict[str, tuple[Callable[[FakeHA], Awaitable[None]], ErrorCategory, str]] = {
    "drop_after_events": (_drop_after_events, ErrorCategory.NETWORK, "HaRemoteGoingAwayError"),
    "frozen": (_freeze, ErrorCategory.TIMEOUT, "HaHeartbeatTimeoutError"),
    "malformed_json": (_malformed, ErrorCategory.PROTOCOL, "HaProtocolError"),
    "oversize_frame": (_oversize, ErrorCategory.PROTOCOL, "HaMessageTooBigError"),
    "binary_frame": (_binary, ErrorCategory.PROTOCOL, "HaProtocolError"),
    "close_4000": (_close_with(4000), ErrorCategory.PROTOCOL, "HaProtocolError"),
    "close_1011": (_close_with(1011), ErrorCategory.PROTOCOL, "HaProtocolError"),
    "close_1000": (_close_with(1000), ErrorCategory.NETWORK, "HaRemoteGoingAwayError"),
    "close_1001": (_close_with(1001), ErrorCategory.NETWORK, "HaRemoteGoingAwayError"),
    "host_down": (_go_down, ErrorCategory.NETWORK, "HaConnectionClosedError"),
}


@pytest.mark.parametrize("fault", list(LINK_FAULTS))
async def test_link_fault_reconnects(
    fault: str, fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    inject, category, error_type = LINK_FAULTS[fault]
    fake_time.limit = 0  # the first delay waits for the test
    sup = make_engine(heartbeat_interval=0.2, heartbeat_timeout=0.3, max_msg_size=1024)
    snapshots = record_states(sup)
    await sup.start()
    await connected(sup)
    fake_time.now += 100  # a stable link
    await inject(fake_ha)
    await wait_for(lambda: fake_time.blocked_at(1))

    snap = sup.snapshot()
    assert snap.state is LinkState.RECONNECTING
    assert snap.last_error is not None
    assert snap.last_error.category is category
    assert snap.last_error.type == error_type
    assert snap.last_disconnected == datetime.fromtimestamp(WALL0 + 1100.0, UTC)
    assert not snap.subscriptions_confirmed
    assert snap.failed_connections == 0  # the link failed, not an attempt
    assert snap.current_backoff == 1.0  # next action: reconnect after the first delay
    assert states_of(snapshots) == [
        LinkState.CONNECTING,
        LinkState.CONNECTED,
        LinkState.RECONNECTING,
    ]
    if fault == "drop_after_events":
        assert snap.events_received == 2

    await _repair(fake_ha)
    fake_time.allow()
    await connected(sup)
    await fake_ha.wait_for_connections(2)
    snap = sup.snapshot()
    assert snap.reconnect_count == 1
    assert snap.successful_connections == 2
    assert snap.average_reconnect_time == 1.0  # lost, 1 s of (fake) backoff, back
    assert snap.uptime_ratio == pytest.approx(100 / 101)
    assert snap.subscriptions_confirmed


async def test_unknown_message_type_keeps_link(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    sup = make_engine()
    await sup.start()
    await connected(sup)
    await fake_ha.send_raw('{"type": "something_new", "id": 99}')
    await wait_for(lambda: sup.snapshot().last_error is not None)
    snap = sup.snapshot()
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.PROTOCOL
    assert "something_new" in snap.last_error.message
    assert snap.state is LinkState.CONNECTED
    assert snap.reconnect_count == 0
    assert fake_time.sleeps == []
    assert len(fake_ha.open_connections) == 1


async def test_flapping_delays_grow_to_cap(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    """Auth succeeds, then the link drops at once, 20 times: the backoff must keep growing."""
    fake_ha.drop_after_auth = True
    fake_time.limit = 19
    sup = make_engine(stability_window=30.0)
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(20))
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] + [60.0] * 14
    snap = sup.snapshot()
    assert snap.successful_connections == 20
    assert snap.reconnect_count == 19
    assert snap.failed_connections == 0
    assert snap.breaker.times_opened == 0
    assert fake_ha.auth_ok_count == 20
    assert all(c.subscriptions == ["state_changed"] for c in fake_ha.connections)


async def test_flapping_with_jitter_stays_within_growing_windows(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.drop_after_auth = True
    fake_time.limit = 19
    sup = make_engine(
        backoff=BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=True),
        rng=random.Random(2024),
    )
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(20))
    windows = [min(60.0, 2.0**n) for n in range(20)]
    assert all(0.0 <= d <= w for d, w in zip(fake_time.sleeps, windows, strict=True))
    # The later (capped) windows are used: far more waiting than at the start.
    assert sum(fake_time.sleeps[10:]) > 10 * sum(fake_time.sleeps[:3])


async def test_stable_link_resets_backoff(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.drop_after_auth = True
    fake_time.limit = 2
    sup = make_engine(stability_window=30.0)
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(3))
    assert fake_time.sleeps == [1.0, 2.0, 4.0]

    fake_ha.drop_after_auth = False
    fake_time.allow()
    await connected(sup)
    fake_time.now += 5  # up, but shorter than the stability window
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(4))
    assert fake_time.sleeps[-1] == 8.0  # not reset

    fake_time.allow()
    await connected(sup)
    fake_time.now += 31  # stayed up for the stability window
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(5))
    assert fake_time.sleeps[-1] == 1.0  # reset to the first delay


async def test_resubscribes_each_type_once_per_connection(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    types = ("state_changed", "call_service", "automation_triggered")
    fake_ha.expected_subscriptions = len(types)
    fake_time.limit = 1
    sup = make_engine(event_types=types)
    snapshots = record_states(sup)
    await sup.start()
    await connected(sup)
    await fake_ha.close_all(1000)
    await fake_ha.wait_for_connections(2)
    await connected(sup)
    await fake_ha.go_down()
    await wait_for(lambda: fake_time.blocked_at(2))
    await fake_ha.go_up()
    fake_time.allow()
    await fake_ha.wait_for_connections(3)
    await connected(sup)

    assert [c.subscriptions for c in fake_ha.connections] == [list(types)] * 3
    for conn in fake_ha.connections:
        assert list(conn.sub_ids.values()) == list(types)
    assert fake_time.sleeps == [1.0, 2.0]
    assert sup.snapshot().subscriptions_confirmed
    # While reconnecting, nothing was reported as confirmed.
    assert all(
        not s.subscriptions_confirmed for s in snapshots if s.state is LinkState.RECONNECTING
    )
    for event_type in types:
        await fake_ha.fire_event(event_type, {})
    await wait_for(lambda: sup.snapshot().events_received == 3)
    assert sup.snapshot().events_by_type == dict.fromkeys(types, 1)


async def test_uptime_and_reconnect_metrics(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_time.limit = 0
    sup = make_engine()
    await sup.start()
    await connected(sup)
    fake_time.now += 10
    assert sup.snapshot().uptime_ratio == 1.0
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(1))  # 1 s of backoff, on the fake clock
    assert sup.snapshot().uptime_ratio == pytest.approx(10 / 11)
    fake_time.allow()
    await connected(sup)
    fake_time.now += 9
    snap = sup.snapshot()
    assert snap.uptime_ratio == pytest.approx(19 / 20)
    assert snap.average_reconnect_time == 1.0
    assert snap.reconnect_count == 1
    assert snap.reconnect_success_rate == 1.0
    assert snap.last_disconnected == datetime.fromtimestamp(WALL0 + 1010.0, UTC)
    assert snap.last_connected == datetime.fromtimestamp(WALL0 + 1011.0, UTC)


async def test_last_sign_of_life_and_the_outage_logged_at_the_return(
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session's silence placed on the engine's wall clock: the last frame received, live
    and at the loss; at the return the log says the outage from it, and the detection."""
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    fake_time.limit = 0
    sup = make_engine()
    await sup.start()
    await connected(sup)
    monkeypatch.setattr(HaWebSocketSession, "silence", property(lambda _: 40.0))
    assert sup.snapshot().last_seen == datetime.fromtimestamp(WALL0 + 1000.0 - 40.0, UTC)
    fake_time.now += 10
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(1))  # 1 s of backoff, on the fake clock
    down = sup.snapshot()
    assert down.last_disconnected == datetime.fromtimestamp(WALL0 + 1010.0, UTC)
    assert down.last_seen == datetime.fromtimestamp(WALL0 + 1010.0 - 40.0, UTC)
    fake_time.allow()
    await connected(sup)
    seen = datetime.fromtimestamp(WALL0 + 970.0, UTC).isoformat(timespec="milliseconds")
    back = datetime.fromtimestamp(WALL0 + 1011.0, UTC).isoformat(timespec="milliseconds")
    assert (
        f"Link to {fake_ha.location_name} restored: outage 41.0 s (from the last message "
        f"received at {seen} to the link's return at {back}), detection 40.0 s"
    ) in caplog.messages
    await sup.close()  # a stop is a loss too: the last frame before it
    assert sup.snapshot().last_seen == datetime.fromtimestamp(WALL0 + 1011.0 - 40.0, UTC)


# ---------------------------------------------------------------------------- history, logs


async def test_error_history_bounded_and_without_token(
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl"
    fake_ha.token = token
    fake_ha.refuse = True
    fake_time.limit = 11
    sup = make_engine(token=token, error_history_size=5)
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(12))
    snap = sup.snapshot()
    assert snap.failed_connections == 12
    assert len(snap.errors) == 5
    assert snap.last_error == snap.errors[-1]

    # Now the remote rejects the token and quotes it back in its message.
    fake_ha.refuse = False
    fake_ha.token = "something-else"
    fake_ha.auth_invalid_message = f"Invalid access token {token}"
    fake_time.allow()
    await wait_for(lambda: sup.state is LinkState.FAILED)
    snap = sup.snapshot()
    assert len(snap.errors) == 5
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    assert "REDACTED" in snap.last_error.message
    assert all(token not in e.message for e in snap.errors)
    assert token not in repr(snap)
    assert token not in caplog.text


async def test_repeated_failures_logged_once_at_info(
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    fake_ha.refuse = True
    fake_time.limit = 4
    sup = make_engine()
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(5))

    def cannot_reach() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == ENGINE_LOGGER and r.getMessage().startswith("Cannot reach")
        ]

    levels = [r.levelno for r in cannot_reach()]
    assert levels == [logging.INFO] + [logging.DEBUG] * 4

    fake_ha.refuse = False
    fake_ha.http_status = 503  # a different failure is news
    fake_time.allow()
    await wait_for(lambda: fake_time.blocked_at(6))
    assert [r.levelno for r in cannot_reach()][-1] == logging.INFO

    fake_ha.http_status = None
    fake_time.allow(10)
    await connected(sup)
    logged = len(cannot_reach())
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(16))  # the loss's delay, then 9 failures
    # After a working link the same failure is news again: INFO once, then DEBUG.
    levels = [r.levelno for r in cannot_reach()[logged:]]
    assert levels == [logging.INFO] + [logging.DEBUG] * (len(levels) - 1)
    assert len(levels) == 9


# ---------------------------------------------------------------------------- control


@pytest.mark.parametrize("where", ["connected", "backoff", "connecting", "failed"])
async def test_close_leaves_no_task(
    where: str, fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    before = set(engine_tasks())
    sup = make_engine(connect_timeout=5)
    snapshots = record_states(sup)
    if where == "backoff":
        fake_ha.refuse = True
        fake_time.limit = 0
    elif where == "connecting":
        fake_ha.hang_before_upgrade = True
    elif where == "failed":
        fake_ha.token = "other"
    await sup.start()
    if where == "connected":
        await connected(sup)
    elif where == "backoff":
        await wait_for(lambda: fake_time.blocked_at(1))
    elif where == "connecting":
        await wait_for(lambda: fake_ha.http_requests == 1)
    else:
        await wait_for(lambda: sup.state is LinkState.FAILED)

    await sup.close()
    assert not sup.running
    assert sup.state is LinkState.DISCONNECTED
    assert snapshots[-1].state is LinkState.DISCONNECTED
    assert set(engine_tasks()) - before == set()
    snap = sup.snapshot()
    assert not snap.subscriptions_confirmed
    assert snap.current_backoff is None
    await sup.close()  # idempotent


async def test_listeners(
    fake_ha: FakeHA, make_engine: MakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    sup = make_engine()
    seen: list[LinkState] = []
    removed: list[LinkState] = []

    def broken(snapshot: LinkSnapshot) -> None:
        raise RuntimeError("listener bug")

    sup.add_listener(broken)
    sup.add_listener(lambda s: seen.append(s.state))
    unsubscribe = sup.add_listener(lambda s: removed.append(s.state))
    unsubscribe()
    events: list[dict[str, Any]] = []
    remove_events = sup.add_event_listener(events.append)
    remove_events()
    await sup.start()
    await connected(sup)
    assert seen[-1] is LinkState.CONNECTED  # a broken listener does not stop the others
    assert removed == []
    assert "Error in link state listener" in caplog.text
    await fake_ha.fire_event("state_changed", {})
    await wait_for(lambda: sup.snapshot().events_received == 1)
    assert events == []


# ---------------------------------------------------------------------------- reconnect policy
# Readiness probes while waiting, the jittered attempt once the remote listens again, and how the
# breaker, max_attempts and the kind of failure (refused / orderly close / silence) shape it.


class ScriptedRandom(random.Random):
    """`uniform(a, b)` returns a + f * (b - a) for the scripted fractions f, in order (then 0.5)."""

    def __init__(self, *fractions: float) -> None:
        super().__init__(0)
        self.fractions = list(fractions)
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        f = self.fractions.pop(0) if self.fractions else 0.5
        return a + f * (b - a)


class Prober:
    """The real TCP probe, recording when (fake time) it ran; `before[n]` runs before probe n."""

    def __init__(self, fake_time: FakeTime) -> None:
        self.fake_time = fake_time
        self.times: list[float] = []
        self.results: list[ProbeResult] = []
        self.before: dict[int, Callable[[], Awaitable[None]]] = {}

    async def __call__(self, host: str, port: int, limit: float) -> ProbeResult:
        n = len(self.times) + 1
        if (action := self.before.get(n)) is not None:
            await action()
        self.times.append(self.fake_time.now)
        result = await tcp_probe(host, port, limit)
        self.results.append(result)
        return result


def schedules(snapshots: list[LinkSnapshot]) -> list[tuple[WaitReason, float | None, BreakerState]]:
    """Distinct consecutive (why waiting, delay, breaker) while waiting, in order."""
    out: list[tuple[WaitReason, float | None, BreakerState]] = []
    for snap in snapshots:
        if snap.waiting_for is None:
            continue
        item = (snap.waiting_for, snap.current_backoff, snap.breaker.state)
        if not out or out[-1] != item:
            out.append(item)
    return out


async def test_probes_find_the_restarted_remote_and_attempt_after_a_short_jitter(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    await fake_ha.go_down()  # restarting: nothing listens
    prober = Prober(fake_time)
    prober.before[6] = fake_ha.go_up  # it listens again just before the 6th probe
    rng = ScriptedRandom(1.0, 0.25, 1.0, 0.25, 1.0, 0.25, 0.25)
    sup = make_engine(
        backoff=BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=True),
        breaker=BreakerConfig(failure_threshold=2, recovery_timeout=60.0),
        probe_interval=1.0,
        reconnect_spread=8.0,
        rng=rng,
        probe=prober,
    )
    snapshots = record_states(sup)
    await sup.start()
    await connected(sup)

    # Attempts at 1000, 1001, 1003 (backoff windows 1, 2, 4 with the scripted jitter), all refused;
    # a probe every second from a random phase (0.25 s) in every wait, and one more at the end of
    # a wait (1001, 1003: still down, so the attempt follows).
    assert prober.times == [1000.25, 1001.0, 1001.25, 1002.25, 1003.0, 1003.25]
    assert prober.results == [ProbeResult.DOWN] * 5 + [ProbeResult.OPEN]
    # Listening again at 1003.25: the attempt after U(0, 8) = 2 s, not at the end of the 4 s wait.
    assert fake_time.sleeps == [0.25, 0.75, 0.25, 1.0, 0.75, 0.25, 2.0]
    assert fake_time.now == 1005.25
    assert rng.calls == [(0, 1), (0, 1), (0, 2), (0, 1), (0, 4), (0, 1), (0, 8)]
    assert schedules(snapshots) == [
        (WaitReason.BACKOFF, 1.0, BreakerState.CLOSED),
        (WaitReason.BACKOFF, 2.0, BreakerState.CLOSED),
        (WaitReason.BACKOFF, 4.0, BreakerState.CLOSED),
        (WaitReason.REMOTE_BACK, 2.0, BreakerState.CLOSED),
    ]
    back = next(s for s in snapshots if s.waiting_for is WaitReason.REMOTE_BACK)
    assert back.next_attempt == datetime.fromtimestamp(WALL0 + 1003.25 + 2.0, UTC)
    snap = sup.snapshot()
    # Three refused connects cost the remote nothing: the breaker (threshold 2) never opened.
    assert snap.breaker.times_opened == 0
    assert snap.attempts_total == 4
    assert snap.failed_connections == 3
    assert snap.probes_total == 6
    assert snap.last_probe is ProbeResult.OPEN
    assert snap.waiting_for is None
    assert all(e.type == "HaConnectionRefusedError" for e in snap.errors)


async def test_once_back_every_attempt_draws_from_the_spread(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    await fake_ha.go_down()
    prober = Prober(fake_time)
    prober.before[2] = fake_ha.go_up
    # backoff 1 s window drawn fully; probe phase 0; back delay U(0, 8) = 8 s: later than the
    # planned attempt (1001), yet that is the one made: every client draws from one window.
    rng = ScriptedRandom(1.0, 0.0, 1.0)
    sup = make_engine(
        backoff=BackoffConfig(base=1.0, max_delay=60.0, jitter=True),
        probe_interval=0.4,
        rng=rng,
        probe=prober,
    )
    await sup.start()
    await connected(sup)
    assert prober.times == [1000.0, 1000.4]
    assert fake_time.sleeps == pytest.approx([0.4, 8.0])  # and no probe after "open"
    assert sup.snapshot().attempts_total == 2


async def test_jitter_off_attempts_as_soon_as_the_remote_is_back(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    await fake_ha.go_down()
    prober = Prober(fake_time)
    prober.before[2] = fake_ha.go_up
    sup = make_engine(
        backoff=BackoffConfig(base=30.0, max_delay=60.0, jitter=False),
        probe_interval=1.0,
        reconnect_spread=3.0,
        rng=ScriptedRandom(0.5),  # only the probe phase is random
        probe=prober,
    )
    await sup.start()
    await connected(sup)
    assert prober.times == [1000.5, 1001.5]
    assert fake_time.sleeps == [0.5, 1.0]  # not the 30 s window, and no spread: no jitter


async def test_open_breaker_goes_half_open_when_the_remote_restarted(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    # Accepted and dropped (a remote in trouble, port open): real failures, they open the breaker.
    fake_ha.refuse = True

    async def restart_ends() -> None:
        fake_ha.refuse = False
        await fake_ha.go_up()

    prober = Prober(fake_time)
    prober.before[3] = fake_ha.go_down  # the remote restarts
    prober.before[5] = restart_ends
    sup = make_engine(  # no jitter: the attempt comes at once after "open"
        breaker=BreakerConfig(failure_threshold=2, recovery_timeout=60.0),
        probe_interval=1.0,
        reconnect_spread=4.0,
        rng=ScriptedRandom(0.0, 0.0, 0.0),
        probe=prober,
    )
    snapshots = record_states(sup)
    await sup.start()
    await connected(sup)

    # 1000: attempt 1 fails; 1001: attempt 2 fails and opens the breaker (retry at 1061). A reset
    # connection keeps the port watched: open (1000, 1001: the next probe 2 s later, an open port
    # is probed less and less often), down at 1003 and 1004 (the restart), open again at 1005:
    # half-open at once, the one probe attempt right away (no jitter).
    assert prober.times == [1000.0, 1001.0, 1003.0, 1004.0, 1005.0]
    assert prober.results == [ProbeResult.OPEN] * 2 + [ProbeResult.DOWN] * 2 + [ProbeResult.OPEN]
    assert fake_time.sleeps == [1.0, 2.0, 1.0, 1.0]
    assert schedules(snapshots) == [
        (WaitReason.BACKOFF, 1.0, BreakerState.CLOSED),
        (WaitReason.BACKOFF, 2.0, BreakerState.OPEN),
        (WaitReason.BREAKER, 58.0, BreakerState.OPEN),
        (WaitReason.REMOTE_BACK, 0.0, BreakerState.HALF_OPEN),
    ]
    snap = sup.snapshot()
    assert snap.breaker.times_opened == 1
    assert snap.breaker.state is BreakerState.CLOSED
    assert snap.attempts_total == 3
    assert fake_time.now == 1005.0  # not 1061, the end of the recovery time


async def test_failed_half_open_attempt_reopens_for_the_full_recovery(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.refuse = True

    async def restart() -> None:  # down, and back up still dropping connections
        await fake_ha.go_down()

    prober = Prober(fake_time)
    prober.before[1] = restart
    prober.before[2] = fake_ha.go_up
    fake_time.limit = 7
    sup = make_engine(
        backoff=BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=True),
        breaker=BreakerConfig(failure_threshold=1, recovery_timeout=60.0),
        probe_interval=1.0,
        reconnect_spread=8.0,
        # backoff 1 s, probe phase 0, back after 8 s, backoff 2 s, phase 0, phase 0.5 s
        rng=ScriptedRandom(1.0, 0.0, 1.0, 1.0, 0.0, 0.5),
        probe=prober,
    )
    snapshots = record_states(sup)
    await sup.start()
    await wait_for(lambda: fake_time.waiting)
    snap = sup.snapshot()
    # 1000: attempt 1 fails, the breaker (threshold 1) opens; the remote restarts: down at 1000,
    # open at 1001 (the look at the end of the 1 s wait): half-open at once, the attempt 8 s later
    # fails again at 1009: open again for the full recovery time from then.
    assert snap.attempts_total == 2
    assert snap.breaker.times_opened == 2
    assert snap.breaker.retry_at == datetime.fromtimestamp(WALL0 + 1009.0 + 60.0, UTC)
    assert fake_time.sleeps == [1.0, 8.0, 2.0, 0.5, 4.0, 8.0, 16.0, 29.5]  # 1069: half-open
    assert schedules(snapshots) == [
        (WaitReason.BACKOFF, 1.0, BreakerState.OPEN),
        (WaitReason.REMOTE_BACK, 8.0, BreakerState.HALF_OPEN),
        (WaitReason.BACKOFF, 2.0, BreakerState.OPEN),
        (WaitReason.BREAKER, 58.0, BreakerState.OPEN),
    ]
    # The port keeps answering (the failure came from an open port): probed less and less often.
    assert prober.results[:2] == [ProbeResult.DOWN, ProbeResult.OPEN]
    assert set(prober.results[2:]) == {ProbeResult.OPEN}
    assert prober.times == [1000.0, 1001.0, 1009.0, 1011.5, 1015.5, 1023.5, 1039.5]


async def test_refused_attempts_count_towards_max_attempts(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    await fake_ha.go_down()
    sup = make_engine(
        max_attempts=3,
        breaker=BreakerConfig(failure_threshold=1, recovery_timeout=60.0),
        probe_interval=1.0,
        rng=ScriptedRandom(0.5, 0.5, 0.5),
        probe=Prober(fake_time),
    )
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.FAILED)
    snap = sup.snapshot()
    assert snap.attempts_total == 3
    assert snap.consecutive_failures == 3
    assert snap.breaker.times_opened == 0  # refused: never an attempt against the breaker
    assert snap.breaker.consecutive_failures == 0


@pytest.mark.parametrize(
    ("fault", "probes"),
    [
        ("http_503", False),  # a proxy in front of a restarting remote: its port always answers
        ("hang_before_upgrade", False),  # silence: only the connect timeout tells
        ("refused", True),
    ],
)
async def test_only_a_port_that_may_close_is_probed(
    fault: str,
    probes: bool,
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
) -> None:
    if fault == "http_503":
        fake_ha.http_status = 503
    elif fault == "hang_before_upgrade":
        fake_ha.hang_before_upgrade = True
    else:
        await fake_ha.go_down()
    prober = Prober(fake_time)
    fake_time.limit = 4
    sup = make_engine(probe_interval=1.0, connect_timeout=0.2, probe=prober)
    await sup.start()
    await wait_for(lambda: fake_time.waiting)
    assert bool(prober.times) is probes
    if not probes:
        assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]  # the backoff alone
    await fake_ha.stop()


@pytest.mark.parametrize(
    ("inject", "error_type"),
    [
        ("close_1000", "HaRemoteGoingAwayError"),
        ("close_1001", "HaRemoteGoingAwayError"),
        ("host_down", "HaConnectionClosedError"),
    ],
)
async def test_lost_link_is_watched_from_the_first_wait(
    inject: str,
    error_type: str,
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
) -> None:
    prober = Prober(fake_time)
    sup = make_engine(
        backoff=BackoffConfig(base=10.0, max_delay=60.0, jitter=False),
        probe_interval=1.0,
        reconnect_spread=2.0,
        rng=ScriptedRandom(0.5, 0.5),
        probe=prober,
    )
    await sup.start()
    await connected(sup)
    lost_at = fake_time.now
    if inject == "host_down":
        await fake_ha.go_down()
    else:
        await fake_ha.close_all(int(inject[-4:]))
        await fake_ha.go_down()  # then the remote stops listening: it restarts
    prober.before[3] = fake_ha.go_up
    await wait_for(lambda: sup.snapshot().successful_connections == 2)
    snap = sup.snapshot()
    assert snap.errors[0].type == error_type
    # Probes from 0.5 s after the loss, not after the 10 s backoff; back at once after "open"
    # (no jitter configured here).
    assert [t - lost_at for t in prober.times] == [0.5, 1.5, 2.5]
    assert fake_time.now - lost_at == 2.5
    assert snap.attempts_total == 2


async def test_reconnect_and_close_interrupt_probing(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    await fake_ha.go_down()
    gate = asyncio.Event()
    started = asyncio.Event()

    async def hanging_probe(host: str, port: int, limit: float) -> ProbeResult:
        started.set()
        await gate.wait()
        return ProbeResult.DOWN

    sup = make_engine(probe_interval=1.0, rng=ScriptedRandom(0.0), probe=hanging_probe)
    await sup.start()
    await asyncio.wait_for(started.wait(), 10)
    await fake_ha.go_up()
    await sup.reconnect()  # wakes the probe: attempt now
    await connected(sup)
    assert sup.snapshot().probes_total == 0
    await fake_ha.go_down()
    started.clear()
    await asyncio.wait_for(started.wait(), 10)
    await sup.close()
    assert not engine_tasks()


async def test_tcp_probe_against_real_sockets(fake_ha: FakeHA) -> None:
    host, port = probe_target(fake_ha.url)
    assert (host, port) == ("127.0.0.1", fake_ha.port)
    assert await tcp_probe(host, port, 5.0) is ProbeResult.OPEN
    await fake_ha.go_down()
    assert await tcp_probe(host, port, 5.0) is ProbeResult.DOWN
    assert probe_target("wss://example.org/api/websocket") == ("example.org", 443)
    assert probe_target("ws://example.org/api/websocket") == ("example.org", 80)


async def test_tcp_probe_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()

    async def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(asyncio, "open_connection", never)
    assert await tcp_probe("192.0.2.1", 80, 0.01) is ProbeResult.SILENT
    monkeypatch.setattr(asyncio, "open_connection", unreadable)
    assert await tcp_probe("192.0.2.1", 80, 0.01) is ProbeResult.SILENT


def test_not_listening() -> None:
    assert not_listening(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert not_listening(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert not not_listening(OSError(errno.ETIMEDOUT, "timed out"))
    both = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1), "
        "[Errno 111] Connect call failed ('127.0.0.1', 1)"
    )
    assert not_listening(both)
    assert not not_listening(OSError("Multiple exceptions: [Errno 110] timed out, [Errno 111] x"))
    assert not not_listening(OSError("something else"))


# ---------------------------------------------------------------------------- honest schedules


async def test_attempt_in_progress_is_published_with_its_deadline(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.hang_before_upgrade = True  # a silent remote: the attempt hangs until the timeout
    sup = make_engine(connect_timeout=5.0)
    snapshots = record_states(sup)
    await sup.start()
    await wait_for(lambda: fake_ha.http_requests == 1)
    snap = snapshots[-1]  # published when the attempt began, not at the next refresh
    assert snap.attempting
    assert snap.state is LinkState.CONNECTING
    assert snap.attempt_started == datetime.fromtimestamp(WALL0 + 1000.0, UTC)
    assert snap.attempt_deadline == datetime.fromtimestamp(WALL0 + 1005.0, UTC)
    assert snap.current_backoff is None
    assert snap.next_attempt is None
    assert snap.waiting_for is None
    fake_ha.hang_before_upgrade = False
    await sup.close()
    assert not sup.snapshot().attempting


async def test_each_wait_and_each_attempt_is_published_when_it_begins(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.refuse = True
    fake_time.limit = 2
    sup = make_engine()
    snapshots = record_states(sup)
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(3))
    # attempt, wait 1 s, attempt, wait 2 s, attempt, wait 4 s: each change published once.
    seen = [
        ("attempt" if s.attempting else f"wait {s.current_backoff:g}")
        for s in snapshots
        if s.attempting or s.current_backoff is not None
    ]
    assert seen == ["attempt", "wait 1", "attempt", "wait 2", "attempt", "wait 4"]
    waits = [s for s in snapshots if s.current_backoff is not None]
    assert [s.next_attempt for s in waits] == [
        datetime.fromtimestamp(WALL0 + t, UTC) for t in (1001.0, 1003.0, 1007.0)
    ]


async def test_breaker_transitions_logged_once_each_with_the_real_next_time(
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)  # repeats go to debug
    fake_ha.refuse = True  # accepted and dropped: real failures
    fake_time.limit = 3
    sup = make_engine(breaker=BreakerConfig(failure_threshold=2, recovery_timeout=30.0))
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(4))  # the probe attempt failed: open again
    fake_time.allow()
    await wait_for(lambda: fake_time.blocked_at(5))  # waiting out the second open period
    fake_ha.refuse = False
    fake_time.allow(10)
    await connected(sup)
    messages = [r.getMessage() for r in caplog.records if r.name == ENGINE_LOGGER]
    opened = [m for m in messages if "Circuit breaker" in m and " open after" in m]
    reopened = [m for m in messages if "open again, the probe attempt failed" in m]
    half = [m for m in messages if "half-open" in m]
    closed = [m for m in messages if m.endswith("closed")]
    assert len(opened) == 1
    assert "no attempt for 30 s" in opened[0]
    assert len(reopened) == 1
    assert len(half) == 2
    assert len(closed) == 1
    # The failure that opened it names the real next attempt (the breaker's 30 s), not the
    # backoff's 2 s.
    failure = next(m for m in messages if "attempt 2 failed" in m)
    assert failure.endswith("next in 30.0 s")


async def test_forbidden_is_retried_with_backoff_never_final(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    fake_ha.http_status = 403
    fake_time.limit = 2
    sup = make_engine()
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(3))
    snap = sup.snapshot()
    assert snap.state is LinkState.RECONNECTING
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.FORBIDDEN
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    fake_ha.http_status = None
    fake_time.allow()
    await connected(sup)


async def test_close_is_final_even_while_reconnect_runs(
    fake_ha: FakeHA, make_engine: MakeEngine
) -> None:
    before = set(engine_tasks())
    sup = make_engine()
    await sup.start()
    await connected(sup)
    # reconnect() (a button press) and close() (unload) at the same moment, both orders.
    await asyncio.gather(sup.reconnect(), sup.close())
    assert not sup.running
    await asyncio.gather(sup.close(), sup.reconnect())
    await asyncio.sleep(0.05)
    assert not sup.running
    assert sup.state is LinkState.DISCONNECTED
    assert set(engine_tasks()) - before == set()
    await sup.start()  # start() is what begins again
    await connected(sup)


async def test_task_factory_starts_the_loop(fake_ha: FakeHA, make_engine: MakeEngine) -> None:
    started: list[str] = []

    def factory(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        started.append(name)
        return asyncio.get_running_loop().create_task(coro, name=name)

    sup = make_engine()
    sup.task_factory = factory
    await sup.start()
    await connected(sup)
    assert started == ["ha_ingestion engine"]


async def test_attempts_counted_without_a_snapshot(make_engine: MakeEngine) -> None:
    # bench/cost.py reads the count this way: building snapshots would weigh on what it measures.
    sup = make_engine()
    await sup.start()
    await connected(sup)
    assert sup._attempts_total == sup.snapshot().attempts_total == 1


# ---------------------------------------------------------------------------- partial subscriptions


async def test_a_refused_subscription_degrades_the_link_instead_of_taking_it_down(
    fake_ha: FakeHA,
    make_engine: MakeEngine,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_ha.expected_subscriptions = 1
    fake_ha.fail_subscriptions = {"call_service"}  # e.g. admin-only for a non-admin token
    sup = make_engine(event_types=("state_changed", "call_service"))
    await sup.start()
    await connected(sup)
    snap = sup.snapshot()
    assert snap.connected
    assert not snap.subscriptions_confirmed
    assert snap.refused_subscriptions == ("call_service",)
    status = {s.event_type: s for s in snap.subscriptions}
    assert status["state_changed"].confirmed
    assert status["state_changed"].refused is None
    assert not status["call_service"].confirmed
    assert status["call_service"].refused is not None
    assert "Unauthorized" in status["call_service"].refused
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.SUBSCRIPTION
    assert snap.attempts_total == 1  # no retry loop, no breaker
    assert fake_time.sleeps == []
    # The accepted subscription delivers.
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: sup.snapshot().events_received == 1)
    warnings = [r for r in caplog.records if "refused the subscription" in r.getMessage()]
    assert len(warnings) == 1

    # Next connection: still refused, not logged again; then accepted: logged once, cleared.
    await fake_ha.close_all(1011)
    await wait_for(lambda: sup.snapshot().successful_connections == 2)
    assert len([r for r in caplog.records if "refused the subscription" in r.getMessage()]) == 1
    fake_ha.fail_subscriptions = set()
    fake_ha.expected_subscriptions = 2
    await fake_ha.close_all(1011)
    await wait_for(lambda: sup.snapshot().successful_connections == 3)
    snap = sup.snapshot()
    assert snap.subscriptions_confirmed
    assert snap.refused_subscriptions == ()
    assert "accepts every subscription again" in caplog.text


async def test_set_failed_makes_no_attempt_until_reconnect(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    sup = make_engine()
    snapshots = record_states(sup)
    sup.set_failed(HaAuthenticationError("the remote rejected this token before"))
    await sup.start()
    for _ in range(20):
        fake_time.now += 3600
        await asyncio.sleep(0.002)
    snap = sup.snapshot()
    assert snap.state is LinkState.FAILED
    assert snapshots[-1].state is LinkState.FAILED
    assert snap.last_error is not None
    assert snap.last_error.category is ErrorCategory.AUTHENTICATION
    assert snap.attempts_total == 0
    assert fake_ha.upgrade_count == 0
    assert fake_ha.tcp_accept_count == 0
    await sup.reconnect()  # the host decides when (with a new token, say)
    await connected(sup)


async def test_a_broken_probe_counts_as_no_answer(
    fake_ha: FakeHA, make_engine: MakeEngine, fake_time: FakeTime
) -> None:
    await fake_ha.go_down()
    calls: list[float] = []

    async def broken(host: str, port: int, limit: float) -> ProbeResult:
        calls.append(fake_time.now)
        if len(calls) == 3:
            await fake_ha.go_up()
        raise ValueError("bug in a probe")

    sup = make_engine(probe_interval=1.0, rng=ScriptedRandom(0.0), probe=broken)
    await sup.start()
    await wait_for(lambda: len(calls) >= 3)
    await connected(sup)  # the backoff still brings it back
    assert sup.snapshot().last_probe is ProbeResult.SILENT
