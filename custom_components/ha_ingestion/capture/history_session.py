"""The history session: the backfill's own connection, so a reply too big never costs the live link.

Home Assistant's WebSocket API cannot bound a history reply (no limit or paging argument), and a
frame above the client's maximum message size ends the connection it arrives on. History is
therefore read over a second, short-lived session (no subscriptions) whose maximum message size is
the backfill's reply budget: an oversize reply ends only that session, the request is split and
the session opened again; the live link never notices. The session is closed when the backfill
ends.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp

from ..client import (  # noqa: TID252 - the package's engine
    ConnectionConfig,
    HaClientError,
    HaProtocolError,
    HaWebSocketSession,
)


class ReplyTooLargeError(HaClientError):
    """The remote's reply exceeded the reply budget (the backfill session was closed)."""


class HistorySession:
    """Commands over a session of its own, opened on first use and after every loss."""

    def __init__(
        self, http: aiohttp.ClientSession, config: ConnectionConfig, reply_limit: int
    ) -> None:
        """`reply_limit`: the largest reply (bytes) accepted; bigger ones raise ReplyTooLargeError."""
        self._http = http
        self._config = replace(config, max_msg_size=reply_limit)
        self._session: HaWebSocketSession | None = None
        self.sessions_opened = 0
        self.requests = 0

    async def command(self, payload: dict[str, Any]) -> Any:
        """Run one command; the session is (re)opened when needed."""
        session = self._session
        if session is not None and not session.connected:
            # It ended by itself between two commands (the remote closed it, a ping went
            # unanswered): its socket is released now, not left to the garbage collector.
            self._session = None
            await session.close()
            session = None
        if session is None:
            session = HaWebSocketSession(self._http, self._config)
            self._session = session
            self.sessions_opened += 1
            try:
                await session.connect()
            except HaClientError:
                self._session = None
                raise
        self.requests += 1
        try:
            return await session.command(payload)
        except HaClientError as err:
            if not session.connected:
                self._session = None
                await session.close()
                if isinstance(err, HaProtocolError) and "oversize" in str(err):
                    raise ReplyTooLargeError(str(err)) from err
            raise

    async def close(self) -> None:
        """Close the session (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
