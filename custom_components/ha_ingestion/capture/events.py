"""Local events: what a remote event becomes on this bus, and what is rejected on the way in.

Everything here is pure (no Home Assistant objects), so the live path and the backfill build local
events the same way and tests can check each rule directly.

A local `ha_ingestion_event` carries exactly these fields:

- `entry_id`, `remote_name`: which link it came from;
- `event_type`: the remote event type;
- `data`: the remote event data with every `context` removed: `data.context`, and for
  `state_changed` also `data.new_state.context` and `data.old_state.context` (a remote user id
  means nothing here and must not leak into local automations or the recorder);
- `time_fired`: the remote's time (ISO text, the remote's clock);
- `origin`: always `"REMOTE"`, for live and backfilled events alike;
- `backfilled`: `false` live, `true` for state changes recovered from the remote's history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import logging
import math
import time
from typing import Any, Final

ORIGIN: Final = "REMOTE"
STATE_CHANGED: Final = "state_changed"
MATCH_ALL: Final = "*"
CONTEXT: Final = "context"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# ---------------------------------------------------------------------------------- time


def iso_to_us(text: Any) -> int | None:
    """Whole microseconds since the epoch of an ISO time text; None when it is not one."""
    if type(text) is not str:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def ts_to_us(value: Any) -> int | None:
    """Whole microseconds of a float epoch (a history row's `lu`), rounded as datetime does.

    A real recorder keeps its clock's digits below the microsecond; events carry whole
    microseconds. Rounding makes both the same integer, so de-duplication is a set lookup.
    """
    if type(value) not in (int, float) or math.isnan(value):
        return None
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except OverflowError, OSError, ValueError:
        return None
    return (moment - _EPOCH) // _MICROSECOND


def us_to_iso(us: int) -> str:
    """ISO text (UTC) of whole microseconds since the epoch."""
    return (_EPOCH + us * _MICROSECOND).isoformat()


# ---------------------------------------------------------------------------------- sanitizing


def sanitize_data(data: dict[str, Any]) -> dict[str, Any]:
    """The event data without any remote context (top level, new_state, old_state).

    A shallow copy (the remote's dicts are never changed), each without its `context` key.
    """
    clean = data.copy()
    if CONTEXT in clean:
        del clean[CONTEXT]
    for key in ("new_state", "old_state"):
        state = clean.get(key)
        if type(state) is dict and CONTEXT in state:
            state = state.copy()
            del state[CONTEXT]
            clean[key] = state
    return clean


def local_event(
    *,
    entry_id: str,
    remote_name: str,
    event_type: str,
    data: dict[str, Any],
    time_fired: Any,
    backfilled: bool,
) -> dict[str, Any]:
    """The data of one `ha_ingestion_event`."""
    return {
        "entry_id": entry_id,
        "remote_name": remote_name,
        "event_type": event_type,
        "data": sanitize_data(data),
        "time_fired": time_fired if type(time_fired) is str else None,
        "origin": ORIGIN,
        "backfilled": backfilled,
    }


# ---------------------------------------------------------------------------------- validation


class Rejected(Exception):  # noqa: N818 - a verdict, raised and caught inside this package
    """A remote event that is skipped; `reason` is the counter it goes to."""

    def __init__(self, reason: str) -> None:
        """Remember why."""
        super().__init__(reason)
        self.reason = reason


def check_event(event: dict[str, Any], subscribed: frozenset[str]) -> tuple[str, dict[str, Any]]:
    """(event_type, data) of an acceptable remote event; raise `Rejected` otherwise.

    Only subscribed types pass (all types when `*` is subscribed); data must be an object.
    """
    event_type = event.get("event_type")
    if type(event_type) is not str or not event_type:
        raise Rejected("bad_event_type")
    if event_type not in subscribed and MATCH_ALL not in subscribed:
        raise Rejected("unexpected_event_type")
    data = event.get("data")
    if type(data) is not dict:
        raise Rejected("bad_data")
    return event_type, data


def check_state_changed(data: dict[str, Any]) -> tuple[str, int | None]:
    """(entity_id, last_updated in µs or None for a removal) of a valid state_changed; or Rejected."""
    entity_id = data.get("entity_id")
    if type(entity_id) is not str or "." not in entity_id:
        raise Rejected("bad_entity_id")
    old_state = data.get("old_state")
    if old_state is not None and type(old_state) is not dict:
        raise Rejected("bad_state")
    new_state = data.get("new_state")
    if new_state is None:
        return entity_id, None
    if type(new_state) is not dict:
        raise Rejected("bad_state")
    updated = iso_to_us(new_state.get("last_updated"))
    if updated is None:
        raise Rejected("bad_last_updated")
    return entity_id, updated


class SkipCounter:
    """Counts skipped input by reason; logs at most once per `interval` seconds."""

    def __init__(
        self, logger: logging.Logger, what: str, interval: float = 60.0, clock: Any = None
    ) -> None:
        """`what` names the input in the log line."""
        self.counts: dict[str, int] = {}
        self.total = 0
        self._logger = logger
        self._what = what
        self._interval = interval
        self._clock = clock or time.monotonic
        self._next_log = 0.0
        self._logged_total = 0

    def skip(self, reason: str) -> None:
        """Count one skipped item; log a summary when the interval has passed."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.total += 1
        now = self._clock()
        if now >= self._next_log:
            self._next_log = now + self._interval
            self._logger.warning(
                "Skipped %d malformed %s so far (%s); the link stays up",
                self.total,
                self._what,
                ", ".join(f"{key}: {value}" for key, value in sorted(self.counts.items())),
            )
            self._logged_total = self.total
