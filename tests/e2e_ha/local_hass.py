"""A LOCAL `hass` process running this checkout's integration, linked through the real config flow.

Unlike the rest of tests/e2e_ha (the integration inside the pytest `hass`), this is Home Assistant
as a user runs it: its own process (so it can be SIGKILLed), `custom_components/ha_ingestion`
symlinked in (`tests.harness.develop.with_integration`), the entry made through the config flow
over REST (`tests.harness.develop.link`), default options and default recorder settings. What it
did is read the way a user could: its REST API (states, diagnostics), its WebSocket API and its
own recorder's database (`events` table: every `ha_ingestion_event` it fired, also those fired
right after a start, before any client could subscribe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass
from datetime import datetime
import json
from pathlib import Path
import sqlite3
import time
from typing import Any

from homeassistant.util import slugify

from tests.harness import RemoteHass
from tests.harness.develop import address, existing_entries, link, rest, with_integration

DOMAIN = "ha_ingestion"
EVENT = "ha_ingestion_event"
LEVEL = "input_number.e2e_level"  # on the harness's default remote (DEFAULT_ENTITIES_YAML)


def update_key(iso: str) -> int:
    """A state's `last_updated` (ISO) as integer microseconds: one change's identity."""
    return round(datetime.fromisoformat(iso).timestamp() * 1_000_000)


async def change_level(remote: RemoteHass, n: int) -> tuple[int, str]:
    """Set the level to a new value; (last_updated µs, state) as the remote reports it."""
    before = await remote.get_state(LEVEL)
    assert before is not None
    await remote.set_input_number(LEVEL, (float(before["state"]) + 1) % 101)
    after = await remote.get_state(LEVEL)
    assert after is not None
    assert after["last_updated"] != before["last_updated"], n
    return update_key(after["last_updated"]), after["state"]


async def start_local(config_dir: Path, *, name: str, **kwargs: Any) -> RemoteHass:
    """Set up (start, onboard, persist) a local hass with the integration; caller closes it."""
    local = with_integration(RemoteHass(config_dir, name=name, **kwargs))
    try:
        await local.setup()
    except BaseException:
        local.kill()
        raise
    return local


@dataclass
class LocalLink:
    """One entry of the integration on a local hass process."""

    local: RemoteHass
    entry_id: str
    slug: str

    async def state(self, entity_id: str) -> str | None:
        """An entity's state over REST (None when it does not exist or the API does not answer)."""
        with contextlib.suppress(OSError, TimeoutError):
            status, data = await rest(self.local, "GET", f"/api/states/{entity_id}")
            if status == 200 and isinstance(data, dict):
                return str(data.get("state"))
        return None

    @property
    def connected_id(self) -> str:
        """binary_sensor.<slug>_connected."""
        return f"binary_sensor.{self.slug}_connected"

    async def connected(self) -> bool:
        """The entry's Connected binary sensor is on."""
        return await self.state(self.connected_id) == "on"

    async def diagnostics(self) -> dict[str, Any]:
        """The entry's diagnostics, as the download gives them (the integration's part)."""
        status, data = await rest(
            self.local, "GET", f"/api/diagnostics/config_entry/{self.entry_id}"
        )
        assert status == 200, (status, data)
        result: dict[str, Any] = data["data"]
        return result

    def checkpoint(self) -> dict[str, Any] | None:
        """The capture checkpoint on disk (what a SIGKILL leaves behind)."""
        path = self.local.config_dir / ".storage" / f"{DOMAIN}.capture.{self.entry_id}"
        try:
            stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["data"]
        except OSError, ValueError, KeyError:
            return None
        return stored

    def recorded_events(self) -> list[tuple[float, dict[str, Any]]]:
        """(time fired, data) of every ha_ingestion_event in the local recorder's database.

        In order. What the recorder had not committed when the process was killed is not there.
        """
        path = self.local.config_dir / "home-assistant_v2.db"
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT e.time_fired_ts, d.shared_data FROM events e "
                "JOIN event_types t ON e.event_type_id = t.event_type_id "
                "JOIN event_data d ON e.data_id = d.data_id "
                "WHERE t.event_type = ? ORDER BY e.time_fired_ts, e.event_id",
                (EVENT,),
            ).fetchall()
        return [(float(row[0]), json.loads(row[1])) for row in rows]


async def link_local(local: RemoteHass, url: str, token: str) -> LocalLink:
    """Run the config flow on `local` over REST for `url`; the entry it made, once connected."""
    outcome = await link(local, url, token, True, address(url))
    assert outcome.startswith("linked"), outcome
    (entry,) = await existing_entries(local)
    linked = LocalLink(local, entry["entry_id"], slugify(entry["title"]))
    await wait_until(linked.connected, 60, "the local entry connected", local)
    return linked


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float,
    what: str,
    local: RemoteHass,
    poll: float = 0.25,
) -> float:
    """Poll (bounded) until `predicate()` holds; the failure carries the local log's tail."""
    began = time.monotonic()
    while True:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s\n{local.log_tail(40)}")
        await asyncio.sleep(poll)
