"""The durable checkpoint of one entry: how far capture is known complete, and the totals users see.

Stored with Home Assistant's `Store` (`.storage/ha_ingestion.capture.<entry_id>`), written at most
every `SAVE_DELAY` seconds while things change, at once when the entry unloads, and by the Store's
own final write when Home Assistant stops. What it holds:

- `remote_us`: the remote's time (µs, its clock) up to which every change was delivered here;
- `offset_us`: the remote's clock minus ours, as last measured from live events;
- `seen`: per entity, the last_updated (µs) of the newest change delivered here: after a restart
  the backfill fires only what is newer, so a clean stop repeats nothing;
- `gap`: the open gap (start on the remote's clock, what arrived live meanwhile), so a reload or
  restart in the middle of a backfill goes on where it was;
- `totals`: reconnects, backfilled, dropped, and the recent gap records.

After a crash (no final write) the changes fired after the last write are fired again: at most
`SAVE_DELAY` seconds' worth. Nothing is lost: the restored `remote_us` is older, not newer.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from ..const import DOMAIN  # noqa: TID252 - the package's own constants

STORAGE_VERSION = 1
SAVE_DELAY = 10.0


def storage_key(entry_id: str) -> str:
    """The Store key of an entry's checkpoint."""
    return f"{DOMAIN}.capture.{entry_id}"


class Checkpoint:
    """Loads once at start; `schedule()` a throttled write; `async_flush()` writes now."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """`data()` must be given before the first write (see `async_load`)."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, storage_key(entry_id), private=True, atomic_writes=True
        )
        self._data_func: Any = None
        self._pending = False
        self.writes = 0

    async def async_load(self, data_func: Any) -> dict[str, Any] | None:
        """The stored checkpoint (None the first time); `data_func()` builds what to write."""
        self._data_func = data_func
        stored = await self._store.async_load()
        return stored if isinstance(stored, dict) else None

    def _build(self) -> dict[str, Any]:
        self._pending = False
        self.writes += 1
        data: dict[str, Any] = self._data_func()
        return data

    def schedule(self) -> None:
        """Something changed: write within SAVE_DELAY (cheap when a write is already pending)."""
        if not self._pending and self._data_func is not None:
            self._pending = True
            self._store.async_delay_save(self._build, SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write now (unload)."""
        if self._data_func is not None:
            self._pending = False
            await self._store.async_save(self._build())

    async def async_remove(self) -> None:
        """Delete the stored checkpoint (entry removed)."""
        await self._store.async_remove()
