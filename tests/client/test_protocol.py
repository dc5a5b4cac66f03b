"""One WebSocket session against the fake Home Assistant, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
import itertools
from typing import Any
from unittest.mock import AsyncMock

import aiohttp
from aiohttp import web
import orjson
import pytest

from custom_components.ha_ingestion.client import (
    ConnectionConfig,
    ErrorCategory,
    HaAuthenticationError,
    HaClientError,
    HaCommandError,
    HaConnectionClosedError,
    HaConnectionError,
    HaConnectionRefusedError,
    HaForbiddenError,
    HaHeartbeatTimeoutError,
    HaMessageTooBigError,
    HaNotHomeAssistantError,
    HaProtocolError,
    HaRemoteGoingAwayError,
    HaServiceUnavailableError,
    HaSSLError,
    HaSubscriptionError,
    HaTimeoutError,
    HaWebSocketSession,
    RemoteInfo,
    protocol,
)
from tests.fake_ha import FakeHA

type Connect = Callable[..., Awaitable[HaWebSocketSession]]
type MakeSession = Callable[..., HaWebSocketSession]


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll until `predicate()` holds; bounded."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.fixture
async def http() -> AsyncGenerator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def make_session(http: aiohttp.ClientSession, fake_ha: FakeHA) -> AsyncGenerator[MakeSession]:
    """Build sessions to the fake (closed after the test); keyword arguments go to the config."""
    sessions: list[HaWebSocketSession] = []

    def make(
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_unknown: Callable[[HaClientError], None] | None = None,
        **config: Any,
    ) -> HaWebSocketSession:
        values: dict[str, Any] = {"url": fake_ha.url, "token": "good-token"} | config
        session = HaWebSocketSession(
            http, ConnectionConfig(**values), on_event=on_event, on_unknown=on_unknown
        )
        sessions.append(session)
        return session

    try:
        yield make
    finally:
        for session in sessions:
            await session.close()


@pytest.fixture
def connect(make_session: MakeSession) -> Connect:
    """Build a session and connect it."""

    async def _connect(**kwargs: Any) -> HaWebSocketSession:
        session = make_session(**kwargs)
        await session.connect()
        return session

    return _connect


async def connect_error(make_session: MakeSession, **kwargs: Any) -> HaClientError:
    session = make_session(**kwargs)
    with pytest.raises(HaClientError) as info:
        await session.connect()
    assert not session.connected
    return info.value


async def closed_with(session: HaWebSocketSession, timeout: float = 10) -> HaClientError:
    async with asyncio.timeout(timeout):
        return await session.wait_closed()


def own_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("ha_ingestion")}


# ---------------------------------------------------------------------------- happy path


async def test_connect_handshake_and_identity(fake_ha: FakeHA, connect: Connect) -> None:
    fake_ha.external_url = "https://remote.example"
    session = await connect()
    assert session.connected
    assert session.ha_version == "2025.4.4"
    assert session.remote == RemoteInfo(
        location_name="Remote Home",
        version="2025.4.4",
        user_id="remote-user-1",
        time_zone="Europe/Berlin",
        external_url="https://remote.example",
        internal_url=None,
    )
    assert fake_ha.auth_ok_count == 1
    assert fake_ha.upgrade_count == 1
    conn = fake_ha.connections[0]
    assert conn.authenticated
    assert [c["type"] for c in conn.commands] == [
        "supported_features",
        "get_config",
        "auth/current_user",
    ]
    assert conn.commands[0]["features"] == {"coalesce_messages": 1}
    assert conn.coalesce
    assert conn.ids == [1, 2, 3]


async def test_close_is_idempotent_and_leaves_no_task(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect(heartbeat_interval=0.05)
    assert len(own_tasks()) == 2  # reader and heartbeat
    await session.close()
    await session.close()
    assert not session.connected
    assert own_tasks() == set()
    err = await closed_with(session)
    assert isinstance(err, HaConnectionClosedError)
    assert "closed by client" in str(err)
    await wait_for(lambda: fake_ha.connections[0].closed)
    with pytest.raises(HaConnectionClosedError):
        await session.command({"type": "get_config"})


async def test_subscriptions_and_events(fake_ha: FakeHA, connect: Connect) -> None:
    events: list[dict[str, Any]] = []
    session = await connect(on_event=events.append)
    sub_a = await session.subscribe_events("state_changed")
    sub_b = await session.subscribe_events("call_service")
    assert session.subscriptions == {sub_a: "state_changed", sub_b: "call_service"}
    assert fake_ha.connections[0].subscriptions == ["state_changed", "call_service"]

    await fake_ha.fire_state_changed("light.kitchen", "on", {"brightness": 200})
    await fake_ha.fire_event("call_service", {"domain": "light", "service": "turn_on"})
    await fake_ha.fire_event("not_subscribed", {"x": 1})
    await wait_for(lambda: len(events) == 2)
    changed, service = events
    assert changed["event_type"] == "state_changed"
    assert changed["data"]["entity_id"] == "light.kitchen"
    assert changed["data"]["old_state"] is None
    new_state = changed["data"]["new_state"]
    assert new_state["state"] == "on"
    assert new_state["attributes"] == {"brightness": 200}
    assert new_state["last_changed"] == new_state["last_updated"] == changed["time_fired"]
    assert datetime.fromisoformat(changed["time_fired"]).tzinfo is not None
    assert service["data"] == {"domain": "light", "service": "turn_on"}

    await fake_ha.fire_state_changed("light.kitchen", "on", {"brightness": 10})
    await wait_for(lambda: len(events) == 3)
    again = events[2]["data"]
    assert again["old_state"]["state"] == "on"
    # An attribute-only change keeps last_changed and moves last_updated.
    assert again["new_state"]["last_changed"] == new_state["last_changed"]
    assert again["new_state"]["last_updated"] != new_state["last_updated"]


async def test_coalesced_array_frames(fake_ha: FakeHA, connect: Connect) -> None:
    events: list[dict[str, Any]] = []
    session = await connect(on_event=events.append)
    await session.subscribe_events("state_changed")
    frames_before = len(events)
    await fake_ha.fire_events([("state_changed", {"n": n}) for n in range(5)])
    await wait_for(lambda: len(events) == frames_before + 5)
    assert [e["data"]["n"] for e in events] == [0, 1, 2, 3, 4]
    assert session.connected


async def test_result_and_events_in_one_array(fake_ha: FakeHA, connect: Connect) -> None:
    """An event may share a frame with the subscription result; results for no one are ignored."""
    events: list[dict[str, Any]] = []
    session = await connect(on_event=events.append)
    sub = await session.subscribe_events("state_changed")
    event = {"event_type": "state_changed", "data": {"k": 1}}
    await fake_ha.send_raw(
        orjson.dumps(
            [
                {"id": 999, "type": "result", "success": True, "result": None},
                {"id": sub, "type": "event", "event": event},
                {"id": 12345, "type": "event", "event": event},  # unknown subscription
                {"id": sub, "type": "event", "event": event},
            ]
        ).decode()
    )
    await wait_for(lambda: len(events) == 2)
    assert session.connected
    assert await session.command({"type": "get_config"})


async def test_command_ids_strictly_increasing(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect(heartbeat_interval=0.05)
    await session.subscribe_events("state_changed")
    await wait_for(lambda: fake_ha.connections[0].pings >= 2)
    for _ in range(3):
        await session.command({"type": "get_states"})
    ids = fake_ha.connections[0].ids
    assert len(ids) >= 9
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert session.next_id() > ids[-1]


async def test_id_reuse_is_refused_like_home_assistant(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    session._last_id = 1  # force the next command to reuse id 2
    with pytest.raises(HaCommandError) as info:
        await session.command({"type": "get_config"})
    assert info.value.code == "id_reuse"
    assert session.connected  # an error result does not end the link
    session._last_id = 10
    assert await session.command({"type": "get_config"})


async def test_unknown_command(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    with pytest.raises(HaCommandError) as info:
        await session.command({"type": "no/such_command"})
    assert info.value.code == "unknown_command"
    assert info.value.category is ErrorCategory.PROTOCOL
    assert session.connected
    assert isinstance(await session.command({"type": "get_states"}), list)


async def test_ping_rtt_measured(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect(heartbeat_interval=0.05, heartbeat_timeout=1.0)
    assert session.last_ping_rtt is None
    await wait_for(lambda: session.last_ping_rtt is not None)
    assert session.last_ping_rtt is not None
    assert 0.0 <= session.last_ping_rtt < 1.0
    assert fake_ha.connections[0].pings >= 1
    assert session.connected


# ---------------------------------------------------------------------------- connect faults


async def test_refused_when_down(fake_ha: FakeHA, make_session: MakeSession) -> None:
    await fake_ha.go_down()
    err = await connect_error(make_session)
    # Nothing listens: told apart from other network faults (it does not count against the breaker).
    assert type(err) is HaConnectionRefusedError
    assert isinstance(err, HaConnectionError)
    assert err.category is ErrorCategory.NETWORK
    assert "nothing listening" in str(err)
    await fake_ha.go_up()
    session = make_session()
    await session.connect()
    assert session.connected


async def test_tcp_closed_at_once(fake_ha: FakeHA, make_session: MakeSession) -> None:
    fake_ha.refuse = True
    err = await connect_error(make_session)
    assert type(err) is HaConnectionError
    assert err.category is ErrorCategory.NETWORK
    assert fake_ha.tcp_accept_count >= 1
    assert fake_ha.upgrade_count == 0


async def test_hang_before_upgrade(fake_ha: FakeHA, make_session: MakeSession) -> None:
    fake_ha.hang_before_upgrade = True
    err = await connect_error(make_session, connect_timeout=0.5)
    assert type(err) is HaTimeoutError
    assert err.category is ErrorCategory.TIMEOUT
    assert fake_ha.http_requests == 1
    assert fake_ha.upgrade_count == 0


async def test_hang_after_upgrade(fake_ha: FakeHA, make_session: MakeSession) -> None:
    """A remote that upgrades and then says nothing: the connect timeout ends the attempt.

    The timeout is real time; on a busy machine it can expire before the upgrade is even done
    (that is the other test, hang before upgrade). Such a try proves nothing here and is repeated
    with a doubled timeout until the hang is the one after the upgrade."""
    fake_ha.hang_after_upgrade = True
    timeout = 0.5
    while True:
        upgrades = fake_ha.upgrade_count
        err = await connect_error(make_session, connect_timeout=timeout)
        assert type(err) is HaTimeoutError
        if fake_ha.upgrade_count > upgrades or timeout >= 16:
            break
        timeout *= 2
    assert fake_ha.upgrade_count == upgrades + 1
    assert fake_ha.auth_ok_count == 0
    await wait_for(lambda: fake_ha.connections[-1].closed)


async def test_auth_invalid(fake_ha: FakeHA, make_session: MakeSession) -> None:
    err = await connect_error(make_session, token="wrong-token")
    assert type(err) is HaAuthenticationError
    assert err.category is ErrorCategory.AUTHENTICATION
    assert str(err) == "Invalid access token or password"
    assert fake_ha.auth_invalid_count == 1
    assert fake_ha.auth_ok_count == 0
    assert not fake_ha.connections[0].authenticated


@pytest.mark.parametrize(
    ("status", "error", "category"),
    [
        (401, HaAuthenticationError, ErrorCategory.AUTHENTICATION),
        (403, HaForbiddenError, ErrorCategory.FORBIDDEN),  # a ban or a proxy, not the token
        (404, HaNotHomeAssistantError, ErrorCategory.PROTOCOL),
        (500, HaServiceUnavailableError, ErrorCategory.SERVICE),
        (502, HaServiceUnavailableError, ErrorCategory.SERVICE),
        (503, HaServiceUnavailableError, ErrorCategory.SERVICE),
        (504, HaServiceUnavailableError, ErrorCategory.SERVICE),
    ],
)
async def test_http_status_at_upgrade(
    fake_ha: FakeHA,
    make_session: MakeSession,
    status: int,
    error: type[HaClientError],
    category: ErrorCategory,
) -> None:
    fake_ha.http_status = status
    err = await connect_error(make_session)
    assert type(err) is error
    assert err.category is category
    assert str(status) in str(err)
    assert fake_ha.upgrade_count == 0


async def test_tls_to_plain_server(fake_ha: FakeHA, make_session: MakeSession) -> None:
    err = await connect_error(make_session, url=fake_ha.url.replace("ws://", "wss://"))
    assert type(err) is HaSSLError
    assert err.category is ErrorCategory.NETWORK


@pytest.mark.parametrize(
    ("greeting", "error", "text"),
    [
        ('{"type": "hello"}', HaNotHomeAssistantError, "expected auth_required"),
        ("[1, 2]", HaProtocolError, "not an object"),
        ("{not json", HaProtocolError, "malformed JSON"),
        (b"\x00\x01", HaProtocolError, "binary"),
    ],
)
async def test_not_home_assistant_greeting(
    fake_ha: FakeHA,
    make_session: MakeSession,
    greeting: str | bytes,
    error: type[HaClientError],
    text: str,
) -> None:
    fake_ha.greeting = greeting
    err = await connect_error(make_session)
    assert type(err) is error
    assert text in str(err)


async def test_unexpected_auth_reply(fake_ha: FakeHA, make_session: MakeSession) -> None:
    fake_ha.auth_reply = '{"type": "auth_maybe"}'
    err = await connect_error(make_session)
    assert type(err) is HaProtocolError
    assert "expected auth_ok" in str(err)


async def test_closed_during_handshake(fake_ha: FakeHA, make_session: MakeSession) -> None:
    fake_ha.hang_after_upgrade = True
    session = make_session(connect_timeout=5)
    task = asyncio.create_task(session.connect())
    await wait_for(lambda: fake_ha.upgrade_count == 1)
    await fake_ha.close_all(1000)
    with pytest.raises(HaConnectionClosedError):
        await asyncio.wait_for(task, 10)


async def test_get_config_not_an_object(fake_ha: FakeHA, make_session: MakeSession) -> None:
    fake_ha.config_dict = lambda: ["not", "a", "dict"]  # type: ignore[method-assign]
    err = await connect_error(make_session)
    assert type(err) is HaProtocolError
    assert "no object" in str(err)
    assert own_tasks() == set()


async def test_setup_command_times_out(fake_ha: FakeHA, make_session: MakeSession) -> None:
    fake_ha.frozen = True  # authenticates, then never answers a command
    err = await connect_error(make_session, command_timeout=0.3)
    assert type(err) is HaTimeoutError
    assert "supported_features" in str(err)
    assert own_tasks() == set()


# ---------------------------------------------------------------------------- link faults


async def test_drop_after_events(fake_ha: FakeHA, connect: Connect) -> None:
    events: list[dict[str, Any]] = []
    fake_ha.drop_after_events = 3
    session = await connect(on_event=events.append)
    await session.subscribe_events("state_changed")
    for n in range(5):
        await fake_ha.fire_state_changed("sensor.n", str(n))
    err = await closed_with(session)
    assert type(err) is HaRemoteGoingAwayError  # the fake closes with 1000
    assert err.category is ErrorCategory.NETWORK
    assert len(events) == 3
    assert not session.connected


async def test_frozen_detected_by_heartbeat(fake_ha: FakeHA, connect: Connect) -> None:
    interval, timeout = 0.2, 0.3
    session = await connect(heartbeat_interval=interval, heartbeat_timeout=timeout)
    await session.subscribe_events("state_changed")
    loop = asyncio.get_running_loop()
    fake_ha.frozen = True
    frozen_at = loop.time()
    err = await closed_with(session)
    detected_after = loop.time() - frozen_at
    assert type(err) is HaHeartbeatTimeoutError
    assert err.category is ErrorCategory.TIMEOUT
    # Documented bound: silence for `interval`, then no pong within `timeout` (generous slack).
    assert detected_after <= interval + timeout + 2.0
    assert any(c["type"] == "ping" for c in fake_ha.connections[0].commands)
    assert own_tasks() == set()


@pytest.fixture
async def loop_jump(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the event loop's clock (the session's) forward by that many seconds, at once."""
    loop = asyncio.get_running_loop()
    real = loop.time
    offset = [0.0]
    monkeypatch.setattr(loop, "time", lambda: real() + offset[0])

    def jump(seconds: float) -> None:
        offset[0] += seconds

    return jump


async def test_silence_runs_from_the_last_frame_received(
    fake_ha: FakeHA, connect: Connect, loop_jump: Callable[[float], None]
) -> None:
    """`silence`: since the last frame (an event here); a frame starts it again."""
    events: list[dict[str, Any]] = []
    session = await connect(on_event=events.append)
    await session.subscribe_events("state_changed")
    loop_jump(100.0)
    assert session.silence >= 100.0
    await fake_ha.fire_event("state_changed", {})
    await wait_for(lambda: len(events) == 1)
    assert session.silence < 100.0


async def test_close_frame_is_the_last_sign_of_life(
    fake_ha: FakeHA, connect: Connect, loop_jump: Callable[[float], None]
) -> None:
    """A remote that says goodbye (a restart): the close frame counts, detection is nil."""
    session = await connect()
    loop_jump(100.0)
    await fake_ha.close_all(code=1001)
    assert type(await closed_with(session)) is HaRemoteGoingAwayError
    assert session.silence < 100.0


async def test_broken_connection_is_no_sign_of_life(
    fake_ha: FakeHA, connect: Connect, loop_jump: Callable[[float], None]
) -> None:
    """A connection that breaks without a close frame: the last frame before it counts."""
    session = await connect()
    loop_jump(100.0)
    fake_ha.abort_all()
    assert isinstance(await closed_with(session), HaConnectionClosedError)
    assert session.silence >= 100.0


async def test_heartbeat_silence_is_at_least_interval_and_timeout(
    fake_ha: FakeHA, connect: Connect
) -> None:
    """A frozen remote: the loss is detected after the heartbeat's interval and timeout of
    silence, and `silence` says so (the detection the Last outage sensor shows)."""
    interval, timeout = 0.1, 0.2
    session = await connect(heartbeat_interval=interval, heartbeat_timeout=timeout)
    fake_ha.frozen = True
    assert type(await closed_with(session)) is HaHeartbeatTimeoutError
    assert session.silence >= interval + timeout


async def test_unanswered_pings_with_traffic_keep_link(fake_ha: FakeHA, connect: Connect) -> None:
    """A ping goes unanswered, but frames arrive meanwhile: the link is alive."""
    session = await connect(heartbeat_interval=0.1, heartbeat_timeout=3.0, on_event=lambda e: None)
    await session.subscribe_events("state_changed")
    fake_ha.answer_pings = False
    conn = fake_ha.connections[0]
    await wait_for(lambda: conn.pings == 1)  # after `interval` of silence
    await fake_ha.fire_event("state_changed", {})  # traffic, but no pong
    await wait_for(lambda: conn.pings == 2)  # the first ping's timeout did not end the link
    assert session.connected
    assert session.last_ping_rtt is None
    # Silence and no pong: now the unanswered ping ends the link.
    err = await closed_with(session)
    assert type(err) is HaHeartbeatTimeoutError


async def test_pending_command_fails_when_link_ends(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    fake_ha.frozen = True
    task = asyncio.create_task(session.command({"type": "get_config"}))
    await wait_for(lambda: len(fake_ha.connections[0].ids) == 4)
    await fake_ha.close_all(1000)
    with pytest.raises(HaConnectionClosedError):
        await asyncio.wait_for(task, 10)


async def test_error_answer_to_ping_keeps_heartbeat(fake_ha: FakeHA, connect: Connect) -> None:
    """An error result to a ping is still an answer: the heartbeat must go on watching."""
    session = await connect(heartbeat_interval=0.05, heartbeat_timeout=1.0)
    conn = fake_ha.connections[0]
    session._last_id = 1  # the next ping reuses an id: the remote answers id_reuse
    await wait_for(lambda: conn.pings >= 1)  # a later ping got through and was answered
    await wait_for(lambda: session.last_ping_rtt is not None)
    assert session._heartbeat is not None
    assert not session._heartbeat.done()
    fake_ha.frozen = True
    err = await closed_with(session)
    assert type(err) is HaHeartbeatTimeoutError


async def test_send_without_explicit_id(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    future = await session._send({"type": "get_config"})
    assert (await asyncio.wait_for(future, 10))["location_name"] == "Remote Home"
    assert fake_ha.connections[0].ids[-1] == 4


async def test_command_timeout(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    fake_ha.frozen = True
    with pytest.raises(HaTimeoutError, match="get_states"):
        await session.command({"type": "get_states"}, time_limit=0.2)
    assert session.connected  # a slow command does not end the link


@pytest.mark.parametrize("stepped", [False, True], ids=["at-once", "in-steps"])
async def test_malformed_json(
    fake_ha: FakeHA, connect: Connect, monkeypatch: pytest.MonkeyPatch, stepped: bool
) -> None:
    if stepped:
        monkeypatch.setattr(protocol, "DECODE_IN_STEPS_OVER", 10)
    session = await connect()
    await fake_ha.send_raw('{"id": 1, "type": "result", ')
    err = await closed_with(session)
    assert type(err) is HaProtocolError
    assert "malformed JSON" in str(err)
    assert err.category is ErrorCategory.PROTOCOL


async def test_unknown_message_type_keeps_link(fake_ha: FakeHA, connect: Connect) -> None:
    unknown: list[HaClientError] = []
    session = await connect(on_unknown=unknown.append)
    await fake_ha.send_raw('{"type": "brand_new_message", "id": 1}')
    await wait_for(lambda: len(unknown) == 1)
    assert "brand_new_message" in str(unknown[0])
    assert isinstance(unknown[0], HaProtocolError)
    assert session.connected
    assert await session.command({"type": "get_config"})


async def test_unknown_message_without_listener(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    await fake_ha.send_raw('{"type": "brand_new_message"}')
    assert await session.command({"type": "get_config"})
    assert session.connected


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("[1]", "not an object"),
        ('"just a string"', "not an object"),
        ('{"id": SUB, "type": "event", "event": "nope"}', "without an event object"),
        ('{"id": [SUB], "type": "event", "event": {}}', None),  # unhashable id: matches nothing
        ('{"id": {"a": 1}, "type": "result", "success": true}', None),
        ('{"type": ["odd"]}', "unknown type"),
    ],
)
async def test_invalid_messages_are_skipped_and_reported(
    fake_ha: FakeHA, connect: Connect, raw: str, text: str | None
) -> None:
    reported: list[HaClientError] = []
    events: list[dict[str, Any]] = []
    session = await connect(on_event=events.append, on_unknown=reported.append)
    sub = await session.subscribe_events("state_changed")
    await fake_ha.send_raw(raw.replace("SUB", str(sub)))
    assert await session.command({"type": "get_config"})  # the link goes on
    assert session.connected
    assert events == []
    if text is None:
        assert reported == []
    else:
        assert len(reported) == 1
        assert type(reported[0]) is HaProtocolError
        assert text in str(reported[0])


async def test_error_result_with_odd_error_field(connect: Connect) -> None:
    session = await connect()
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    session._pending[999_999] = future
    session._dispatch({"id": 999_999, "type": "result", "success": False, "error": "not a dict"})
    with pytest.raises(HaCommandError) as caught:
        await future
    assert caught.value.code == "unknown"
    assert session.connected


async def test_oversize_frame(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect(max_msg_size=1024)
    await fake_ha.send_raw(orjson.dumps({"type": "event", "pad": "x" * 4096}).decode())
    err = await closed_with(session)
    assert type(err) is HaMessageTooBigError  # a protocol error the engine can tell apart
    assert isinstance(err, HaProtocolError)
    assert "oversize" in str(err)


async def test_binary_frame(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    await fake_ha.send_bytes(b"\x00binary\xff")
    err = await closed_with(session)
    assert type(err) is HaProtocolError
    assert "binary" in str(err)


@pytest.mark.parametrize(
    ("code", "error", "category"),
    [
        (4000, HaProtocolError, ErrorCategory.PROTOCOL),
        (1011, HaProtocolError, ErrorCategory.PROTOCOL),
        (1008, HaProtocolError, ErrorCategory.PROTOCOL),
        # An orderly close by the remote: it is shutting down (HA closes with 1000 on stop).
        (1000, HaRemoteGoingAwayError, ErrorCategory.NETWORK),
        (1001, HaRemoteGoingAwayError, ErrorCategory.NETWORK),
    ],
)
async def test_close_codes(
    fake_ha: FakeHA,
    connect: Connect,
    code: int,
    error: type[HaClientError],
    category: ErrorCategory,
) -> None:
    session = await connect()
    await fake_ha.close_all(code, b"bye now")
    err = await closed_with(session)
    assert type(err) is error
    assert err.category is category
    if error is HaProtocolError:
        assert str(code) in str(err)
        assert "bye now" in str(err)


async def test_invalid_utf8_text_frame(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    fake_ha.send_wire(b"\x81\x02\xff\xfe")  # FIN + text, 2 bytes that are not UTF-8
    err = await closed_with(session)
    assert type(err) is HaProtocolError
    assert "bad frame" in str(err)


@pytest.mark.parametrize("reset", [False, True])
async def test_connection_dropped_without_close_frame(
    fake_ha: FakeHA, connect: Connect, reset: bool
) -> None:
    session = await connect()
    fake_ha.abort_all(reset=reset)
    err = await closed_with(session)
    assert isinstance(err, HaConnectionClosedError)
    assert err.category is ErrorCategory.NETWORK


async def test_host_goes_away(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    await fake_ha.go_down()
    err = await closed_with(session)
    assert type(err) is HaConnectionClosedError
    assert err.category is ErrorCategory.NETWORK


async def test_subscription_error(fake_ha: FakeHA, connect: Connect) -> None:
    fake_ha.fail_subscriptions = {"call_service"}
    session = await connect()
    with pytest.raises(HaSubscriptionError) as info:
        await session.subscribe_events("call_service")
    assert info.value.category is ErrorCategory.SUBSCRIPTION
    assert "Unauthorized" in str(info.value)
    assert session.subscriptions == {}
    assert session.connected
    sub = await session.subscribe_events("state_changed")
    assert session.subscriptions == {sub: "state_changed"}


async def test_subscribe_on_closed_session(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    await session.close()
    with pytest.raises(HaConnectionClosedError):
        await session.subscribe_events("state_changed")
    assert session.subscriptions == {}


async def test_send_failure_ends_link(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    assert session._ws is not None
    session._ws.send_str = AsyncMock(side_effect=ConnectionResetError("reset"))  # type: ignore[method-assign]
    with pytest.raises(HaConnectionClosedError, match="send failed"):
        await session.command({"type": "get_config"})
    err = await closed_with(session)
    assert "send failed" in str(err)


async def test_heartbeat_stops_when_send_fails(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect(heartbeat_interval=0.05)
    assert session._ws is not None
    session._ws.send_str = AsyncMock(side_effect=ConnectionResetError("reset"))  # type: ignore[method-assign]
    err = await closed_with(session)
    assert type(err) is HaConnectionClosedError
    assert own_tasks() == set()


async def test_broken_event_callback_ends_link(
    fake_ha: FakeHA, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    session = await connect(on_event=explode)
    await session.subscribe_events("state_changed")
    await fake_ha.fire_event("state_changed", {})
    err = await closed_with(session)
    assert type(err) is HaProtocolError
    assert "reader failed" in str(err)
    assert "Unexpected error in the WebSocket reader" in caplog.text


# ---------------------------------------------------------------------------- history


@pytest.fixture
def recorded(fake_ha: FakeHA) -> datetime:
    """A small recorder history; returns the reference time T."""
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    fake_ha.record_state("sensor.temp", "20", t - timedelta(minutes=50), {"unit": "C"})
    fake_ha.record_state("sensor.temp", "20", t - timedelta(minutes=40), {"unit": "C", "x": 1})
    fake_ha.record_state("sensor.temp", "21", t - timedelta(minutes=30), {"unit": "C"})
    fake_ha.record_state("sensor.temp", "21", t - timedelta(minutes=20), {"unit": "C", "x": 2})
    fake_ha.record_state("sensor.temp", "22", t + timedelta(minutes=5), {"unit": "C"})
    fake_ha.record_state("climate.living", "heat", t - timedelta(minutes=35), {"temp": 20})
    fake_ha.record_state("climate.living", "heat", t - timedelta(minutes=25), {"temp": 21})
    return t


def ts(moment: datetime) -> float:
    return moment.timestamp()


def period(t: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "type": "history/history_during_period",
        "start_time": (t - timedelta(minutes=45)).isoformat(),
        "end_time": (t - timedelta(minutes=10)).isoformat(),
        "entity_ids": ["sensor.temp"],
        **extra,
    }


async def test_history_significant_changes_only(recorded: datetime, connect: Connect) -> None:
    t = recorded
    session = await connect()
    result = await session.command(period(t))
    assert result == {
        "sensor.temp": [
            # the state at start_time, reported at start_time, without "lc"
            {"s": "20", "a": {"unit": "C"}, "lu": ts(t - timedelta(minutes=45))},
            {"s": "21", "a": {"unit": "C"}, "lu": ts(t - timedelta(minutes=30))},
        ]
    }


async def test_history_all_changes(recorded: datetime, connect: Connect) -> None:
    t = recorded
    session = await connect()
    result = await session.command(period(t, significant_changes_only=False))
    assert result == {
        "sensor.temp": [
            {"s": "20", "a": {"unit": "C"}, "lu": ts(t - timedelta(minutes=45))},
            {
                "s": "20",
                "a": {"unit": "C", "x": 1},
                "lu": ts(t - timedelta(minutes=40)),
                "lc": ts(t - timedelta(minutes=50)),
            },
            {"s": "21", "a": {"unit": "C"}, "lu": ts(t - timedelta(minutes=30))},
            {
                "s": "21",
                "a": {"unit": "C", "x": 2},
                "lu": ts(t - timedelta(minutes=20)),
                "lc": ts(t - timedelta(minutes=30)),
            },
        ]
    }


async def test_history_minimal_and_no_attributes(recorded: datetime, connect: Connect) -> None:
    t = recorded
    session = await connect()
    minimal = await session.command(
        period(t, significant_changes_only=False, minimal_response=True)
    )
    assert minimal == {
        "sensor.temp": [
            {"s": "20", "a": {"unit": "C"}, "lu": ts(t - timedelta(minutes=45))},
            {"s": "21", "lu": ts(t - timedelta(minutes=30))},
        ]
    }
    minimal_bare = await session.command(period(t, minimal_response=True, no_attributes=True))
    assert minimal_bare == {
        "sensor.temp": [
            {"s": "20", "lu": ts(t - timedelta(minutes=45))},
            {"s": "21", "lu": ts(t - timedelta(minutes=30))},
        ]
    }
    bare = await session.command(period(t, no_attributes=True))
    assert [row["a"] for row in bare["sensor.temp"]] == [{}, {}]


async def test_history_significant_domain_and_start_state(
    recorded: datetime, connect: Connect
) -> None:
    t = recorded
    session = await connect()
    query = period(
        t,
        entity_ids=["climate.living", "sensor.temp", "sensor.unknown"],
        include_start_time_state=False,
        minimal_response=True,
    )
    result = await session.command(query)
    # climate keeps attribute-only changes and full rows; no start state; unknown left out.
    assert result == {
        "climate.living": [
            {"s": "heat", "a": {"temp": 20}, "lu": ts(t - timedelta(minutes=35))},
            {"s": "heat", "a": {"temp": 21}, "lu": ts(t - timedelta(minutes=25))},
        ],
        "sensor.temp": [{"s": "21", "a": {"unit": "C"}, "lu": ts(t - timedelta(minutes=30))}],
    }


async def test_history_open_end_and_fired_states(fake_ha: FakeHA, connect: Connect) -> None:
    session = await connect()
    start = datetime.now(UTC) - timedelta(seconds=5)
    await fake_ha.fire_state_changed("light.hall", "on", {"brightness": 1})
    await fake_ha.fire_state_changed("light.hall", "on", {"brightness": 2})
    await fake_ha.fire_state_changed("light.hall", "off")
    result = await session.command(
        {
            "type": "history/history_during_period",
            "start_time": start.isoformat(),
            "entity_ids": ["light.hall"],
        }
    )
    assert [row["s"] for row in result["light.hall"]] == ["on", "off"]
    assert all("lc" not in row for row in result["light.hall"])
    lus = [row["lu"] for row in result["light.hall"]]
    assert lus == sorted(lus)
    assert all(isinstance(lu, float) for lu in lus)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"start_time": "yesterday"}, "invalid_start_time"),
        ({"end_time": "tomorrow-ish"}, "invalid_end_time"),
        ({"entity_ids": ["Not An Entity"]}, "invalid_entity_ids"),
        ({"entity_ids": "sensor.temp"}, "invalid_format"),
    ],
)
async def test_history_errors(
    recorded: datetime, connect: Connect, change: dict[str, Any], code: str
) -> None:
    session = await connect()
    with pytest.raises(HaCommandError) as info:
        await session.command(period(recorded) | change)
    assert info.value.code == code


async def test_history_empty_answers(recorded: datetime, connect: Connect) -> None:
    session = await connect()
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await session.command(period(recorded, start_time=future.isoformat())) == {}
    long_ago = recorded - timedelta(days=30)
    assert (
        await session.command(
            period(
                recorded,
                start_time=(long_ago - timedelta(hours=1)).isoformat(),
                end_time=long_ago.isoformat(),
            )
        )
        == {}
    )


# ---------------------------------------------------------------------------- the fake itself


async def test_fake_enforces_increasing_ids(fake_ha: FakeHA, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(fake_ha.url) as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": fake_ha.token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"id": 5, "type": "ping"})
        assert await ws.receive_json() == {"id": 5, "type": "pong"}
        for bad_id in (5, 4):
            await ws.send_json({"id": bad_id, "type": "ping"})
            answer = await ws.receive_json()
            assert answer["success"] is False
            assert answer["error"]["code"] == "id_reuse"
        await ws.send_json({"id": 6, "type": "whatever"})
        assert (await ws.receive_json())["error"]["code"] == "unknown_command"
        # Like HA, an unknown command does not consume the id.
        await ws.send_json({"id": 6, "type": "ping"})
        assert await ws.receive_json() == {"id": 6, "type": "pong"}
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["error"]["code"] == "invalid_format"
        await ws.send_json([{"id": 7, "type": "ping"}, {"id": 8, "type": "ping"}])
        assert await ws.receive_json() == {"id": 7, "type": "pong"}
        assert await ws.receive_json() == {"id": 8, "type": "pong"}
        await ws.send_json({"id": 9, "type": "subscribe_events"})
        assert (await ws.receive_json())["success"] is True
        await ws.send_json({"id": 10, "type": "unsubscribe_events", "subscription": 9})
        assert (await ws.receive_json())["success"] is True
        await ws.send_json({"id": 11, "type": "unsubscribe_events", "subscription": 9})
        assert (await ws.receive_json())["error"]["code"] == "not_found"
    assert fake_ha.connections[0].subscriptions == ["*"]


async def test_fake_rest_api(fake_ha: FakeHA, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": f"Bearer {fake_ha.token}"}
    async with http.get(f"{fake_ha.http_url}/api/", headers=headers) as resp:
        assert resp.status == 200
        assert await resp.json() == {"message": "API running."}
    async with http.get(f"{fake_ha.http_url}/api/config", headers=headers) as resp:
        assert (await resp.json())["location_name"] == "Remote Home"
    async with http.get(f"{fake_ha.http_url}/api/config") as resp:
        assert resp.status == 401
    fake_ha.http_status = 503
    async with http.get(f"{fake_ha.http_url}/api/", headers=headers) as resp:
        assert resp.status == 503


async def test_fake_drop_after_auth_and_wait(fake_ha: FakeHA, connect: Connect) -> None:
    fake_ha.drop_after_auth = True
    session = await connect()
    await session.subscribe_events("state_changed")
    await fake_ha.wait_for_connections(1)
    err = await closed_with(session)
    assert type(err) is HaRemoteGoingAwayError
    with pytest.raises(TimeoutError):
        await fake_ha.wait_for_connections(2, timeout=0.05)


async def test_redirect_to_another_origin_is_not_followed_with_the_token(
    fake_ha: FakeHA, make_session: MakeSession
) -> None:
    """A redirect to another host, port or scheme would carry the token there: refused."""
    target = fake_ha.url.replace("ws://", "http://")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(target)

    app = web.Application()
    app.router.add_get("/api/websocket", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        err = await connect_error(make_session, url=f"ws://127.0.0.1:{port}/api/websocket")
    finally:
        await runner.cleanup()
    assert type(err) is HaNotHomeAssistantError
    assert "redirected" in str(err)
    # The token never left: nothing authenticated (or failed to) on the other server.
    assert fake_ha.auth_ok_count == fake_ha.auth_invalid_count == 0
