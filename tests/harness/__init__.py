"""Test harness: a real Home Assistant in a subprocess and a fault-injecting TCP proxy.

Used by the end-to-end tests (tests/e2e) and by scripts/develop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from .proxy import FaultProxy
from .remote import RemoteHass, RemoteHassError


def run_sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a private event loop that is never made the current one.

    For synchronous pytest fixtures: unlike `asyncio.run`, it leaves the thread's current event
    loop (pytest-asyncio's) untouched.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


__all__ = ["FaultProxy", "RemoteHass", "RemoteHassError", "run_sync"]
