"""Which platforms an entry has loaded: its own, and only the mirrored domains it needs.

At setup the entry forwards its own platforms and the domains of the mirrors it has registered
(they appear at once, unavailable until the link tells). A remote entity of a domain not loaded
yet waits in `LocalMirrors.pending` and asks for its domain here: the platform is loaded late,
once, by one task that waits for the entry's setup lock to be free (so it starts only once setup
has finished) and forwards, the forward taking the lock (so unload or reload wait for a load in
progress), the domains asked for meanwhile in one forward. A failed load is counted and logged
once; its mirrors keep waiting; the link goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState, OperationNotAllowed
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

from ..client import TaskSet  # noqa: TID252 - the package's engine
from ..const import LOGGER  # noqa: TID252 - the package's own constants

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


class EntryPlatforms:
    """The platforms one entry has loaded, and the late loads of mirrored domains."""

    def __init__(self, hass: HomeAssistant, entry: HaIngestionConfigEntry, tasks: TaskSet) -> None:
        """`tasks`: the mirror's tasks (cancelled and awaited when it stops)."""
        self.hass = hass
        self.entry = entry
        self.tasks = tasks
        self.loaded: set[str] = set()  # forwarded, at setup or late
        self.failed: set[str] = set()  # a late load raised: not tried again until a reload
        self.failures = 0
        self._wanted: set[str] = set()  # asked for, not forwarded yet
        self._loading: set[str] = set()  # in the forward running now
        self._running = False

    def at_setup(self, domains: Iterable[str]) -> list[str]:
        """The platforms setup forwards (`domains`), counted as loaded."""
        self.loaded.update(domains)
        return sorted(self.loaded)

    def want(self, domain: str) -> None:
        """A mirror of `domain` waits for its platform: load it, once."""
        if domain in self.loaded or domain in self.failed:
            return
        # Asked for again while loading: dropped at the next round (loaded by then).
        self._wanted.add(domain)
        if not self._running:
            self._running = True
            self.tasks.start(self._load(), "mirror platforms")

    async def _load(self) -> None:
        """Forward every wanted domain, those asked for together in one call; never raises.

        The forward takes the entry's setup lock itself: it is waited for here (setup, an
        unload or a reload hold it), never held while forwarding (Home Assistant 2026.11 waits
        for the lock of a loaded entry inside the forward: holding it here would never end).
        """
        entry = self.entry
        try:
            # Not within the caller (the task may start eagerly): a platform set up adds its
            # waiting mirrors in its own batch, never inside the message being applied; and the
            # domains of that whole message are asked for by then, loaded in one forward.
            await asyncio.sleep(0)
            while self._wanted:
                async with entry.setup_lock:
                    pass  # setup has finished (or an unload or reload has)
                if entry.state is not ConfigEntryState.LOADED:
                    return  # setup failed, or unloaded: nothing to add platforms to
                # Setup may have loaded some meanwhile (asked for before it forwarded).
                domains = sorted(self._wanted - self.loaded)
                if not domains:
                    self._wanted.clear()
                    continue
                # Imported first, so the forward checks the lock with no wait before it.
                integration = await async_get_integration(self.hass, entry.domain)
                await integration.async_get_platforms(domains)
                if entry.setup_lock.locked():
                    continue  # taken meanwhile (an unload): wait for it again
                self._loading = set(domains)
                self._wanted.difference_update(domains)
                try:
                    await self.hass.config_entries.async_forward_entry_setups(entry, domains)
                except OperationNotAllowed:
                    return  # unloaded meanwhile
                except Exception:
                    self.failures += 1
                    self.failed.update(domains)
                    if self.failures == 1:
                        LOGGER.exception(
                            "Could not load the platforms %s of %s; their mirrors wait "
                            "(see diagnostics); other entities are not affected",
                            ", ".join(domains),
                            entry.title,
                        )
                else:
                    self.loaded.update(domains)
                finally:
                    self._loading = set()
        finally:
            self._running = False

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show."""
        return {
            "platforms_loaded": sorted(self.loaded),
            "platforms_waiting": sorted(self._loading | self._wanted),
            "platforms_failed": sorted(self.failed),
            "platform_load_failures": self.failures,
        }
