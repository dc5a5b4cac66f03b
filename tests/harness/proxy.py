"""A fault-injecting asyncio TCP proxy on 127.0.0.1, switchable while a test runs.

    client <-> FaultProxy(listen 127.0.0.1:port) <-> target host:port

Faults (any combination, changed at any moment; they apply to live and new connections):

- `blackhole(True)`: sockets stay open, every byte is dropped both ways (also a FIN: a side that
  closes during the blackhole is not told to the other side; leaving the blackhole then resets
  such half-dead connections, as the peer's kernel would answer a retransmission).
- `latency = s`: each chunk is delivered `s` seconds after it was read, in order, both ways
  (a round trip gains 2 * s); throughput is not limited by it.
- `bandwidth = bytes/s`: each direction is paced to that rate (None: unlimited).
- `reset_connections()`: aborts every current connection with an RST (SO_LINGER 0) on both sides.
- `await refuse(True)`: closes the listening socket, so new connections are refused by the kernel;
  current connections go on. `await refuse(False)` listens on the same port again.
- `await pass_through()`: back to a faithful proxy.

Bounded: at most `max_connections` at once (more are reset), an upstream connect timeout,
bounded queues; `stop()` aborts everything and awaits every task it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
import contextlib
from dataclasses import dataclass
import logging
import socket
import struct
import threading
from typing import Any, Self

_LOGGER = logging.getLogger(__name__)

_EOF = b""
_QUEUE_CHUNKS = 256


@dataclass
class ProxyStats:
    """Counters since the proxy started."""

    accepted: int = 0
    rejected: int = 0
    upstream_failures: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    bytes_dropped: int = 0


def _rst(writer: asyncio.StreamWriter) -> None:
    """Abort the connection so the peer gets an RST, not a FIN."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Connection:
    """One proxied connection: two directions, each a reader task and a writer task."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.up_reader, self.up_writer = upstream
        self.half_dead = False
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        up: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)
        down: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)
        self.tasks = [
            asyncio.create_task(self._read(self.client_reader, up), name="proxy read up"),
            asyncio.create_task(self._write(up, self.up_writer, "up"), name="proxy write up"),
            asyncio.create_task(self._read(self.up_reader, down), name="proxy read down"),
            asyncio.create_task(
                self._write(down, self.client_writer, "down"), name="proxy write down"
            ),
        ]
        try:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for writer in (self.client_writer, self.up_writer):
                writer.close()

    async def _read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(proxy.chunk_size)
                if proxy.blackholed:
                    if not data:
                        self.half_dead = True  # nobody will be told; see FaultProxy.blackhole
                        return
                    proxy.stats.bytes_dropped += len(data)
                    continue
                await queue.put((loop.time() + proxy.latency, data))
                if not data:
                    return
        except ConnectionError, OSError:
            self.abort()

    async def _write(
        self,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        next_free = loop.time()
        try:
            while True:
                due, data = await queue.get()
                if (delay := due - loop.time()) > 0:
                    await asyncio.sleep(delay)
                if data is _EOF or not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    else:
                        writer.close()
                    return
                if proxy.blackholed:
                    proxy.stats.bytes_dropped += len(data)
                    continue
                view = memoryview(data)
                while view:
                    rate = proxy.bandwidth
                    if rate:
                        piece = view[: max(1, rate // 20)]
                        now = loop.time()
                        next_free = max(next_free, now)
                        if next_free > now:
                            await asyncio.sleep(next_free - now)
                        next_free += len(piece) / rate
                    else:
                        piece = view
                    writer.write(piece)
                    await writer.drain()
                    if direction == "up":
                        proxy.stats.bytes_up += len(piece)
                    else:
                        proxy.stats.bytes_down += len(piece)
                    view = view[len(piece) :]
        except ConnectionError, OSError:
            self.abort()

    def abort(self) -> None:
        """RST both sides and stop every task of this connection."""
        for writer in (self.client_writer, self.up_writer):
            _rst(writer)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


class FaultProxy:
    """See the module docstring."""

    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
        chunk_size: int = 64 * 1024,
    ) -> None:
        """Prepare; `start()` listens."""
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.chunk_size = chunk_size
        self.latency = 0.0
        self.bandwidth: int | None = None
        self.stats = ProxyStats()
        self._blackholed = False
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopped = False

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> Self:
        """Listen; `port` is known afterwards."""
        await self._listen()
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True, backlog=64
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def stop(self) -> None:
        """Stop listening, reset every connection and await every task."""
        self._stopped = True
        await self._close_listener()
        for conn in list(self._connections):
            conn.abort()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            async with asyncio.timeout(5):
                await asyncio.gather(*handlers, return_exceptions=True)

    async def __aenter__(self) -> Self:
        """`async with FaultProxy(port) as proxy:`."""
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect."""
        return (self.host, self.port)

    def url(self, scheme: str = "ws", path: str = "/api/websocket") -> str:
        """A URL through the proxy."""
        return f"{scheme}://{self.host}:{self.port}{path}"

    @property
    def active_connections(self) -> int:
        """Connections being proxied right now."""
        return len(self._connections)

    # ------------------------------------------------------------------ faults

    @property
    def blackholed(self) -> bool:
        """Bytes are being dropped."""
        return self._blackholed

    def blackhole(self, enabled: bool = True) -> None:
        """Drop every byte both ways (True) or forward again (False, resets half-dead ones)."""
        self._blackholed = enabled
        if not enabled:
            for conn in list(self._connections):
                if conn.half_dead:
                    conn.abort()
                    self.stats.resets += 1

    def reset_connections(self) -> int:
        """Abort every current connection with an RST; returns how many."""
        conns = list(self._connections)
        for conn in conns:
            conn.abort()
        self.stats.resets += len(conns)
        return len(conns)

    @property
    def refusing(self) -> bool:
        """New connections are refused."""
        return self._refusing

    async def refuse(self, enabled: bool = True) -> None:
        """Refuse new connections (close the listener) or accept them again (same port)."""
        if enabled == self._refusing:
            return
        self._refusing = enabled
        if enabled:
            await self._close_listener()
        elif not self._stopped:
            await self._listen()

    async def pass_through(self) -> None:
        """No faults at all."""
        self.latency = 0.0
        self.bandwidth = None
        self.blackhole(False)
        await self.refuse(False)

    # ------------------------------------------------------------------ connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopped or len(self._connections) >= self.max_connections:
            self.stats.rejected += 1
            _rst(writer)
            return
        self.stats.accepted += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                upstream = await asyncio.open_connection(*self.target)
        except (OSError, TimeoutError) as err:
            _LOGGER.debug("proxy: upstream %s:%s failed: %r", *self.target, err)
            self.stats.upstream_failures += 1
            _rst(writer)
            return
        conn = _Connection(self, (reader, writer), upstream)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)


class ProxyThread:
    """A `FaultProxy` on an event loop of its own thread, for fixtures that outlive one test.

    A test's event loop ends with the test; this proxy keeps forwarding between tests (a module's
    links stay up). Its faults are applied on its own loop: `await refuse()`,
    `await reset_connections()`; `close()` stops it and ends the thread.
    """

    def __init__(self, target_port: int, **kwargs: Any) -> None:
        """Start the thread and the proxy (listening when this returns)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault proxy thread", daemon=True
        )
        self._thread.start()
        self.proxy = FaultProxy(target_port, **kwargs)
        self._run(self.proxy.start())

    @property
    def port(self) -> int:
        """Where clients connect."""
        return self.proxy.port

    def _run[T](self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _call[T](self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def refuse(self, enabled: bool = True) -> None:
        """`FaultProxy.refuse` on the proxy's loop."""
        await self._call(self.proxy.refuse(enabled))

    async def reset_connections(self) -> int:
        """`FaultProxy.reset_connections` on the proxy's loop."""

        async def reset() -> int:
            return self.proxy.reset_connections()

        return await self._call(reset())

    def close(self) -> None:
        """Stop the proxy, then its loop and thread."""
        if self._loop.is_closed():
            return
        try:
            self._run(self.proxy.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
