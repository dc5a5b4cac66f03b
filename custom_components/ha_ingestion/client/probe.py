"""Readiness probe: is anything listening on the remote's port? Costs the remote nothing.

A TCP connect that is closed at once, with no TLS and no HTTP: a host that is down or restarting
answers it with a reset from its kernel, a running one with an accept its web server never sees a
request on. The engine uses it while it waits, to notice within a second that a restarting
remote is back instead of waiting out a backoff window or an open circuit breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from enum import StrEnum
import errno
import re

import yarl

# Errors of a connect that reached no listener: the host said "nothing here" at once.
NOT_LISTENING = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
)
_ERRNO = re.compile(r"\[Errno (\d+)\]")


class ProbeResult(StrEnum):
    """What one readiness probe found."""

    DOWN = "down"  # refused or no route: nothing listens (down or restarting)
    OPEN = "open"  # the port accepted a connection
    SILENT = "silent"  # no answer in time (frozen host, black-holed network)


type Probe = Callable[[str, int, float], Awaitable[ProbeResult]]


def not_listening(err: OSError) -> bool:
    """The connect failed because nothing listens there (also for several addresses at once)."""
    if err.errno is not None:
        return err.errno in NOT_LISTENING
    # asyncio joins the errors of every address of a host name into one message.
    found = [int(n) for n in _ERRNO.findall(str(err))]
    return bool(found) and all(n in NOT_LISTENING for n in found)


def probe_target(url: str) -> tuple[str, int]:
    """Host and TCP port of a ws:// or wss:// URL."""
    parsed = yarl.URL(url)
    port = parsed.port or (443 if parsed.scheme == "wss" else 80)
    return parsed.host or "", port


async def tcp_probe(host: str, port: int, limit: float) -> ProbeResult:
    """Open a TCP connection to `host:port` and close it at once; SILENT after `limit` s."""
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult.SILENT
    except OSError as err:
        return ProbeResult.DOWN if not_listening(err) else ProbeResult.SILENT
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult.OPEN
