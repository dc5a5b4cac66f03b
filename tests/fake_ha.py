"""An in-process fake Home Assistant WebSocket server that speaks the real protocol and injects faults.

It listens on 127.0.0.1 (a free port, kept across `go_down()` / `go_up()`), and implements the part of
the Home Assistant WebSocket API a remote client uses:

    auth_required -> auth -> auth_ok | auth_invalid (then close)
    supported_features (coalesce_messages), get_config, auth/current_user, get_states,
    subscribe_events / unsubscribe_events, ping -> pong,
    subscribe_entities (entity_ids, include/exclude with Home Assistant's filter rules; the initial
    `a` of every matching state, then `a`/`c`/`r` diffs), config/entity_registry/get,
    history/history_during_period (compressed format, as the recorder answers it),
    recorder/get_statistics_metadata and recorder/statistics_during_period (5minute/hour; rows
    with `start`/`end` in ms since the epoch, only the columns the statistic has)

Command ids must grow strictly per connection (`id_reuse` error otherwise), unknown commands get an
`unknown_command` error, exactly like Home Assistant's `ActiveConnection.async_handle`.

Every fault knob is a plain attribute that can be switched while a test runs. Every wait in here is
bounded. This module is also a pytest plugin providing the `fake_ha` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import fnmatch
import re
import socket
import struct
from typing import Any
import uuid

from aiohttp import WSMsgType, web
import orjson
import pytest

WS_PATH = "/api/websocket"
MATCH_ALL = "*"

# From homeassistant/components/recorder/history/const.py (2025.4).
SIGNIFICANT_DOMAINS = frozenset(
    {"climate", "device_tracker", "humidifier", "thermostat", "water_heater"}
)
NEED_ATTRIBUTE_DOMAINS = frozenset(
    {"climate", "humidifier", "input_datetime", "thermostat", "water_heater"}
)
# From homeassistant/core.py.
_OBJECT_ID = r"(?!_)[\da-z_]+(?<!_)"
_DOMAIN = r"(?!.+__)" + _OBJECT_ID
VALID_ENTITY_ID = re.compile(r"^" + _DOMAIN + r"\." + _OBJECT_ID + r"$")

# Bounds for every wait in the fake.
AUTH_TIMEOUT = 10.0  # Home Assistant's AUTH_MESSAGE_TIMEOUT
HANG_LIMIT = 60.0  # a "hanging" request or connection is released after this at the latest
CLOSE_TIMEOUT = 2.0


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _context_id() -> str:
    return uuid.uuid4().hex[:26].upper()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass
class RecordedState:
    """One state of an entity in the fake recorder."""

    entity_id: str
    state: str
    attributes: dict[str, Any]
    last_updated: datetime
    last_changed: datetime | None = None  # None: derived from the previous recorded state
    context: dict[str, Any] = field(default_factory=lambda: {"id": _context_id()})

    def compressed(self) -> dict[str, Any]:
        """The state as `subscribe_entities` sends it (State.as_compressed_state)."""
        changed = (self.last_changed or self.last_updated).timestamp()
        out: dict[str, Any] = {
            "s": self.state,
            "a": dict(self.attributes),
            "c": self.context["id"],
            "lc": changed,
        }
        if self.last_updated.timestamp() != changed:
            out["lu"] = self.last_updated.timestamp()
        return out

    def as_dict(self) -> dict[str, Any]:
        """The state object as Home Assistant serializes it (State.as_dict)."""
        changed = self.last_changed or self.last_updated
        return {
            "entity_id": self.entity_id,
            "state": self.state,
            "attributes": dict(self.attributes),
            "last_changed": _iso(changed),
            "last_reported": _iso(self.last_updated),
            "last_updated": _iso(self.last_updated),
            "context": {"id": self.context["id"], "parent_id": None, "user_id": None},
        }


class FakeConnection:
    """One accepted WebSocket connection and everything observed on it."""

    def __init__(self, server: FakeHA, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.request = request
        self.ws = ws
        self.subscriptions: list[str] = []  # event types subscribed on it, in order
        self.sub_ids: dict[int, str] = {}  # active subscriptions: id -> event type
        # subscribe_entities subscriptions: id -> filter (entity id -> passes)
        self.entity_subs: dict[int, Callable[[str], bool]] = {}
        self.entity_messages: list[dict[str, Any]] = []  # every one sent, in order
        self.deflate = False  # permessage-deflate negotiated
        self.commands: list[dict[str, Any]] = []  # every command received after auth, in order
        self.ids: list[int] = []  # command ids received, in order
        self.features: dict[str, Any] = {}
        self.authenticated = False
        self.closed = False
        self.ready = False  # authenticated and `expected_subscriptions` confirmed
        self.events_sent = 0
        self.pings = 0
        self.last_id = 0
        self._lock = asyncio.Lock()

    @property
    def coalesce(self) -> bool:
        """The client negotiated coalesce_messages: several messages may share one JSON array."""
        return bool(self.features.get("coalesce_messages"))

    # ------------------------------------------------------------------ sending

    async def send_json(self, message: Any) -> None:
        """Send one message (or a JSON array of messages)."""
        await self.send_raw(orjson.dumps(message).decode())

    async def send_raw(self, text: str) -> None:
        """Send one text frame as it is."""
        if self.closed or self.ws.closed:
            return
        async with self._lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""
        if self.closed or self.ws.closed:
            return
        async with self._lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(data)

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        """Close with a close frame (the reader of this connection then ends)."""
        self.closed = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=message)

    def abort(self, *, reset: bool = False) -> None:
        """Drop the TCP connection without a close frame (`reset`: with a TCP RST)."""
        self.closed = True
        if (transport := self.request.transport) is not None:
            if reset and (sock := transport.get_extra_info("socket")) is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

    def send_wire(self, data: bytes) -> None:
        """Write raw bytes to the TCP stream (hand-made, possibly invalid, WebSocket frames)."""
        if (transport := self.request.transport) is not None and not transport.is_closing():
            transport.write(data)

    async def _result(self, msg_id: int, result: Any = None) -> None:
        await self.send_json({"id": msg_id, "type": "result", "success": True, "result": result})

    async def _error(self, msg_id: Any, code: str, message: str) -> None:
        await self.send_json(
            {
                "id": msg_id,
                "type": "result",
                "success": False,
                "error": {"code": code, "message": message},
            }
        )

    # ------------------------------------------------------------------ life

    async def run(self) -> None:
        """Serve the connection until it closes."""
        server = self.server
        if server.hang_after_upgrade:
            await self._discard_until_closed()
            return
        greeting = server.greeting
        if greeting is None:
            await self.send_json({"type": "auth_required", "ha_version": server.version})
        elif isinstance(greeting, bytes):
            await self.send_bytes(greeting)
        else:
            await self.send_raw(greeting)
        if not await self._auth_phase():
            return
        while not self.closed:
            msg = await self.ws.receive()
            if msg.type is not WSMsgType.TEXT:
                break  # binary, close, error: Home Assistant disconnects
            try:
                data = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                break
            for item in data if isinstance(data, list) else (data,):
                await self._handle(item)
                if self.closed:
                    break

    async def _discard_until_closed(self) -> None:
        """Upgraded, but say nothing: read (and drop) until the client gives up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANG_LIMIT):
                while not self.closed:
                    msg = await self.ws.receive()
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                        break
                    if msg.type is WSMsgType.ERROR:
                        break

    async def _auth_phase(self) -> bool:
        server = self.server
        try:
            async with asyncio.timeout(AUTH_TIMEOUT):
                msg = await self.ws.receive()
        except TimeoutError:
            await self.close()
            return False
        if msg.type is not WSMsgType.TEXT:
            return False
        try:
            data = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            data = None
        server.auth_messages += 1
        if server.auth_answer_delay:
            await asyncio.sleep(server.auth_answer_delay)
        if not isinstance(data, dict) or data.get("type") != "auth":
            server.auth_invalid_count += 1
            await self.send_json(
                {"type": "auth_invalid", "message": "Auth message incorrectly formatted"}
            )
            await self.close()
            return False
        if data.get("access_token") != server.token:
            server.auth_invalid_count += 1
            await self.send_json({"type": "auth_invalid", "message": server.auth_invalid_message})
            await self.close()
            return False
        server.auth_ok_count += 1
        self.authenticated = True
        if server.auth_reply is not None:
            await self.send_raw(server.auth_reply)
        else:
            await self.send_json({"type": "auth_ok", "ha_version": server.version})
        return True

    # ------------------------------------------------------------------ commands

    async def _handle(self, msg: Any) -> None:
        server = self.server
        if type(msg) is dict:
            self.commands.append(msg)
        cur_id = msg.get("id") if type(msg) is dict else None
        kind = msg.get("type") if type(msg) is dict else None
        if (
            type(msg) is not dict
            or not cur_id
            or type(cur_id) is not int
            or cur_id < 0
            or not kind
            or type(kind) is not str
        ):
            await self._error(
                cur_id if type(cur_id) is int else 0,
                "invalid_format",
                "Message incorrectly formatted.",
            )
            return
        self.ids.append(cur_id)
        if server.frozen:
            return  # a frozen host says nothing at all
        if cur_id <= self.last_id:
            await self._error(cur_id, "id_reuse", "Identifier values have to increase.")
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            await self._error(cur_id, "unknown_command", "Unknown command.")
            return
        self.last_id = cur_id
        await handler(self, cur_id, msg)

    async def _cmd_call_service(self, msg_id: int, msg: dict[str, Any]) -> None:
        """As Home Assistant answers: the context, and the response when one is asked for."""
        server = self.server
        server.service_calls.append(msg)
        if server.service_error is not None:
            await self._error(msg_id, *server.service_error)
            return
        result: dict[str, Any] = {"context": {"id": _context_id(), "parent_id": None}}
        if msg.get("return_response"):
            ids = (msg.get("target") or {}).get("entity_id") or []
            ids = [ids] if isinstance(ids, str) else ids
            result["response"] = {i: server.service_responses.get(i, {}) for i in ids}
        await self._result(msg_id, result)

    async def _cmd_release_notes(self, msg_id: int, msg: dict[str, Any]) -> None:
        notes = self.server.release_notes.get(msg.get("entity_id", ""))
        if notes is None:
            await self._error(msg_id, "not_found", "Entity not found")
            return
        await self._result(msg_id, notes)

    async def _cmd_supported_features(self, msg_id: int, msg: dict[str, Any]) -> None:
        features = msg.get("features")
        self.features = dict(features) if isinstance(features, dict) else {}
        await self._result(msg_id)

    async def _cmd_get_config(self, msg_id: int, msg: dict[str, Any]) -> None:
        await self._result(msg_id, self.server.config_dict())

    async def _cmd_current_user(self, msg_id: int, msg: dict[str, Any]) -> None:
        await self._result(
            msg_id,
            {
                "id": self.server.user_id,
                "name": "Remote User",
                "is_owner": False,
                "is_admin": True,
                "credentials": [{"auth_provider_type": "homeassistant", "auth_provider_id": None}],
                "mfa_modules": [],
            },
        )

    async def _cmd_get_states(self, msg_id: int, msg: dict[str, Any]) -> None:
        await self._result(msg_id, [s.as_dict() for s in self.server.states.values()])

    async def _cmd_ping(self, msg_id: int, msg: dict[str, Any]) -> None:
        self.pings += 1
        if self.server.answer_pings:
            await self.send_json({"id": msg_id, "type": "pong"})

    async def _cmd_subscribe_events(self, msg_id: int, msg: dict[str, Any]) -> None:
        server = self.server
        event_type = msg.get("event_type") or MATCH_ALL
        if event_type in server.fail_subscriptions:
            code, message = server.subscription_error
            await self._error(msg_id, code, message)
            return
        self.subscriptions.append(event_type)
        self.sub_ids[msg_id] = event_type
        await self._result(msg_id)
        if len(self.subscriptions) >= server.expected_subscriptions:
            self.ready = True
            if server.drop_after_auth:
                await self.close()

    async def _cmd_unsubscribe_events(self, msg_id: int, msg: dict[str, Any]) -> None:
        if self.sub_ids.pop(msg.get("subscription"), None) is None:  # type: ignore[arg-type]
            await self._error(msg_id, "not_found", "Subscription not found.")
            return
        await self._result(msg_id)

    async def _cmd_subscribe_entities(self, msg_id: int, msg: dict[str, Any]) -> None:
        server = self.server
        if "subscribe_entities" in server.fail_subscriptions:
            code, message = server.subscription_error
            await self._error(msg_id, code, message)
            return
        self.entity_subs[msg_id] = _entity_filter(msg)
        await self._result(msg_id)
        passes = self.entity_subs[msg_id]
        await self._send_entities(
            msg_id,
            {"a": {e: s.compressed() for e, s in server.states.items() if passes(e)}},
        )

    async def _send_entities(self, sub_id: int, event: dict[str, Any]) -> None:
        self.entity_messages.append(event)
        await self.send_json({"id": sub_id, "type": "event", "event": event})

    async def _deliver_entity_change(
        self, entity_id: str, old: RecordedState | None, new: RecordedState | None
    ) -> None:
        if self.closed or not self.authenticated or self.server.frozen:
            return
        for sub_id, passes in tuple(self.entity_subs.items()):
            if passes(entity_id):
                await self._send_entities(sub_id, _diff(entity_id, old, new))

    async def _cmd_entity_registry_get(self, msg_id: int, msg: dict[str, Any]) -> None:
        entity_id = msg.get("entity_id")
        if entity_id not in self.server.registry:
            await self._error(msg_id, "not_found", "Entity not found")
            return
        await self._result(msg_id, {"entity_id": entity_id, "platform": "fake"})

    async def _cmd_entity_registry_display(self, msg_id: int, msg: dict[str, Any]) -> None:
        """config/entity_registry/list_for_display: one compact row per registered entity.

        As on a real remote, an entity without a registry entry (a YAML or template entity
        without a unique id, a state set by a script) is not listed (`record_state(...,
        registered=False)`).
        """
        server = self.server
        entities = [
            {"ei": entity_id, "pl": server.platforms.get(entity_id, "fake")}
            | (
                {"di": server.entity_devices[entity_id]}
                if entity_id in server.entity_devices
                else {}
            )
            for entity_id in sorted(server.registry)
        ]
        await self._result(msg_id, {"entity_categories": {}, "entities": entities})

    async def _cmd_device_registry_list(self, msg_id: int, msg: dict[str, Any]) -> None:
        """config/device_registry/list (admin only): the devices as given (`devices`)."""
        server = self.server
        if not server.admin:
            await self._error(msg_id, "unauthorized", "Unauthorized")
            return
        await self._result(msg_id, list(server.devices.values()))

    async def _cmd_area_registry_list(self, msg_id: int, msg: dict[str, Any]) -> None:
        """config/area_registry/list (admin only): the areas as given (`areas`: id -> name)."""
        server = self.server
        if not server.admin:
            await self._error(msg_id, "unauthorized", "Unauthorized")
            return
        areas = [{"area_id": area_id, "name": name} for area_id, name in server.areas.items()]
        await self._result(msg_id, areas)

    async def _cmd_recorder_info(self, msg_id: int, msg: dict[str, Any]) -> None:
        """recorder/info: `backlog` is what the recorder has not processed yet."""
        server = self.server
        server.recorder_info_requests += 1
        if server.recorder_backlogs:  # a queue being worked through: one value per request
            server.recorder_backlog = server.recorder_backlogs.pop(0)
        await self._result(
            msg_id,
            {
                "backlog": server.recorder_backlog,
                "max_backlog": 65000,
                "migration_in_progress": False,
                "migration_is_live": False,
                "recording": True,
                "thread_running": True,
            },
        )

    async def _cmd_history(self, msg_id: int, msg: dict[str, Any]) -> None:
        try:
            result = self.server.history_during_period(msg)
        except _CommandError as err:
            await self._error(msg_id, err.code, err.message)
            return
        await self._result(msg_id, result)

    async def _cmd_statistics_metadata(self, msg_id: int, msg: dict[str, Any]) -> None:
        """recorder/get_statistics_metadata: one flat item per known statistic asked for."""
        server = self.server
        server.statistics_requests.append(msg)
        wanted = msg.get("statistic_ids")
        result = [
            {"statistic_id": statistic_id, **meta}
            for statistic_id, meta in server.statistics_meta.items()
            if wanted is None or statistic_id in wanted
        ]
        await self._result(msg_id, result)

    async def _cmd_statistics_during_period(self, msg_id: int, msg: dict[str, Any]) -> None:
        server = self.server
        server.statistics_requests.append(msg)
        if server.statistics_error is not None:
            await self._error(msg_id, *server.statistics_error)
            return
        if server.statistics_reply is not None:
            await self._result(msg_id, server.statistics_reply(msg))
            return
        try:
            result = server.statistics_during_period(msg)
        except _CommandError as err:
            await self._error(msg_id, err.code, err.message)
            return
        await self._result(msg_id, result)

    async def _deliver_events(self, events: list[dict[str, Any]]) -> None:
        """Send each event to every matching subscription, one array frame when coalescing."""
        if self.closed or not self.authenticated or self.server.frozen:
            return
        messages = [
            {"id": sub_id, "type": "event", "event": event}
            for event in events
            for sub_id, sub_type in tuple(self.sub_ids.items())
            if sub_type in (event["event_type"], MATCH_ALL)
        ]
        if not messages:
            return
        limit = self.server.drop_after_events
        if limit is not None:
            messages = messages[: max(0, limit - self.events_sent)]
        if len(messages) > 1 and self.coalesce:
            await self.send_json(messages)
        else:
            for message in messages:
                await self.send_json(message)
        self.events_sent += len(messages)
        if limit is not None and self.events_sent >= limit:
            await self.close()


type _Handler = Callable[[FakeConnection, int, dict[str, Any]], Any]

_HANDLERS: dict[str, _Handler] = {
    "supported_features": FakeConnection._cmd_supported_features,
    "get_config": FakeConnection._cmd_get_config,
    "auth/current_user": FakeConnection._cmd_current_user,
    "get_states": FakeConnection._cmd_get_states,
    "ping": FakeConnection._cmd_ping,
    "subscribe_events": FakeConnection._cmd_subscribe_events,
    "unsubscribe_events": FakeConnection._cmd_unsubscribe_events,
    "history/history_during_period": FakeConnection._cmd_history,
    "config/entity_registry/list_for_display": FakeConnection._cmd_entity_registry_display,
    "recorder/info": FakeConnection._cmd_recorder_info,
    "subscribe_entities": FakeConnection._cmd_subscribe_entities,
    "config/entity_registry/get": FakeConnection._cmd_entity_registry_get,
    "config/device_registry/list": FakeConnection._cmd_device_registry_list,
    "config/area_registry/list": FakeConnection._cmd_area_registry_list,
    "recorder/get_statistics_metadata": FakeConnection._cmd_statistics_metadata,
    "recorder/statistics_during_period": FakeConnection._cmd_statistics_during_period,
    "call_service": FakeConnection._cmd_call_service,
    "update/release_notes": FakeConnection._cmd_release_notes,
}

_PERIODS = {"5minute": 300, "hour": 3600}
_MEAN_COLUMNS = ("mean", "min", "max")
_SUM_COLUMNS = ("last_reset", "state", "sum")


def _entity_filter(msg: dict[str, Any]) -> Callable[[str], bool]:
    """Home Assistant's rules (helpers/entityfilter.py) for entity_ids + include/exclude."""
    ids = set(msg.get("entity_ids") or ())
    inc = msg.get("include") or {}
    exc = msg.get("exclude") or {}
    inc_d, inc_e, inc_g = (set(inc.get(k, ())) for k in ("domains", "entities", "entity_globs"))
    exc_d, exc_e, exc_g = (set(exc.get(k, ())) for k in ("domains", "entities", "entity_globs"))

    def glob(entity_id: str, globs: set[str]) -> bool:
        return any(fnmatch.fnmatchcase(entity_id, g) for g in globs)

    def passes(entity_id: str) -> bool:
        domain = entity_id.split(".", 1)[0]
        have_inc, have_exc = bool(inc_d or inc_e or inc_g), bool(exc_d or exc_e or exc_g)
        if not have_inc and not have_exc:
            ok = True
        elif not have_exc:
            ok = entity_id in inc_e or domain in inc_d or glob(entity_id, inc_g)
        elif not have_inc:
            ok = not (entity_id in exc_e or domain in exc_d or glob(entity_id, exc_g))
        elif inc_d or inc_g:
            ok = entity_id in inc_e or (
                entity_id not in exc_e
                and (glob(entity_id, inc_g) or (domain in inc_d and not glob(entity_id, exc_g)))
            )
        elif exc_d or exc_g:
            if domain in exc_d or glob(entity_id, exc_g):
                ok = entity_id in inc_e
            else:
                ok = entity_id not in exc_e
        else:
            ok = entity_id in inc_e
        return ok and (not ids or entity_id in ids)

    return passes


def _diff(entity_id: str, old: RecordedState | None, new: RecordedState | None) -> dict[str, Any]:
    """What subscribe_entities sends for one state change (messages._state_diff_event)."""
    if new is None:
        return {"r": [entity_id]}
    if old is None:
        return {"a": {entity_id: new.compressed()}}
    plus: dict[str, Any] = {}
    diff: dict[str, Any] = {"+": plus}
    if old.state != new.state:
        plus["s"] = new.state
    old_c, new_c = old.compressed(), new.compressed()
    if old_c["lc"] != new_c["lc"]:
        plus["lc"] = new_c["lc"]
    elif old.last_updated != new.last_updated:
        plus["lu"] = new.last_updated.timestamp()
    plus["c"] = new.context["id"]
    if added := {k: v for k, v in new.attributes.items() if old.attributes.get(k, k) != v}:
        plus["a"] = added
    if removed := sorted(old.attributes.keys() - new.attributes.keys()):
        diff["-"] = {"a": removed}
    return {"c": {entity_id: diff}}


class _CommandError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Refuse(asyncio.Protocol):
    """Accepts the TCP connection and closes it at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class FakeHA:
    """A fake Home Assistant on 127.0.0.1: real sockets, real protocol, switchable faults."""

    def __init__(
        self,
        *,
        token: str = "good-token",  # noqa: S107 - a test token
        location_name: str = "Remote Home",
        version: str = "2025.4.4",
        user_id: str = "remote-user-1",
    ) -> None:
        self.location_name = location_name
        self.version = version
        self.user_id = user_id
        self.time_zone = "Europe/Berlin"
        self.external_url: str | None = None
        self.internal_url: str | None = None
        # ---- fault knobs
        self.token = token
        self.auth_invalid_message = "Invalid access token or password"
        self.http_status: int | None = None
        self.refuse = False
        self.hang_before_upgrade = False
        self.hang_after_upgrade = False
        self.answer_pings = True
        self.frozen = False
        self.fail_subscriptions: set[str] = set()
        self.subscription_error: tuple[str, str] = ("unauthorized", "Unauthorized")
        self.drop_after_events: int | None = None
        self.drop_after_auth = False
        # A connection is "ready" (and `drop_after_auth` drops it) once this many subscriptions
        # are confirmed on it; set it to the number of event types the client subscribes.
        self.expected_subscriptions = 1
        # Not Home Assistant: send this frame (text, or bytes as a binary frame) instead of
        # auth_required, and/or this text instead of auth_ok.
        self.greeting: str | bytes | None = None
        self.auth_reply: str | None = None
        # Seconds before answering an `auth` message (an authentication in flight for a while).
        self.auth_answer_delay = 0.0
        # ---- observation
        self.connections: list[FakeConnection] = []
        self.auth_ok_count = 0
        self.auth_invalid_count = 0
        self.auth_messages = 0  # every message received in the auth phase (a token sent)
        self.upgrade_count = 0
        self.tcp_accept_count = 0
        self.http_requests = 0
        # ---- state and history
        self.states: dict[str, RecordedState] = {}
        # Entity ids the remote's entity registry holds (config/entity_registry/get finds them).
        self.registry: set[str] = set()
        # Their platform where it is not "fake" (e.g. "ha_ingestion": a mirror made there).
        self.platforms: dict[str, str] = {}
        # The device registry (admin only): devices by id as the remote lists them, the device of
        # a registered entity (its `di`), areas by id (their names); False: a non-admin token.
        self.devices: dict[str, dict[str, Any]] = {}
        self.entity_devices: dict[str, str] = {}
        self.areas: dict[str, str] = {}
        self.admin = True
        self.history_sub_microsecond = (
            0.0  # e.g. 2e-7: within the same microsecond, as a real DB float
        )
        self.history: list[RecordedState] = []
        # The recorder's commit race: states recorded with `committed=False` are not in the
        # history until `commit()` (a real recorder writes every commit interval, 5 s by default).
        self.uncommitted: list[RecordedState] = []
        self.recorder_backlog = 0
        self.recorder_backlogs: list[int] = []  # the next answers of recorder/info, in order
        self.recorder_info_requests = 0
        # Long-term statistics: metadata as get_statistics_metadata lists it, rows per
        # (statistic id, period seconds) by start (seconds); every statistics request made;
        # an error (code, message) or a function of the request replacing the real reply.
        self.statistics_meta: dict[str, dict[str, Any]] = {}
        self.statistics: dict[tuple[str, int], dict[float, dict[str, Any]]] = {}
        self.statistics_requests: list[dict[str, Any]] = []
        self.statistics_error: tuple[str, str] | None = None
        self.statistics_reply: Callable[[dict[str, Any]], Any] | None = None
        # Services called (call_service messages, in order); an error (code, message) replacing
        # the reply; the response data of a service called with return_response, by entity id.
        self.service_calls: list[dict[str, Any]] = []
        self.service_error: tuple[str, str] | None = None
        self.service_responses: dict[str, Any] = {}
        self.release_notes: dict[str, str] = {}  # update/release_notes, by entity id
        # ---- plumbing
        self.port = 0
        self._sock: socket.socket | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """WebSocket URL of the API."""
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    @property
    def http_url(self) -> str:
        """Base HTTP URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> list[FakeConnection]:
        """Connections not closed yet."""
        return [c for c in self.connections if not c.closed]

    @property
    def last_connection(self) -> FakeConnection | None:
        """The most recently accepted WebSocket connection."""
        return self.connections[-1] if self.connections else None

    @property
    def ready_connections(self) -> list[FakeConnection]:
        """Every connection that got authenticated and subscribed (open or not)."""
        return [c for c in self.connections if c.ready]

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_get(WS_PATH, self._ws_handler)
        app.router.add_get("/api/", self._api_handler)
        app.router.add_get("/api/config", self._api_config_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol_factory, sock=sock
        )

    async def stop(self) -> None:
        """Release every hanging request, close every connection, stop listening."""
        self._release.set()
        await self.close_all(1001)
        await self._stop_listening()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await runner.cleanup()

    async def go_down(self) -> None:
        """Stop listening on the port and drop every connection (the host went away)."""
        self._release.set()
        await self._stop_listening(abort=True)
        for conn in self.open_connections:
            conn.abort()
        self._release = asyncio.Event()

    async def go_up(self) -> None:
        """Listen again on the same port."""
        if self._server is not None:
            return
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol_factory, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop_listening(self, *, abort: bool = False) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if abort:
            server.abort_clients()
        else:
            server.close_clients()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()

    def _protocol_factory(self) -> asyncio.BaseProtocol:
        self.tcp_accept_count += 1
        if self.refuse or self._runner is None or self._runner.server is None:
            return _Refuse()
        return self._runner.server()

    async def _hang(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANG_LIMIT):
                await self._release.wait()

    # ------------------------------------------------------------------ HTTP

    def _status_response(self) -> web.Response | None:
        if self.http_status is None:
            return None
        return web.Response(status=self.http_status, text=f"fake status {self.http_status}")

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        self.http_requests += 1
        if self.hang_before_upgrade:
            await self._hang()
            return web.Response(status=503, text="released")
        if (response := self._status_response()) is not None:
            return response
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        self.upgrade_count += 1
        conn = FakeConnection(self, request, ws)
        conn.deflate = bool(ws.compress)
        self.connections.append(conn)
        try:
            await conn.run()
        finally:
            conn.closed = True
            if not ws.closed:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await ws.close()
        return ws

    def _bearer_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _api_handler(self, request: web.Request) -> web.StreamResponse:
        self.http_requests += 1
        if (response := self._status_response()) is not None:
            return response
        if not self._bearer_ok(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        return web.json_response({"message": "API running."})

    async def _api_config_handler(self, request: web.Request) -> web.StreamResponse:
        self.http_requests += 1
        if (response := self._status_response()) is not None:
            return response
        if not self._bearer_ok(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        return web.json_response(self.config_dict())

    def config_dict(self) -> dict[str, Any]:
        """What get_config answers (a subset of Config.as_dict)."""
        return {
            "latitude": 52.52,
            "longitude": 13.405,
            "elevation": 34,
            "unit_system": {
                "length": "km",
                "accumulated_precipitation": "mm",
                "area": "m²",
                "mass": "g",
                "pressure": "Pa",
                "temperature": "°C",
                "volume": "L",
                "wind_speed": "m/s",
            },
            "location_name": self.location_name,
            "time_zone": self.time_zone,
            "components": ["api", "history", "recorder", "websocket_api"],
            "config_dir": "/config",
            "allowlist_external_dirs": [],
            "allowlist_external_urls": [],
            "version": self.version,
            "config_source": "storage",
            "recovery_mode": False,
            "state": "RUNNING",
            "external_url": self.external_url,
            "internal_url": self.internal_url,
            "currency": "EUR",
            "country": "DE",
            "language": "en",
            "safe_mode": False,
            "debug": False,
            "radius": 100,
        }

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Poll `predicate` until it holds; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    async def wait_for_connections(self, n: int, timeout: float = 10) -> None:
        """Wait until `n` connections (in total) were authenticated and subscribed."""
        await self.wait_for(lambda: len(self.ready_connections) >= n, timeout)

    # ------------------------------------------------------------------ pushing

    def _event(
        self,
        event_type: str,
        data: dict[str, Any],
        time_fired: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "event_type": event_type,
            "data": data,
            "origin": "LOCAL",
            "time_fired": time_fired or _iso(datetime.now(UTC)),
            "context": context or {"id": _context_id(), "parent_id": None, "user_id": None},
        }

    async def fire_event(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        time_fired: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Send an event to every connection subscribed to its type."""
        event = self._event(event_type, data, time_fired, context)
        for conn in self.open_connections:
            await conn._deliver_events([event])

    async def fire_events(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Send several events at once: ONE JSON-array frame to connections that negotiated
        coalesce_messages (as Home Assistant's writer does when messages queue up)."""
        built = [self._event(event_type, data) for event_type, data in events]
        for conn in self.open_connections:
            await conn._deliver_events(built)

    async def fire_state_changed(
        self,
        entity_id: str,
        new_state: str,
        attributes: dict[str, Any] | None = None,
        *,
        committed: bool = True,
    ) -> None:
        """Record a new state and send a realistic state_changed event.

        `committed=False`: history shows it only after `commit()`.
        """
        now = datetime.now(UTC)
        old = self.states.get(entity_id)
        changed = now if old is None or old.state != new_state else (old.last_changed or now)
        context = {"id": _context_id(), "parent_id": None, "user_id": None}
        new = RecordedState(
            entity_id=entity_id,
            state=new_state,
            attributes=dict(attributes or {}),
            last_updated=now,
            last_changed=changed,
            context=context,
        )
        self.states[entity_id] = new
        self.registry.add(entity_id)
        (self.history if committed else self.uncommitted).append(new)
        for conn in self.open_connections:
            await conn._deliver_entity_change(entity_id, old, new)
        await self.fire_event(
            "state_changed",
            {
                "entity_id": entity_id,
                "old_state": old.as_dict() if old is not None else None,
                "new_state": new.as_dict(),
            },
            time_fired=_iso(now),
            context=context,
        )

    def record_state(
        self,
        entity_id: str,
        state: str,
        last_updated: datetime,
        attributes: dict[str, Any] | None = None,
        *,
        last_changed: datetime | None = None,
        committed: bool = True,
        registered: bool = True,
    ) -> None:
        """Add a recorded state without sending anything (last_changed derived if not given).

        `committed=False`: the state exists (get_states) but history shows it only after
        `commit()`. `registered=False`: the entity has no registry entry (not listed by
        config/entity_registry/list_for_display).
        """
        if registered:
            self.registry.add(entity_id)
        if last_updated.tzinfo is None:
            last_updated = last_updated.replace(tzinfo=UTC)
        recorded = RecordedState(
            entity_id=entity_id,
            state=state,
            attributes=dict(attributes or {}),
            last_updated=last_updated,
            last_changed=last_changed,
        )
        (self.history if committed else self.uncommitted).append(recorded)
        current = self.states.get(entity_id)
        if current is None or current.last_updated <= last_updated:
            self.states[entity_id] = recorded

    async def remove_state(self, entity_id: str, *, from_registry: bool = True) -> None:
        """The entity's state is removed (`r` to entity subscriptions, state_changed to None).

        `from_registry` False: the entity stays registered (an integration reloading).
        """
        old = self.states.pop(entity_id, None)
        if from_registry:
            self.registry.discard(entity_id)
        for conn in self.open_connections:
            await conn._deliver_entity_change(entity_id, old, None)
        await self.fire_event(
            "state_changed",
            {
                "entity_id": entity_id,
                "old_state": old.as_dict() if old is not None else None,
                "new_state": None,
            },
        )

    def commit(self) -> None:
        """The recorder commits: uncommitted states become history."""
        self.history.extend(self.uncommitted)
        self.uncommitted.clear()

    async def send_raw(self, text: str) -> None:
        """Send a text frame to every open connection."""
        for conn in self.open_connections:
            await conn.send_raw(text)

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame to every open connection."""
        for conn in self.open_connections:
            await conn.send_bytes(data)

    def send_wire(self, data: bytes) -> None:
        """Write raw bytes to every open connection's TCP stream (e.g. an invalid frame)."""
        for conn in self.open_connections:
            conn.send_wire(data)

    def abort_all(self, *, reset: bool = False) -> None:
        """Drop every open connection without a close frame (`reset`: with a TCP RST)."""
        for conn in self.open_connections:
            conn.abort(reset=reset)

    async def close_all(self, code: int = 1000, message: bytes = b"") -> None:
        """Close every open connection with a close frame."""
        for conn in self.open_connections:
            await conn.close(code, message)

    # ------------------------------------------------------------------ history

    def _entity_rows(self, entity_id: str) -> list[tuple[RecordedState, float, float]]:
        """Recorded states of one entity by time: (state, last_updated_ts, last_changed_ts)."""
        rows: list[tuple[RecordedState, float, float]] = []
        previous: tuple[RecordedState, float, float] | None = None
        for rec in sorted(
            (r for r in self.history if r.entity_id == entity_id), key=lambda r: r.last_updated
        ):
            # A real recorder stores its clock's float: digits below the microsecond that the
            # events' ISO text (whole microseconds) does not carry.
            lu = rec.last_updated.timestamp() + self.history_sub_microsecond
            if rec.last_changed is not None:
                lc = rec.last_changed.timestamp()
            elif previous is not None and previous[0].state == rec.state:
                lc = previous[2]
            else:
                lc = lu
            previous = (rec, lu, lc)
            rows.append(previous)
        return rows

    def _may_have_changed_after(
        self, entity_ids: list[str], start: datetime, no_attributes: bool
    ) -> bool:
        """history's entities_may_have_state_changes_after: the state machine's shortcut.

        Without the start state, the remote answers {} at once when no current state is newer than
        start_time, judged by last_changed when `no_attributes` (so an attribute-only change, e.g.
        an automation's `current` or `last_triggered`, never shows that way) else last_updated.
        """
        for entity_id in entity_ids:
            current = self.states.get(entity_id)
            if current is None:
                return True
            moment = current.last_updated
            if no_attributes and current.last_changed is not None:
                moment = current.last_changed
            if moment > start:
                return True
        return False

    def history_during_period(self, msg: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Answer history/history_during_period like the recorder does (compressed states).

        Mirrors homeassistant/components/history/websocket_api.py and recorder/history/modern.py:
        - changes with start_time < last_updated < end_time, plus (include_start_time_state) the
          last state before start_time reported at start_time ("lu" = start, no "lc");
        - significant_changes_only (default True): only rows where the state itself changed
          (last_changed == last_updated), except SIGNIFICANT_DOMAINS; no "lc" key at all;
          otherwise every row, with "lc" when last_changed != last_updated;
        - minimal_response: first row full, then only {"s", "lu"} for actual state changes
          (except NEED_ATTRIBUTE_DOMAINS);
        - no_attributes: "a" is {} (full rows) or absent (minimal first row);
        - entities without rows are left out; a start in the future gives {};
        - without include_start_time_state, {} when no current state changed after start_time
          (`_may_have_changed_after`).
        """
        entity_ids = msg.get("entity_ids")
        if (
            not isinstance(entity_ids, list)
            or not all(isinstance(e, str) for e in entity_ids)
            or "start_time" not in msg
        ):
            raise _CommandError("invalid_format", "required key not provided")
        start = _parse_time(msg["start_time"])
        if start is None:
            raise _CommandError("invalid_start_time", "Invalid start_time")
        end: datetime | None = None
        if msg.get("end_time"):
            end = _parse_time(msg["end_time"])
            if end is None:
                raise _CommandError("invalid_end_time", "Invalid end_time")
        if start > datetime.now(UTC):
            return {}
        for entity_id in entity_ids:
            if entity_id not in self.states and not VALID_ENTITY_ID.match(entity_id):
                raise _CommandError("invalid_entity_ids", "Invalid entity_ids")
        if not entity_ids:
            raise _CommandError("invalid_format", "entity_ids must be provided")
        include_start = bool(msg.get("include_start_time_state", True))
        significant_only = bool(msg.get("significant_changes_only", True))
        minimal = bool(msg.get("minimal_response", False))
        no_attributes = bool(msg.get("no_attributes", False))
        if not include_start and not self._may_have_changed_after(entity_ids, start, no_attributes):
            return {}
        start_ts = start.timestamp()
        end_ts = end.timestamp() if end is not None else None
        if end_ts is not None:
            oldest = min((r.last_updated.timestamp() for r in self.history), default=None)
            if oldest is None or end_ts < oldest:
                return {}  # has_states_before(end_time) is False

        result: dict[str, list[dict[str, Any]]] = {}
        for entity_id in entity_ids:
            domain = entity_id.split(".", 1)[0]
            rows = self._entity_rows(entity_id)
            selected: list[tuple[RecordedState, float, float | None]] = []
            if include_start:
                before = [row for row in rows if row[1] < start_ts]
                if before:
                    selected.append((before[-1][0], start_ts, None))
            for rec, lu, lc in rows:
                if lu <= start_ts or (end_ts is not None and lu >= end_ts):
                    continue
                if significant_only and domain not in SIGNIFICANT_DOMAINS and lc != lu:
                    continue
                selected.append((rec, lu, lc))
            if not selected:
                continue

            def full(
                rec: RecordedState, lu: float, lc: float | None, attrs: bool
            ) -> dict[str, Any]:
                comp: dict[str, Any] = {"s": rec.state}
                if attrs:
                    comp["a"] = {} if no_attributes else dict(rec.attributes)
                comp["lu"] = lu
                if not significant_only and lc and lc != lu:
                    comp["lc"] = lc
                return comp

            if not minimal or domain in NEED_ATTRIBUTE_DOMAINS:
                result[entity_id] = [full(rec, lu, lc, True) for rec, lu, lc in selected]
                continue
            first_rec, first_lu, first_lc = selected[0]
            states = [full(first_rec, first_lu, first_lc, not no_attributes)]
            previous_state = first_rec.state
            for rec, lu, _lc in selected[1:]:
                if rec.state != previous_state:
                    states.append({"s": rec.state, "lu": lu})
                    previous_state = rec.state
            result[entity_id] = states
        return result

    # ------------------------------------------------------------------ statistics

    def add_statistics(
        self,
        statistic_id: str,
        rows: dict[int, list[dict[str, Any]]],
        *,
        unit: str | None,
        unit_class: str | None,
        has_sum: bool = False,
        mean_type: int = 1,
    ) -> None:
        """The remote recorder's statistics: rows per period (300, 3600), `start` a datetime."""
        self.statistics_meta[statistic_id] = {
            "display_unit_of_measurement": unit,
            "has_mean": mean_type == 1,
            "mean_type": mean_type,
            "has_sum": has_sum,
            "name": None,
            "source": "recorder",
            "statistics_unit_of_measurement": unit,
            "unit_class": unit_class,
        }
        for period, items in rows.items():
            table = self.statistics.setdefault((statistic_id, period), {})
            for item in items:
                table[item["start"].timestamp()] = dict(item)

    def statistics_during_period(self, msg: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """As the recorder answers: start <= row start < end, ms times, the statistic's columns."""
        period = _PERIODS.get(msg.get("period", ""))
        start = _parse_time(msg.get("start_time"))
        end = _parse_time(msg.get("end_time")) if msg.get("end_time") else None
        ids = msg.get("statistic_ids")
        if period is None or start is None or type(ids) is not list or not ids:
            raise _CommandError("invalid_format", "bad statistics request")
        types = set(msg.get("types") or (*_MEAN_COLUMNS, *_SUM_COLUMNS, "change"))
        result: dict[str, list[dict[str, Any]]] = {}
        for statistic_id in ids:
            meta = self.statistics_meta.get(statistic_id)
            table = self.statistics.get((statistic_id, period), {})
            if meta is None:
                continue
            columns = {
                *(_MEAN_COLUMNS if meta["mean_type"] else ()),
                *(_SUM_COLUMNS if meta["has_sum"] else ()),
            } & types
            rows = []
            for begin in sorted(table):
                if begin < start.timestamp() or (end is not None and begin >= end.timestamp()):
                    continue
                item = table[begin]
                row: dict[str, Any] = {
                    "start": int(begin * 1000),
                    "end": int((begin + period) * 1000),
                }
                for column in sorted(columns):
                    value = item.get(column)
                    if column == "last_reset" and value is not None:
                        value = int(value.timestamp() * 1000)
                    row[column] = value
                rows.append(row)
            if rows:
                result[statistic_id] = rows
        return result


@pytest.fixture
async def fake_ha(socket_enabled: None) -> AsyncGenerator[FakeHA]:
    """A started fake Home Assistant on 127.0.0.1; stopped after the test."""
    server = FakeHA()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
