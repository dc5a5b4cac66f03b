"""Long work on the event loop, in slices: yield to the loop after so many items or so much time.

Used where one message or reply can mean thousands of items of local work: firing a backfill's
changes (`capture/backfill.py`) and applying a big `subscribe_entities` message to the mirrors
(`mirror/updates.py`). What each item costs locally (listeners, state writes) is not ours to know,
so a slice ends at whichever comes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time

SLICE_ITEMS = 256
SLICE_SECONDS = 0.01


class Slices:
    """Counts items of work and yields to the loop when a slice is full."""

    def __init__(
        self,
        items: int = SLICE_ITEMS,
        seconds: float = SLICE_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """A slice is `items` items or `seconds` of `clock`, whichever comes first."""
        self._items = items
        self._seconds = seconds
        self._clock = clock
        self._count = 0
        self._since = clock()

    def full(self) -> bool:
        """Count one item done; is the slice full now?"""
        self._count += 1
        return self._count >= self._items or self._clock() - self._since >= self._seconds

    async def pause(self) -> None:
        """Yield to the loop; a new slice begins."""
        await asyncio.sleep(0)
        self._count = 0
        self._since = self._clock()

    async def tick(self) -> None:
        """Count one item done; yield when the slice is full."""
        if self.full():
            await self.pause()
