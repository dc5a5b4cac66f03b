"""The supervisor against the fake Home Assistant over real sockets, with fake time.

Every delay goes through `FakeTime.sleep`, which records it, advances the fake monotonic clock and
yields; past `limit` sleeps it blocks until the test calls `allow()`. No test sleeps through backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
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
    ErrorCategory,
    HaConnectionClosedError,
    LinkSnapshot,
    LinkState,
    Supervisor,
    SupervisorConfig,
)
from tests.fake_ha import FakeHA

WALL0 = 1_700_000_000.0
SUPERVISOR_LOGGER = "custom_components.ha_ingestion.client.supervisor"


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


type MakeSupervisor = Callable[..., Supervisor]


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
async def make_supervisor(
    http: aiohttp.ClientSession, fake_ha: FakeHA, fake_time: FakeTime
) -> AsyncGenerator[MakeSupervisor]:
    """Build supervisors on fake time (closed after the test).

    Defaults: no jitter, base 1 s, cap 60 s, a breaker that does not get in the way.
    """
    supervisors: list[Supervisor] = []

    def make(
        *,
        backoff: BackoffConfig | None = None,
        breaker: BreakerConfig | None = None,
        max_attempts: int = 0,
        stability_window: float = 30.0,
        error_history_size: int = 50,
        rng: random.Random | None = None,
        **connection: Any,
    ) -> Supervisor:
        values: dict[str, Any] = {"url": fake_ha.url, "token": "good-token"} | connection
        config = SupervisorConfig(
            connection=ConnectionConfig(**values),
            backoff=backoff
            or BackoffConfig(base=1.0, multiplier=2.0, max_delay=60.0, jitter=False),
            breaker=breaker or BreakerConfig(failure_threshold=1000, recovery_timeout=60.0),
            max_attempts=max_attempts,
            stability_window=stability_window,
            error_history_size=error_history_size,
        )
        supervisor = Supervisor(
            http,
            config,
            rng=rng,
            clock=fake_time.clock,
            wall=fake_time.wall,
            sleep=fake_time.sleep,
        )
        supervisors.append(supervisor)
        return supervisor

    try:
        yield make
    finally:
        for supervisor in supervisors:
            await supervisor.close()


def record_states(supervisor: Supervisor) -> list[LinkSnapshot]:
    snapshots: list[LinkSnapshot] = []
    supervisor.add_listener(snapshots.append)
    return snapshots


def states_of(snapshots: list[LinkSnapshot]) -> list[LinkState]:
    """Distinct consecutive states, in order."""
    out: list[LinkState] = []
    for snap in snapshots:
        if not out or out[-1] is not snap.state:
            out.append(snap.state)
    return out


async def connected(supervisor: Supervisor) -> None:
    await wait_for(lambda: supervisor.state is LinkState.CONNECTED)


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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_ha.expected_subscriptions = 2
    sup = make_supervisor(event_types=("state_changed", "call_service"))
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


async def test_command_when_not_connected(make_supervisor: MakeSupervisor) -> None:
    sup = make_supervisor()
    with pytest.raises(HaConnectionClosedError):
        await sup.command({"type": "get_config"})


async def test_ping_rtt_reported(
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_time.limit = 0
    sup = make_supervisor(heartbeat_interval=0.05)
    await sup.start()
    await connected(sup)
    await wait_for(lambda: sup.snapshot().last_ping_rtt is not None)
    # Measured on the injected (fake) clock, which does not move here.
    assert sup.snapshot().last_ping_rtt == 0.0
    await fake_ha.close_all()
    await wait_for(lambda: fake_time.blocked_at(1))
    assert sup.snapshot().last_ping_rtt == 0.0  # kept after the link ended


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
    "refused": ((_go_down, _go_up), ErrorCategory.NETWORK, "HaConnectionError"),
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
    "subscription_error": (
        _set("fail_subscriptions", {"call_service"}, set()),
        ErrorCategory.SUBSCRIPTION,
        "HaSubscriptionError",
    ),
}


@pytest.mark.parametrize("fault", list(ATTEMPT_FAULTS))
async def test_attempt_fault_retried_with_backoff(
    fault: str, fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    (inject, repair), category, error_type = ATTEMPT_FAULTS[fault]
    fake_ha.expected_subscriptions = 2
    await inject(fake_ha)
    fake_time.limit = 1  # first retry goes through, the second waits
    sup = make_supervisor(event_types=("state_changed", "call_service"), connect_timeout=0.3)
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
    if fault == "subscription_error":
        # The connection was recycled: closed after the refusal, a new one per attempt.
        await wait_for(lambda: all(c.closed for c in fake_ha.connections))
        assert len(fake_ha.connections) == 2
        assert [c.subscriptions for c in fake_ha.connections] == [["state_changed"]] * 2

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
    make_supervisor: MakeSupervisor,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if how == "auth_invalid":
        fake_ha.token = "another-token"
    else:
        fake_ha.http_status = 401
    sup = make_supervisor()
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
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == SUPERVISOR_LOGGER)

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
    sup.config = SupervisorConfig(
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
    make_supervisor: MakeSupervisor,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_ha.refuse = True
    sup = make_supervisor(max_attempts=3)
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


async def test_reconnect_when_not_running_starts(
    fake_ha: FakeHA, make_supervisor: MakeSupervisor
) -> None:
    sup = make_supervisor()
    await sup.reconnect()
    await connected(sup)
    assert sup.running


async def test_reconnect_while_connected_reconnects_at_once(
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    sup = make_supervisor()
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_ha.refuse = True
    fake_time.limit = 1
    sup = make_supervisor(breaker=BreakerConfig(failure_threshold=2, recovery_timeout=1000.0))
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_ha.refuse = True
    sup = make_supervisor(breaker=BreakerConfig(failure_threshold=3, recovery_timeout=30.0))
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    """A probe abandoned by close() must not leave the breaker waiting for it forever."""
    fake_ha.refuse = True
    sup = make_supervisor(
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
    "drop_after_events": (_drop_after_events, ErrorCategory.NETWORK, "HaConnectionClosedError"),
    "frozen": (_freeze, ErrorCategory.TIMEOUT, "HaHeartbeatTimeoutError"),
    "malformed_json": (_malformed, ErrorCategory.PROTOCOL, "HaProtocolError"),
    "oversize_frame": (_oversize, ErrorCategory.PROTOCOL, "HaProtocolError"),
    "binary_frame": (_binary, ErrorCategory.PROTOCOL, "HaProtocolError"),
    "close_4000": (_close_with(4000), ErrorCategory.PROTOCOL, "HaProtocolError"),
    "close_1011": (_close_with(1011), ErrorCategory.PROTOCOL, "HaProtocolError"),
    "close_1000": (_close_with(1000), ErrorCategory.NETWORK, "HaConnectionClosedError"),
    "host_down": (_go_down, ErrorCategory.NETWORK, "HaConnectionClosedError"),
}


@pytest.mark.parametrize("fault", list(LINK_FAULTS))
async def test_link_fault_reconnects(
    fault: str, fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    inject, category, error_type = LINK_FAULTS[fault]
    fake_time.limit = 0  # the first delay waits for the test
    sup = make_supervisor(heartbeat_interval=0.2, heartbeat_timeout=0.3, max_msg_size=1024)
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    sup = make_supervisor()
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    """Auth succeeds, then the link drops at once, 20 times: the backoff must keep growing."""
    fake_ha.drop_after_auth = True
    fake_time.limit = 19
    sup = make_supervisor(stability_window=30.0)
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_ha.drop_after_auth = True
    fake_time.limit = 19
    sup = make_supervisor(
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_ha.drop_after_auth = True
    fake_time.limit = 2
    sup = make_supervisor(stability_window=30.0)
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    types = ("state_changed", "call_service", "automation_triggered")
    fake_ha.expected_subscriptions = len(types)
    fake_time.limit = 1
    sup = make_supervisor(event_types=types)
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    fake_time.limit = 0
    sup = make_supervisor()
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


# ---------------------------------------------------------------------------- history, logs


async def test_error_history_bounded_and_without_token(
    fake_ha: FakeHA,
    make_supervisor: MakeSupervisor,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl"
    fake_ha.token = token
    fake_ha.refuse = True
    fake_time.limit = 11
    sup = make_supervisor(token=token, error_history_size=5)
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
    make_supervisor: MakeSupervisor,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=SUPERVISOR_LOGGER)
    fake_ha.refuse = True
    fake_time.limit = 4
    sup = make_supervisor()
    await sup.start()
    await wait_for(lambda: fake_time.blocked_at(5))

    def cannot_reach() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == SUPERVISOR_LOGGER and r.getMessage().startswith("Cannot reach")
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
    where: str, fake_ha: FakeHA, make_supervisor: MakeSupervisor, fake_time: FakeTime
) -> None:
    before = set(engine_tasks())
    sup = make_supervisor(connect_timeout=5)
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
    fake_ha: FakeHA, make_supervisor: MakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    sup = make_supervisor()
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
