"""One token's gate: every connection that sends the token passes it; a rejection closes it for good.

Each failed login counts towards the remote's IP ban, so a token the remote rejected is never sent
again, by any connection that holds the same gate (`ConnectionConfig.token_gate`). A session takes
the gate's turn after `auth_required` and keeps it until the remote's answer: at most one
authentication with the token is in flight, and one that waited for a rejection never sends.
The gate only ever closes; a new token gets a new gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import hashlib
import logging
from typing import Self

from .errors import HaAuthenticationError

_LOGGER = logging.getLogger(__name__)

type GateListener = Callable[[], None]

REJECTED_BEFORE = "the remote rejected this token before: not sent again"


def token_fingerprint(token: str) -> str:
    """A short one-way fingerprint of a token: enough to recognise it, useless to anyone else."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class TokenGate:
    """Whether one token may still be sent, shared by every connection that uses it."""

    def __init__(self, token: str, *, rejected: bool = False) -> None:
        """A gate for `token` (only its fingerprint is kept), closed when already `rejected`."""
        self.fingerprint = token_fingerprint(token)
        self._closed = rejected
        self._lock = asyncio.Lock()
        self._listeners: list[GateListener] = []

    def __repr__(self) -> str:
        """The state, never the token."""
        return f"TokenGate({'closed' if self._closed else 'open'})"

    def __copy__(self) -> Self:
        """One gate per token: copies of a config share it."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        """One gate per token: `dataclasses.asdict` and deep copies share it too."""
        return self

    @property
    def closed(self) -> bool:
        """The remote rejected the token: it is not sent again."""
        return self._closed

    def matches(self, token: str) -> bool:
        """This gate is `token`'s."""
        return self.fingerprint == token_fingerprint(token)

    def add_listener(self, listener: GateListener) -> Callable[[], None]:
        """Call `listener()` once when the gate closes; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def close(self) -> None:
        """The token was rejected: close for good and tell the listeners (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for listener in tuple(self._listeners):
            try:
                listener()
            except Exception:
                _LOGGER.exception("Error in token gate listener")

    def check(self) -> None:
        """Raise the rejection's `HaAuthenticationError` when the gate is closed."""
        if self._closed:
            raise HaAuthenticationError(REJECTED_BEFORE)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """The one authentication in flight with this token: from before `auth` to the answer.

        Raises `HaAuthenticationError` (nothing may be sent) when the gate is, or closed while
        waiting for the turn.
        """
        async with self._lock:
            self.check()
            yield
