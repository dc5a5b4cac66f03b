"""Control of the remote through its mirrors: a service called here runs on the remote entity.

- Every entity service called on a native mirror (`entity.py` `NativeMirror`, one class per domain
  in the top-level `<domain>.py`) reaches `RemoteControl.call`: one WebSocket `call_service` on
  the remote entity, with the data Home Assistant's own service layer handed the entity method
  (validated and converted as for a local entity), made JSON-safe.
- It completes when the remote has answered: its error reaches the caller translated
  (`remote_call_failed`, with the remote's code and message: a non-admin token's refusal shows
  the remote's reason), no answer in time is `remote_timeout`, no link is `remote_unavailable`
  at once. Never queued, never retried: a call made during an outage must not run later.
- No optimistic state: the mirror changes when the remote's own update arrives.
- Off (the `control` option): every call is refused (`mirror_read_only`) and a native mirror
  supports no feature, so the frontend shows no control.
- Bad attributes of a remote entity (wrong type, unknown enum value, out of range) are counted
  here (`BadAttributes`), logged once per entity and attribute, shown in diagnostics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any

import aiohttp
from homeassistant.exceptions import HomeAssistantError

from ..client import (  # noqa: TID252 - the package's engine
    HaClientError,
    HaCommandError,
    HaTimeoutError,
    LinkEngine,
)
from ..const import DOMAIN, LOGGER  # noqa: TID252 - the package's own constants


def json_safe(value: Any) -> Any:
    """Service data as JSON: enums by value, tuples and sets as lists, times as ISO text."""
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    return str(value)


def error(key: str, entity_id: str, **placeholders: str) -> HomeAssistantError:
    """A translated error about the mirror `entity_id`."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"entity_id": entity_id, **placeholders},
    )


class BadAttributes:
    """Remote attributes that do not fit their domain's type: counted, logged once each."""

    def __init__(self, title: str) -> None:
        """Nothing seen yet."""
        self.title = title
        self.counts: dict[str, int] = {}  # "<domain>.<attribute>" -> times seen
        self._logged: set[tuple[str, str]] = set()

    def report(self, remote_id: str, attribute: str, value: Any) -> None:
        """One bad value of `attribute` of `remote_id` (once per remote state: see `NativeMirror`)."""
        key = f"{remote_id.partition('.')[0]}.{attribute}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if (remote_id, attribute) in self._logged:
            return
        self._logged.add((remote_id, attribute))
        LOGGER.warning(
            "%s of %s: attribute %s does not fit its domain (%.80r); shown as is, not used here",
            remote_id,
            self.title,
            attribute,
            value,
        )


@dataclass(frozen=True, kw_only=True)
class RemoteHttp:
    """The remote's HTTP API as the link reaches it: base URL, the link's token, TLS check."""

    session: aiohttp.ClientSession
    base_url: str  # e.g. "https://cabin.example:8123" (no trailing slash)
    token: str
    verify_ssl: bool = True
    timeout: float = 10.0


class RemoteControl:
    """Service calls on the mirrors of one link, forwarded to the remote entities."""

    def __init__(
        self,
        engine: LinkEngine,
        title: str,
        *,
        enabled: bool,
        remote_entity_id: Callable[[str], str | None] = lambda _: None,
        http: RemoteHttp | None = None,
    ) -> None:
        """`remote_entity_id`: the remote entity of a local mirror (None: not a mirror).

        `http`: how to read the remote's camera and image proxies.
        """
        self.engine = engine
        self.http = http
        self.enabled = enabled
        self.remote_entity_id = remote_entity_id
        self.bad_attributes = BadAttributes(title)
        self.calls = 0
        self.failed: dict[str, int] = {}  # reason -> count

    async def call(
        self,
        entity_id: str,
        remote_id: str,
        service: str,
        data: Mapping[str, Any],
        *,
        response: bool = False,
        read: bool = False,
    ) -> Any:
        """Call `service` on the remote entity; the remote's response for it when asked.

        `read`: it only reads (allowed with control off).
        """
        if not self.enabled and not read:
            raise error("mirror_read_only", entity_id)
        payload = {
            "type": "call_service",
            "domain": remote_id.partition(".")[0],
            "service": service,
            "service_data": json_safe(data),
            "target": {"entity_id": remote_id},
            "return_response": response,
        }
        self.calls += 1
        result = await self.command(entity_id, payload)
        if not response:
            return None
        answer = result.get("response") if isinstance(result, dict) else None
        if not isinstance(answer, dict):
            return {}
        mine = answer.get(remote_id)
        return mine if isinstance(mine, dict) else {}

    async def command(self, entity_id: str, payload: dict[str, Any]) -> Any:
        """One WebSocket command about a mirror (a service call, the release notes).

        Its errors translated; without the link, at once (never queued).
        """
        try:
            return await self.engine.command(payload)
        except HaCommandError as err:
            self._failed("remote_error")
            raise error(
                "remote_call_failed", entity_id, message=err.message, code=err.code
            ) from err
        except HaTimeoutError as err:
            self._failed("timeout")
            raise error("remote_timeout", entity_id) from err
        except HaClientError as err:
            self._failed("unavailable")
            raise error("remote_unavailable", entity_id) from err

    async def fetch(self, entity_id: str, path: str, params: Mapping[str, str]) -> bytes:
        """A GET of the remote's HTTP API with the link's token (a camera image, ...).

        A read, not a control: allowed with control off too. The token is never logged.
        """
        http = self.http
        if http is None:
            raise error("remote_unavailable", entity_id)
        try:
            async with (
                asyncio.timeout(http.timeout),
                http.session.get(
                    f"{http.base_url}{path}",
                    params=params,
                    headers={"Authorization": f"Bearer {http.token}"},
                    ssl=http.verify_ssl,
                ) as response,
            ):
                if response.status != 200:
                    self._failed("remote_error")
                    raise error(
                        "remote_call_failed",
                        entity_id,
                        message=f"HTTP {response.status}",
                        code=str(response.status),
                    )
                return await response.read()
        except TimeoutError as err:
            self._failed("timeout")
            raise error("remote_timeout", entity_id) from err
        except aiohttp.ClientError as err:
            self._failed("unavailable")
            raise error("remote_unavailable", entity_id) from err

    def _failed(self, reason: str) -> None:
        self.failed[reason] = self.failed.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show."""
        return {
            "enabled": self.enabled,
            "calls": self.calls,
            "failed": dict(self.failed),
            "bad_attributes": dict(self.bad_attributes.counts),
        }
