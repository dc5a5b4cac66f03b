"""What capture publishes to the rest of the integration: a frozen record of its totals.

`EventCapture.stats` is replaced (never changed in place) when a total users see changes: at
start (the restored totals), when an event is dropped (`overflow`), when the link is back (the
last outage) and when a gap is closed (the rest). The coordinator reads it when it builds its
data; the sensors read its fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..client import Outage  # noqa: TID252 - the package's engine


@dataclass(frozen=True, kw_only=True)
class CaptureStats:
    """Capture's totals as last published (the defaults: nothing published yet)."""

    # Remote state changes fired as backfilled, in all runs (checkpointed).
    backfilled: int = 0
    # Backfill on and the remote's history not known to be missing (None before the start).
    backfill_available: bool | None = None
    # The Last outage sensor: the link's last outage (its recovery once its gap is closed).
    last_outage: Outage | None = None
    # Events dropped because the local queue was full, in all runs (checkpointed).
    overflow: int = 0
    # Reconnects before the last reload or restart (the engine counts those since).
    reconnects_base: int = 0
