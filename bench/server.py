"""A minimal Home Assistant WebSocket API server for the benchmarks.

Run as its own process (`python -m bench.server --events N`) so that its CPU does not count against
the client being measured. It prints one JSON line, `{"port": ..., "control": ..., "pid": ...}`, and
then serves:

- `ws://127.0.0.1:<port>/api/websocket`: auth_required -> auth -> auth_ok; supported_features,
  get_config, auth/current_user, subscribe_events, ping -> pong. With `--events N`, every
  subscription is followed (after `--delay` seconds) by N pre-encoded `state_changed` frames,
  written as fast as the socket takes them (whole WebSocket frames straight to the transport, with
  flow control), or paced at `--rate` events/s.
- `http://127.0.0.1:<control>/`: `POST /down` (stop listening, drop every connection), `POST /up`
  (listen again on the same port), `GET /stats`, `POST /reset`.

Freezing is done from outside with SIGSTOP / SIGCONT: the kernel keeps the sockets, nobody reads or
answers, exactly like a frozen host.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
import contextlib
import json
import os
import signal
import time
from typing import Any

from aiohttp import WSMsgType, web
import orjson

from . import frames

TOKEN = "bench-token"  # noqa: S105 - a local test server's token
HA_VERSION = "2025.4.4"
_CONFIG = {
    "location_name": "Bench Home",
    "version": HA_VERSION,
    "time_zone": "Europe/Amsterdam",
    "unit_system": {"length": "km", "mass": "g", "temperature": "°C", "volume": "L"},
    "latitude": 52.37,
    "longitude": 4.89,
    "elevation": 0,
    "components": ["api", "websocket_api", "sensor", "light"],
    "external_url": None,
    "internal_url": "http://127.0.0.1:8123",
    "state": "RUNNING",
}
_USER = {"id": "0123456789abcdef0123456789abcdef", "name": "Bench", "is_owner": True}


class BenchServer:
    """The protocol server, its listener on a fixed port and the statistics the benchmarks read."""

    def __init__(
        self, *, events: int, seed: int, token: str, rate: float = 0.0, delay: float = 0.0
    ) -> None:
        """Pre-encode `events` event bodies (framed lazily per subscription id, then cached)."""
        self.token = token
        self.rate = rate
        self.delay = delay
        self.bodies = frames.event_bodies(events, seed) if events else []
        self._chunks: dict[tuple[int, int], list[bytes]] = {}
        self.transports: set[asyncio.BaseTransport] = set()
        self.upgrades: list[float] = []
        self.commands: Counter[str] = Counter()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ listener

    async def setup(self, port: int = 0) -> None:
        """Create the app and listen."""
        app = web.Application()
        app.router.add_get("/api/websocket", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self.port = port
        await self.up()

    async def up(self) -> float:
        """Listen (again) on the same port; return the monotonic time it listens from."""
        if self._listener is None:
            assert self._runner is not None
            assert self._runner.server is not None
            loop = asyncio.get_running_loop()
            self._listener = await loop.create_server(
                self._runner.server, "127.0.0.1", self.port, reuse_address=True, backlog=1024
            )
            self.port = self._listener.sockets[0].getsockname()[1]
        return time.monotonic()

    async def down(self) -> float:
        """Stop listening and drop every connection; return the monotonic time it happened."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for transport in list(self.transports):
            transport.abort()  # type: ignore[attr-defined]
        self.transports.clear()
        stamp = time.monotonic()
        if listener is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await listener.wait_closed()
        return stamp

    async def cleanup(self) -> None:
        """Stop everything."""
        await self.down()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ protocol

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.upgrades.append(time.monotonic())
        ws = web.WebSocketResponse(autoping=True, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        transport = request.transport
        if transport is not None:
            self.transports.add(transport)
        streamer: asyncio.Task[None] | None = None
        try:
            await ws.send_str(f'{{"type":"auth_required","ha_version":"{HA_VERSION}"}}')
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                return ws
            auth = orjson.loads(msg.data)
            if auth.get("type") != "auth" or auth.get("access_token") != self.token:
                await ws.send_str('{"type":"auth_invalid","message":"Invalid access token"}')
                await ws.close()
                return ws
            await ws.send_str(f'{{"type":"auth_ok","ha_version":"{HA_VERSION}"}}')
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                data = orjson.loads(msg.data)
                for item in data if isinstance(data, list) else (data,):
                    kind = item.get("type")
                    self.commands[kind] += 1
                    await ws.send_str(orjson.dumps(_answer(item)).decode())
                    if kind == "subscribe_events" and self.bodies and streamer is None:
                        streamer = asyncio.create_task(self._stream(request, item["id"]))
        finally:
            if transport is not None:
                self.transports.discard(transport)
            if streamer is not None:
                streamer.cancel()
        return ws

    async def _stream(self, request: web.Request, subscription_id: int) -> None:
        """Write the pre-framed events: as fast as the socket takes them, or paced at `rate`.

        Unpaced, chunks of about 64 KB are written and the writer waits only when the socket
        pushes back. Paced, one chunk per 10 ms tick, each holding the events due by then.
        """
        per_chunk = max(1, round(self.rate / 100)) if self.rate else 0
        key = (subscription_id, per_chunk)
        chunks = self._chunks.get(key)
        if chunks is None:
            chunks = self._chunks[key] = frames.framed_chunks(
                self.bodies, subscription_id, frames_per_chunk=per_chunk
            )
        delay = float(request.query.get("delay", self.delay))
        if delay:
            await asyncio.sleep(delay)
        transport = request.transport
        protocol = request.protocol
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = per_chunk / self.rate if self.rate else 0.0
        for n, chunk in enumerate(chunks):
            if transport is None or transport.is_closing():
                return
            if tick:
                wait = started + n * tick - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            transport.write(chunk)
            await protocol._drain_helper()

    # ------------------------------------------------------------------ control

    def control_app(self) -> web.Application:
        """The control API."""
        app = web.Application()

        async def down(_: web.Request) -> web.Response:
            return web.json_response({"t": await self.down()})

        async def up(_: web.Request) -> web.Response:
            return web.json_response({"t": await self.up()})

        async def stats(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "now": time.monotonic(),
                    "up": self._listener is not None,
                    "port": self.port,
                    "active": len(self.transports),
                    "upgrades": self.upgrades,
                    "commands": dict(self.commands),
                }
            )

        async def reset(_: web.Request) -> web.Response:
            self.upgrades.clear()
            self.commands.clear()
            return web.json_response({"t": time.monotonic()})

        app.router.add_post("/down", down)
        app.router.add_post("/up", up)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        return app


def _answer(item: dict[str, Any]) -> dict[str, Any]:
    msg_id = item.get("id")
    kind = item.get("type")
    if kind == "ping":
        return {"id": msg_id, "type": "pong"}
    result: Any
    if kind in ("supported_features", "subscribe_events"):
        result = None
    elif kind == "get_config":
        result = _CONFIG
    elif kind == "auth/current_user":
        result = _USER
    else:
        return {
            "id": msg_id,
            "type": "result",
            "success": False,
            "error": {"code": "unknown_command", "message": "Unknown command."},
        }
    return {"id": msg_id, "type": "result", "success": True, "result": result}


async def _main(args: argparse.Namespace) -> None:
    server = BenchServer(
        events=args.events, seed=args.seed, token=args.token, rate=args.rate, delay=args.delay
    )
    await server.setup(args.port)
    control = web.AppRunner(server.control_app(), handle_signals=False, access_log=None)
    await control.setup()
    site = web.TCPSite(control, "127.0.0.1", 0)
    await site.start()
    control_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(
        json.dumps({"port": server.port, "control": control_port, "pid": os.getpid()}), flush=True
    )
    await stop.wait()
    await server.cleanup()
    await control.cleanup()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__)
    parser.add_argument("--events", type=int, default=0, help="events streamed per subscription")
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: unpaced)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before streaming")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=TOKEN)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
