"""The backfill's own session against the fake remote: oversize, loss and reopening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from custom_components.ha_ingestion.capture.history_session import (
    HistorySession,
    ReplyTooLargeError,
)
from custom_components.ha_ingestion.client import (
    ConnectionConfig,
    HaAuthenticationError,
    HaCommandError,
    HaConnectionClosedError,
)
from tests.fake_ha import FakeHA


async def test_oversize_reply_ends_only_that_session_and_it_reopens(fake_ha: FakeHA) -> None:
    """A reply over the limit raises ReplyTooLargeError; the next command opens a new session."""
    moment = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(50):
        fake_ha.record_state("sensor.big", str(n), moment + timedelta(seconds=n), {"p": "x" * 100})
    config = ConnectionConfig(url=fake_ha.url, token=fake_ha.token)
    async with aiohttp.ClientSession() as http:
        link = HistorySession(http, config, reply_limit=2_000)
        history = {
            "type": "history/history_during_period",
            "start_time": (moment - timedelta(seconds=1)).isoformat(),
            "entity_ids": ["sensor.big"],
        }
        with pytest.raises(ReplyTooLargeError):
            await link.command(history)
        await fake_ha.wait_for(lambda: fake_ha.connections[0].closed)
        small = await link.command({"type": "recorder/info"})
        assert small["backlog"] == 0
        assert link.sessions_opened == 2
        with pytest.raises(HaCommandError):
            await link.command({"type": "no/such_command"})
        assert link.sessions_opened == 2  # an error result keeps the session
        await fake_ha.close_all()
        with pytest.raises(HaConnectionClosedError):
            await link.command({"type": "recorder/info"})
        assert (await link.command({"type": "recorder/info"}))["backlog"] == 0
        assert link.sessions_opened == 3
        await link.close()
        await link.close()
        await fake_ha.wait_for(lambda: all(conn.closed for conn in fake_ha.connections))


async def test_rejected_token_is_raised(fake_ha: FakeHA) -> None:
    """A token the remote rejects fails the command; no session is kept."""
    config = ConnectionConfig(url=fake_ha.url, token="wrong")
    async with aiohttp.ClientSession() as http:
        link = HistorySession(http, config, reply_limit=2_000)
        with pytest.raises(HaAuthenticationError):
            await link.command({"type": "recorder/info"})
        await link.close()


async def test_a_session_that_ended_between_commands_is_closed_before_the_next(
    fake_ha: FakeHA,
) -> None:
    """A ping went unanswered while it was idle: the session ended on our side with its socket
    still open. It is closed when it is replaced, not left for the garbage collector (which
    aiohttp reports as an "Unclosed connection" on whatever loop runs then)."""
    config = ConnectionConfig(
        url=fake_ha.url, token=fake_ha.token, heartbeat_interval=0.05, heartbeat_timeout=0.05
    )
    async with aiohttp.ClientSession() as http:
        link = HistorySession(http, config, reply_limit=100_000)
        await link.command({"type": "recorder/info"})
        first = link._session
        assert first is not None
        fake_ha.answer_pings = False
        await fake_ha.wait_for(lambda: not first.connected)
        fake_ha.answer_pings = True
        assert first._ws is not None
        assert not first._ws.closed  # ended on our side: nothing closed the socket yet
        assert (await link.command({"type": "recorder/info"}))["backlog"] == 0
        assert link.sessions_opened == 2
        assert first._ws.closed
        assert first._ws._response.connection is None  # released
        await link.close()
