"""One WebSocket session with a Home Assistant: auth, features, commands, subscriptions, heartbeat.

A session is one connection. It never reconnects: the engine does. Every way the link can end
becomes one typed `HaClientError`, available from `wait_closed()`.

Over 400 lines: connect, commands, reader, heartbeat and closing share one connection's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import logging
import ssl
import time
from typing import Any

import aiohttp
import orjson
import yarl

from . import decode
from .errors import (
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
    HaUnsupportedCommandError,
)
from .models import ConnectionConfig, RemoteInfo
from .probe import not_listening
from .tasks import cancel, cancel_and_wait, create_task

_LOGGER = logging.getLogger(__name__)

type EventCallback = Callable[[dict[str, Any]], None]
# A subscribe_entities message as it came (checked where it is applied). A handler that applies a
# big message in steps returns the rest as an awaitable: the reader reads on once it is done.
type MessageCallback = Callable[[Any], Awaitable[None] | None]
type Clock = Callable[[], float]

# A frame this long is decoded in steps (`decode.loads_in_steps`; sizes: `scripts/bench decode`),
# the reader yielding to the loop after each one and before the message is handled.
DECODE_IN_STEPS_OVER = 256 * 1024
_AUTH_REJECTED = frozenset({401})
_NOT_READY = frozenset({500, 502, 503, 504})
_CLOSE_TIMEOUT = 2.0
# Close codes meaning "the peer went away": a network event rather than a protocol fault.
_ORDERLY_CLOSE = frozenset({aiohttp.WSCloseCode.OK, aiohttp.WSCloseCode.GOING_AWAY})


class HaWebSocketSession:
    """A single authenticated WebSocket connection to a Home Assistant."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        config: ConnectionConfig,
        *,
        on_event: EventCallback | None = None,
        on_unknown: Callable[[HaClientError], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """Prepare a session; nothing happens on the network until `connect()`.

        `on_event` receives each event dict synchronously from the reader: it must be cheap.
        `on_unknown` hears of messages that were ignored (unknown type), which do not end the link.
        """
        self._http = http
        self._config = config
        self._on_event = on_event
        self._on_unknown = on_unknown
        self._clock = clock
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._loop = asyncio.get_running_loop()
        self._last_id = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[int, str] = {}
        # subscribe_entities subscriptions: id -> the handler of their messages.
        self._entity_handlers: dict[int, MessageCallback] = {}
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[HaClientError] = self._loop.create_future()
        self._last_rx = 0.0
        self.ha_version: str | None = None
        self.last_ping_rtt: float | None = None
        self.remote: RemoteInfo | None = None
        # Bytes on the wire of the message being dispatched: its frame's length, shared evenly
        # by the messages of an array frame (what a consumer may count against a memory budget).
        self.message_bytes = 0

    @property
    def connected(self) -> bool:
        """Authenticated and not yet closed."""
        return self._reader is not None and not self._closed.done()

    @property
    def silence(self) -> float:
        """Seconds since the last frame received from the remote (its last sign of life).

        Any text frame counts (events, results, the heartbeat's pong) and the remote's close
        frame; not a connection that broke without one. Measured on the event loop's clock, the
        one the heartbeat reads on every frame: a duration, so a caller with another clock can
        place it on its own (its `now` minus this).
        """
        return self._loop.time() - self._last_rx

    @property
    def compression(self) -> int:
        """permessage-deflate window bits the server agreed to (0: uncompressed)."""
        return 0 if self._ws is None else int(self._ws.compress)

    @property
    def subscriptions(self) -> dict[int, str]:
        """Confirmed subscriptions: id -> event type."""
        return dict(self._subscriptions)

    # ------------------------------------------------------------------ connect

    async def connect(self) -> RemoteInfo:
        """Open, authenticate, negotiate features and read the remote's identity.

        TCP, the HTTP upgrade and authentication share one timeout (`connect_timeout`). A token
        its gate knows rejected raises `HaAuthenticationError` without a connection.
        """
        cfg = self._config
        if cfg.token_gate is not None:
            cfg.token_gate.check()
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                self._ws = await self._http.ws_connect(
                    cfg.url,
                    ssl=cfg.verify_ssl,
                    max_msg_size=cfg.max_msg_size,
                    autoping=True,
                    # permessage-deflate, as Home Assistant's server offers it (aiohttp's client
                    # asks for none by default): state JSON shrinks several times on the wire.
                    compress=15,
                    timeout=aiohttp.ClientWSTimeout(ws_close=_CLOSE_TIMEOUT),
                )
                _check_not_redirected(cfg.url, self._ws)
                await self._authenticate(self._ws)
        except TimeoutError as err:
            await self._abort()
            raise HaTimeoutError(
                f"no answer within {cfg.connect_timeout:g} s while connecting"
            ) from err
        except HaClientError:
            await self._abort()
            raise
        except aiohttp.WSServerHandshakeError as err:
            await self._abort()
            raise _handshake_error(err) from err
        except (aiohttp.ClientSSLError, ssl.SSLError) as err:
            raise HaSSLError(f"TLS failed: {err}") from err
        except aiohttp.ClientConnectorError as err:
            if not_listening(err.os_error):
                raise HaConnectionRefusedError(f"nothing listening: {err.strerror or err}") from err
            raise HaConnectionError(f"cannot connect: {err.strerror or err}") from err
        except (aiohttp.ClientError, OSError) as err:
            await self._abort()
            raise HaConnectionError(f"connection failed: {err}") from err

        self._last_rx = self._loop.time()
        self._reader = create_task(self._read_loop(self._ws), "ha_ingestion reader")
        self._heartbeat = create_task(self._heartbeat_loop(), "ha_ingestion heartbeat")
        try:
            await self.command({"type": "supported_features", "features": {"coalesce_messages": 1}})
            config = await self.command({"type": "get_config"})
            user = await self.command({"type": "auth/current_user"})
        except HaClientError:
            await self.close()
            raise
        if not isinstance(config, dict) or not isinstance(user, dict):
            await self.close()
            raise HaProtocolError("get_config or auth/current_user returned no object")
        self.remote = RemoteInfo.from_messages(config, user)
        return self.remote

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        first = await self._receive_handshake(ws)
        if first.get("type") != "auth_required":
            raise HaNotHomeAssistantError(f"expected auth_required, got {first.get('type')!r}")
        # The gate's turn from before `auth` to the answer: one authentication with the token in
        # flight; a rejection closes the gate before the turn ends, so a waiting one never sends.
        gate = self._config.token_gate
        async with contextlib.nullcontext() if gate is None else gate.turn():
            await ws.send_str(
                orjson.dumps({"type": "auth", "access_token": self._config.token}).decode()
            )
            answer = await self._receive_handshake(ws)
            kind = answer.get("type")
            if kind == "auth_invalid":
                if gate is not None:
                    gate.close()
                raise HaAuthenticationError(str(answer.get("message") or "invalid access token"))
        if kind != "auth_ok":
            raise HaProtocolError(f"expected auth_ok, got {kind!r}")
        self.ha_version = answer.get("ha_version")

    async def _receive_handshake(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        msg = await ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise _frame_error(msg, ws)
        data = _decode(msg.data)
        if not isinstance(data, dict):
            raise HaProtocolError("handshake message is not an object")
        return data

    # ------------------------------------------------------------------ commands

    async def _send(
        self, payload: dict[str, Any], msg_id: int | None = None
    ) -> asyncio.Future[Any]:
        """Send a command under `msg_id` (default: the next id); the future resolves to its result."""
        if self._ws is None or self._closed.done():
            raise HaConnectionClosedError("not connected")
        if msg_id is None:
            msg_id = self.next_id()
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[msg_id] = future
        try:
            await self._ws.send_str(orjson.dumps({**payload, "id": msg_id}).decode())
        except (aiohttp.ClientError, OSError, RuntimeError) as err:
            self._pending.pop(msg_id, None)
            error = HaConnectionClosedError(f"send failed: {err}")
            self._fail(error)
            raise error from err
        return future

    def next_id(self) -> int:
        """Reserve the next command id (ids only ever grow on a connection)."""
        self._last_id += 1
        return self._last_id

    async def command(self, payload: dict[str, Any], time_limit: float | None = None) -> Any:
        """Send one command and return its result; raise `HaCommandError` on an error result."""
        msg_id = self.next_id()
        future = await self._send(payload, msg_id)
        return await self._await_result(msg_id, future, payload, time_limit)

    async def _await_result(
        self,
        msg_id: int,
        future: asyncio.Future[Any],
        payload: dict[str, Any],
        time_limit: float | None = None,
    ) -> Any:
        limit = self._config.command_timeout if time_limit is None else time_limit
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError as err:
            raise HaTimeoutError(
                f"no result for {payload.get('type')!r} within {limit:g} s"
            ) from err
        finally:
            self._pending.pop(msg_id, None)

    async def subscribe_events(self, event_type: str) -> int:
        """Subscribe to one event type; return the subscription id once the remote confirms it."""
        payload = {"type": "subscribe_events", "event_type": event_type}
        msg_id = self.next_id()
        # Registered before sending: events may follow the confirmation in the same frame.
        self._subscriptions[msg_id] = event_type
        try:
            future = await self._send(payload, msg_id)
            await self._await_result(msg_id, future, payload)
        except HaCommandError as err:
            self._subscriptions.pop(msg_id, None)
            raise HaSubscriptionError(
                f"subscription to {event_type!r} refused: {err.message}"
            ) from err
        except BaseException:
            self._subscriptions.pop(msg_id, None)
            raise
        return msg_id

    async def subscribe_entities(self, fields: dict[str, Any], on_message: MessageCallback) -> int:
        """`subscribe_entities` with `fields` (entity_ids, include, exclude); id once confirmed.

        `on_message` receives each message of the subscription (its `a`/`c`/`r` object), the
        first one (every matching state) included. A remote without the command raises
        `HaUnsupportedCommandError`, a refusal `HaSubscriptionError`.
        """
        payload = {"type": "subscribe_entities", **fields}
        msg_id = self.next_id()
        # Registered before sending: the initial states follow the confirmation at once.
        self._entity_handlers[msg_id] = on_message
        try:
            future = await self._send(payload, msg_id)
            await self._await_result(msg_id, future, payload)
        except HaCommandError as err:
            self._entity_handlers.pop(msg_id, None)
            kind = (
                HaUnsupportedCommandError if err.code == "unknown_command" else HaSubscriptionError
            )
            raise kind(f"subscription to entities refused: {err.message}") from err
        except BaseException:
            self._entity_handlers.pop(msg_id, None)
            raise
        return msg_id

    # ------------------------------------------------------------------ reading

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = self._loop
        dispatch = self._dispatch
        text = aiohttp.WSMsgType.TEXT
        close = aiohttp.WSMsgType.CLOSE
        try:
            while True:
                msg = await ws.receive()
                if msg.type is not text:
                    if msg.type is close:  # the remote's goodbye: its last sign of life
                        self._last_rx = loop.time()
                    raise _frame_error(msg, ws)
                self._last_rx = loop.time()
                raw = msg.data
                size = len(raw)
                if size > DECODE_IN_STEPS_OVER:
                    data = await _decode_in_steps(raw)
                else:
                    data = _decode(raw)
                if type(data) is list:
                    self.message_bytes = size // (len(data) or 1)
                else:
                    self.message_bytes = size
                    data = (data,)
                for item in data:
                    if (rest := dispatch(item)) is not None:
                        await rest
        except HaClientError as err:
            self._fail(err)
        except Exception as err:  # a bug must end the link, not leave it half-alive
            _LOGGER.exception("Unexpected error in the WebSocket reader")
            self._fail(HaProtocolError(f"reader failed: {err!r}"))

    def _dispatch(self, item: Any) -> Awaitable[None] | None:
        # Bad input from the remote is reported (counted by the engine) and skipped: one odd
        # message never costs the link.
        if type(item) is not dict:
            self._skip("message is not an object")
            return None
        kind = item.get("type")
        msg_id = item.get("id")
        if type(msg_id) is not int:
            msg_id = None  # an unhashable or odd id matches nothing
        if kind == "event":
            if (handler := self._entity_handlers.get(msg_id)) is not None:  # type: ignore[arg-type]
                return handler(item.get("event"))  # checked where it is applied
            if (on_event := self._on_event) is not None and msg_id in self._subscriptions:
                event = item.get("event")
                if type(event) is not dict:
                    self._skip("event message without an event object")
                    return None
                on_event(event)
            return None
        if kind in ("result", "pong"):
            future = self._pending.pop(msg_id, None)  # type: ignore[arg-type]
            if future is None or future.done():
                return None
            if kind == "pong" or item.get("success"):
                future.set_result(item.get("result"))
            else:
                error = item.get("error")
                if type(error) is not dict:
                    error = {}
                future.set_exception(
                    HaCommandError(str(error.get("code", "unknown")), str(error.get("message", "")))
                )
            return None
        self._skip(f"ignored message of unknown type {str(kind)[:64]!r}")
        return None

    def _skip(self, reason: str) -> None:
        if self._on_unknown is not None:
            self._on_unknown(HaProtocolError(reason))

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat_loop(self) -> None:
        loop = self._loop
        interval = self._config.heartbeat_interval
        timeout = self._config.heartbeat_timeout
        while True:
            idle = loop.time() - self._last_rx
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            ping_at = loop.time()
            sent = self._clock()
            msg_id = self.next_id()
            try:
                future = await self._send({"type": "ping"}, msg_id)
            except HaClientError:
                return
            try:
                await self._await_result(msg_id, future, {"type": "ping"}, timeout)
            except HaTimeoutError:
                if self._last_rx > ping_at:
                    continue  # frames arrived, just not the pong yet: alive
                self._fail(
                    HaHeartbeatTimeoutError(
                        f"no answer to ping within {timeout:g} s after {interval:g} s of silence"
                    )
                )
                return
            except HaCommandError:
                continue  # an error result is an answer too: the remote is alive
            except HaClientError:
                return
            self.last_ping_rtt = self._clock() - sent

    # ------------------------------------------------------------------ closing

    def _fail(self, err: HaClientError) -> None:
        """End the session with `err` (first error wins); fail everything waiting on it."""
        if self._closed.done():
            return
        self._closed.set_result(err)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(err)
        self._pending.clear()
        cancel(self._reader, self._heartbeat)

    async def wait_closed(self) -> HaClientError:
        """Wait until the link ends and return the error that ended it; releases the socket."""
        err = await asyncio.shield(self._closed)
        await self._abort()
        return err

    async def close(self) -> None:
        """Close the session (idempotent); no task is left running."""
        self._fail(HaConnectionClosedError("closed by client"))
        await self._abort()

    async def _abort(self) -> None:
        await cancel_and_wait(self._reader, self._heartbeat)
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self._ws.close()


def _origin(url: yarl.URL) -> tuple[str, str | None, int | None]:
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return scheme, url.host, url.port


def _check_not_redirected(requested: str, ws: aiohttp.ClientWebSocketResponse) -> None:
    """Refuse a redirect to another host, port or scheme: the token would follow it there."""
    # The upgrade response is not public; its URL is where the WebSocket ended up.
    final = ws._response.url  # noqa: SLF001
    if _origin(final) != _origin(yarl.URL(requested)):
        raise HaNotHomeAssistantError(
            f"redirected to {final.scheme}://{final.host}:{final.port}: not following with the token"
        )


def _decode(raw: Any) -> Any:
    try:
        return decode.loads(raw)
    except decode.DecodeError as err:
        raise HaProtocolError(f"malformed JSON: {err}") from err


async def _decode_in_steps(raw: str) -> Any:
    steps = decode.loads_in_steps(raw)
    try:
        while True:
            next(steps)
            await asyncio.sleep(0)
    except StopIteration as done:
        await asyncio.sleep(0)  # the message is handled in a step of its own
        return done.value
    except decode.DecodeError as err:
        raise HaProtocolError(f"malformed JSON: {err}") from err


def _frame_error(msg: aiohttp.WSMessage, ws: aiohttp.ClientWebSocketResponse) -> HaClientError:
    """Turn a non-text frame into the error it means."""
    if msg.type is aiohttp.WSMsgType.BINARY:
        return HaProtocolError("unexpected binary frame")
    if msg.type is aiohttp.WSMsgType.ERROR:
        exc = msg.data
        if (
            isinstance(exc, aiohttp.WebSocketError)
            and exc.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        ):
            return HaMessageTooBigError(f"oversize frame: {exc}")
        if isinstance(exc, aiohttp.WebSocketError):
            return HaProtocolError(f"bad frame: {exc}")
        return HaConnectionClosedError(f"connection lost: {exc}")
    code = ws.close_code
    if code in _ORDERLY_CLOSE and msg.type is aiohttp.WSMsgType.CLOSE:
        return HaRemoteGoingAwayError(f"connection closed by remote (code {code})")
    if code is None or code in _ORDERLY_CLOSE or code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
        return HaConnectionClosedError(f"connection closed by remote (code {code})")
    reason = f": {msg.extra}" if msg.extra else ""
    return HaProtocolError(f"remote closed the connection with code {code}{reason}")


def _handshake_error(err: aiohttp.WSServerHandshakeError) -> HaClientError:
    if err.status in _AUTH_REJECTED:
        return HaAuthenticationError(f"HTTP {err.status} at WebSocket upgrade")
    if err.status == 403:
        return HaForbiddenError(
            "HTTP 403 at WebSocket upgrade: banned by the remote or blocked by a proxy"
        )
    if err.status in _NOT_READY:
        return HaServiceUnavailableError(f"HTTP {err.status}: remote not ready")
    return HaNotHomeAssistantError(f"no Home Assistant WebSocket API here (HTTP {err.status})")
