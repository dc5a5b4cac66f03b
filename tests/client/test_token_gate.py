"""The token gate: one authentication with a token in flight; after a rejection, none at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import copy
from dataclasses import asdict, replace

import aiohttp
import pytest

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    ConnectionConfig,
    EngineConfig,
    HaAuthenticationError,
    HaConnectionClosedError,
    HaWebSocketSession,
    LinkEngine,
    LinkState,
    TokenGate,
    token_fingerprint,
)
from custom_components.ha_ingestion.client.token_gate import REJECTED_BEFORE
from tests.fake_ha import FakeHA

REVOKED = "revoked-token"


@pytest.fixture
async def http() -> AsyncGenerator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    try:
        yield session
    finally:
        await session.close()


def _config(fake_ha: FakeHA, token: str, gate: TokenGate | None) -> ConnectionConfig:
    return ConnectionConfig(url=fake_ha.url, token=token, token_gate=gate, connect_timeout=10)


async def _connect(http: aiohttp.ClientSession, config: ConnectionConfig) -> HaWebSocketSession:
    session = HaWebSocketSession(http, config)
    try:
        await session.connect()
    except BaseException:
        await session.close()
        raise
    return session


# ---------------------------------------------------------------------------- the gate itself


def test_gate_state_listeners_and_copies() -> None:
    gate = TokenGate("good-token")
    assert not gate.closed
    assert gate.matches("good-token")
    assert not gate.matches("other")
    assert gate.fingerprint == token_fingerprint("good-token")
    assert "good-token" not in repr(gate)
    assert repr(gate) == "TokenGate(open)"
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    gate.add_listener(broken)
    remove = gate.add_listener(lambda: calls.append("removed"))
    gate.add_listener(lambda: calls.append("second"))
    remove()
    gate.close()
    gate.close()  # once only
    assert gate.closed
    assert calls == ["broken", "second"]  # a broken listener does not stop the others
    assert repr(gate) == "TokenGate(closed)"
    with pytest.raises(HaAuthenticationError, match="not sent again"):
        gate.check()
    assert TokenGate("t", rejected=True).closed


def test_config_shares_its_gate_and_refuses_another_tokens() -> None:
    gate = TokenGate("good-token")
    config = ConnectionConfig(url="ws://x", token="good-token", token_gate=gate)
    assert replace(config, max_msg_size=1000).token_gate is gate  # e.g. the history session's
    assert copy.deepcopy(config).token_gate is gate
    assert copy.copy(gate) is gate
    assert asdict(config)["token_gate"] is gate
    assert config == ConnectionConfig(url="ws://x", token="good-token")
    assert "token_gate" not in repr(config)
    with pytest.raises(ValueError, match="another token"):
        ConnectionConfig(url="ws://x", token="other", token_gate=gate)


# ---------------------------------------------------------------------------- sessions


async def test_two_sessions_at_once_send_a_rejected_token_once(
    fake_ha: FakeHA, http: aiohttp.ClientSession
) -> None:
    """The 2 ms race: both got auth_required; the one that waited for the answer never sends."""
    fake_ha.auth_answer_delay = 0.3  # the first authentication is in flight for a while
    gate = TokenGate(REVOKED)
    config = _config(fake_ha, REVOKED, gate)
    results = await asyncio.gather(
        _connect(http, config), _connect(http, config), return_exceptions=True
    )
    assert all(isinstance(result, HaAuthenticationError) for result in results), results
    assert fake_ha.upgrade_count == 2  # both were connected, both were greeted
    assert fake_ha.auth_messages == 1  # one `auth` reached the remote
    assert fake_ha.auth_invalid_count == 1
    assert gate.closed
    messages = sorted(str(result) for result in results)
    assert messages == sorted(["Invalid access token or password", REJECTED_BEFORE])


async def test_closed_gate_sends_nothing(fake_ha: FakeHA, http: aiohttp.ClientSession) -> None:
    gate = TokenGate(fake_ha.token, rejected=True)  # even a token the remote would take
    with pytest.raises(HaAuthenticationError, match="not sent again"):
        await _connect(http, _config(fake_ha, fake_ha.token, gate))
    assert fake_ha.tcp_accept_count == fake_ha.upgrade_count == 0
    assert fake_ha.auth_messages == 0


async def test_gate_closing_while_waiting_for_the_turn(
    fake_ha: FakeHA, http: aiohttp.ClientSession
) -> None:
    """A session already greeted, waiting for the turn, sends nothing once the gate closes."""
    gate = TokenGate(fake_ha.token)
    config = _config(fake_ha, fake_ha.token, gate)
    async with gate.turn():  # another connection's authentication in flight
        waiting = asyncio.create_task(_connect(http, config))
        await fake_ha.wait_for(lambda: fake_ha.upgrade_count == 1)
        await asyncio.sleep(0.1)
        assert not waiting.done()
        gate.close()  # that one was rejected
    with pytest.raises(HaAuthenticationError, match="not sent again"):
        await waiting
    assert fake_ha.auth_messages == 0


async def test_accepted_token_keeps_the_gate_open(
    fake_ha: FakeHA, http: aiohttp.ClientSession
) -> None:
    """Authentications take turns; after auth_ok the next one sends (and is accepted) too."""
    fake_ha.auth_answer_delay = 0.2
    gate = TokenGate(fake_ha.token)
    config = _config(fake_ha, fake_ha.token, gate)
    sessions = await asyncio.gather(_connect(http, config), _connect(http, config))
    assert fake_ha.auth_ok_count == 2
    assert not gate.closed
    for session in sessions:
        await session.close()


async def test_lost_answer_releases_the_turn(fake_ha: FakeHA, http: aiohttp.ClientSession) -> None:
    """No answer (the connection dropped) is no rejection: the gate stays open, the turn free."""
    gate = TokenGate(fake_ha.token)
    config = _config(fake_ha, fake_ha.token, gate)
    fake_ha.auth_answer_delay = 0.3
    attempt = asyncio.create_task(_connect(http, config))
    await fake_ha.wait_for(lambda: fake_ha.auth_messages == 1)
    fake_ha.connections[0].abort()
    with pytest.raises(HaConnectionClosedError):
        await attempt
    assert not gate.closed
    fake_ha.auth_answer_delay = 0
    session = await _connect(http, config)
    assert session.connected
    await session.close()


async def test_engine_meets_a_gate_another_connection_closed(
    fake_ha: FakeHA, http: aiohttp.ClientSession
) -> None:
    """The link's next attempt after another connection's rejection: failed, nothing sent."""
    gate = TokenGate(fake_ha.token)
    engine = LinkEngine(
        http,
        EngineConfig(
            connection=_config(fake_ha, fake_ha.token, gate),
            backoff=BackoffConfig(base=0.05, max_delay=0.1),
        ),
    )
    await engine.start()
    await fake_ha.wait_for(lambda: engine.state is LinkState.CONNECTED)
    fake_ha.token = "rotated"
    with pytest.raises(HaAuthenticationError):
        await _connect(http, _config(fake_ha, engine.config.connection.token, gate))
    assert gate.closed
    rejections = fake_ha.auth_invalid_count
    await fake_ha.close_all(1000)
    await fake_ha.wait_for(lambda: engine.state is LinkState.FAILED)
    snapshot = engine.snapshot()
    assert snapshot.last_error is not None
    assert snapshot.last_error.type == "HaAuthenticationError"
    assert REJECTED_BEFORE in snapshot.last_error.message
    await engine.reconnect()  # the button: still nothing sent
    await fake_ha.wait_for(lambda: engine.state is LinkState.FAILED)
    assert fake_ha.auth_invalid_count == rejections == 1
    await engine.close()
