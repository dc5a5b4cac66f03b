"""FaultProxy against a small echo server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import time

import pytest

from tests.harness.proxy import FaultProxy, ProxyThread

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(20)]


class EchoServer:
    """Echoes every byte; remembers how each connection ended."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.open = 0
        self.endings: list[str] = []
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self._writers.add(writer)
        ending = "eof"
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionResetError:
            ending = "reset"
        except OSError as err:
            ending = f"error {err!r}"
        finally:
            self.open -= 1
            self.endings.append(ending)
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        async with asyncio.timeout(5):
            await self.server.wait_closed()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(echo.port) as fault_proxy:
        yield fault_proxy


@contextlib.asynccontextmanager
async def connect(
    proxy: FaultProxy,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(*proxy.address)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, timeout: float = 2
) -> bytes:
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(timeout):
        return await reader.readexactly(len(data))


async def wait_for(predicate, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def test_pass_through_small_and_large(proxy: FaultProxy) -> None:
    async with connect(proxy) as (reader, writer):
        assert await roundtrip(reader, writer, b"hello") == b"hello"
        payload = bytes(range(256)) * 4096  # 1 MiB
        assert await roundtrip(reader, writer, payload) == payload
    assert proxy.stats.accepted == 1
    assert proxy.stats.bytes_up == proxy.stats.bytes_down == 5 + len(payload)


async def test_clean_close_is_forwarded(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*proxy.address)
    assert await roundtrip(reader, writer, b"bye") == b"bye"
    writer.write_eof()
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()
    await wait_for(lambda: proxy.active_connections == 0)
    assert echo.endings == ["eof"]


async def test_latency_applies_both_ways_per_chunk(proxy: FaultProxy) -> None:
    async with connect(proxy) as (reader, writer):
        await roundtrip(reader, writer, b"warm")
        proxy.latency = 0.1
        began = time.monotonic()
        for chunk in (b"a", b"b", b"c"):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.02)
        async with asyncio.timeout(2):
            assert await reader.readexactly(3) == b"abc"
        elapsed = time.monotonic() - began
    # 0.1 s each way; chunks are pipelined, not serialized (that would be 0.6 s).
    assert 0.2 <= elapsed < 0.45, elapsed


async def test_bandwidth_paces_each_direction(proxy: FaultProxy) -> None:
    async with connect(proxy) as (reader, writer):
        proxy.bandwidth = 100_000
        began = time.monotonic()
        assert await roundtrip(reader, writer, b"x" * 30_000, timeout=3) == b"x" * 30_000
        elapsed = time.monotonic() - began
    assert 0.25 <= elapsed < 1.5, elapsed


async def test_blackhole_keeps_sockets_and_drops_bytes(proxy: FaultProxy) -> None:
    async with connect(proxy) as (reader, writer):
        await roundtrip(reader, writer, b"before")
        proxy.blackhole()
        writer.write(b"lost")
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await reader.read(1)
        assert not reader.at_eof()
        assert proxy.active_connections == 1
        assert proxy.stats.bytes_dropped >= 4
        proxy.blackhole(False)
        assert await roundtrip(reader, writer, b"after") == b"after"


async def test_blackhole_hides_a_close_until_it_ends(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await asyncio.open_connection(*proxy.address)
    await roundtrip(reader, writer, b"x")
    proxy.blackhole()
    writer.close()
    await asyncio.sleep(0.1)
    assert echo.open == 1  # the server was not told
    proxy.blackhole(False)  # the path is back: the server's side is reset
    await wait_for(lambda: echo.open == 0)
    assert echo.endings == ["reset"]
    assert proxy.active_connections == 0


async def test_reset_mid_stream_sends_rst(proxy: FaultProxy, echo: EchoServer) -> None:
    async with connect(proxy) as (reader, writer):
        await roundtrip(reader, writer, b"x")
        assert proxy.reset_connections() == 1
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(2):
                await reader.read(1)
    await wait_for(lambda: echo.open == 0)
    assert echo.endings == ["reset"]
    # The proxy itself goes on accepting.
    async with connect(proxy) as (reader, writer):
        assert await roundtrip(reader, writer, b"again") == b"again"


async def test_refuse_new_connections_keeps_current_ones(proxy: FaultProxy) -> None:
    async with connect(proxy) as (reader, writer):
        await proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(*proxy.address)
        assert await roundtrip(reader, writer, b"still") == b"still"
        await proxy.refuse(False)
        async with connect(proxy) as (reader2, writer2):
            assert await roundtrip(reader2, writer2, b"back") == b"back"


async def test_pass_through_clears_every_fault(proxy: FaultProxy) -> None:
    proxy.latency = 1.0
    proxy.bandwidth = 10
    proxy.blackhole()
    await proxy.refuse()
    await proxy.pass_through()
    async with connect(proxy) as (reader, writer):
        assert await roundtrip(reader, writer, b"clean" * 100, timeout=1) == b"clean" * 100


async def test_max_connections_resets_the_extra_one(echo: EchoServer) -> None:
    async with FaultProxy(echo.port, max_connections=1) as proxy, connect(proxy) as (r1, w1):
        await roundtrip(r1, w1, b"one")
        reader, writer = await asyncio.open_connection(*proxy.address)
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(2):
                assert await reader.read(1) == b""
        writer.close()
        assert proxy.stats.rejected == 1


async def test_unreachable_target_resets_the_client(echo: EchoServer) -> None:
    port = echo.port
    await echo.stop()
    async with FaultProxy(port, connect_timeout=1) as proxy:
        reader, writer = await asyncio.open_connection(*proxy.address)
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(2):
                assert await reader.read(1) == b""
        writer.close()
        assert proxy.stats.upstream_failures == 1


async def test_stop_closes_everything(echo: EchoServer) -> None:
    proxy = await FaultProxy(echo.port).start()
    clients = [await asyncio.open_connection(*proxy.address) for _ in range(3)]
    for reader, writer in clients:
        await roundtrip(reader, writer, b"x")
    proxy.latency = 5.0  # queued, delayed bytes must not keep anything alive
    clients[0][1].write(b"late")
    await proxy.stop()
    assert proxy.active_connections == 0
    for reader, writer in clients:
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(2):
                assert await reader.read() == b""
        writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*proxy.address)
    await wait_for(lambda: echo.open == 0)


async def test_proxy_thread_forwards_refuses_resets_and_closes(echo: EchoServer) -> None:
    """The same proxy on a thread of its own: faults applied from this loop, then closed."""
    threaded = ProxyThread(echo.port)
    try:
        address = ("127.0.0.1", threaded.port)
        reader, writer = await asyncio.open_connection(*address)
        assert await roundtrip(reader, writer, b"over there") == b"over there"
        await threaded.refuse()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(*address)
        assert await threaded.reset_connections() == 1
        with pytest.raises(ConnectionResetError):  # the RST ends the live connection
            async with asyncio.timeout(2):
                await reader.read()
        writer.transport.abort()
        await threaded.refuse(False)
        reader, writer = await asyncio.open_connection(*address)
        assert await roundtrip(reader, writer, b"back") == b"back"
        writer.transport.abort()
    finally:
        threaded.close()
    threaded.close()  # idempotent
    assert not threaded._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", threaded.port)
