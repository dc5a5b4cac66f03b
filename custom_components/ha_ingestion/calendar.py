"""Calendar platform: mirrors of the remote's calendars; events read and created over the link.

`calendar.get_events` and the calendar panel read the remote's `get_events` response;
`calendar.create_event` creates the event on the remote. Editing and deleting an event from the
panel (WebSocket commands with no remote service) are refused with a translated error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.calendar import CalendarEntity, CalendarEvent
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .mirror.entity import NativeMirror, feature_flags
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import remote_moment

__all__ = ["PARALLEL_UPDATES", "CalendarMirror", "async_setup_entry"]


class CalendarMirror(NativeMirror, CalendarEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote calendar."""

    _features = feature_flags("calendar")

    @property
    def event(self) -> CalendarEvent | None:
        """None: the remote's state and attributes tell the current event."""
        return None

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """The remote's events in the range (one that does not fit a calendar event: left out)."""
        answer = await self._forward(
            "get_events",
            {"start_date_time": start_date, "end_date_time": end_date},
            response=True,
            read=True,
        )
        events = answer.get("events") if isinstance(answer, dict) else None
        if not isinstance(events, list):
            self._bad("events", events)
            return []
        found: list[CalendarEvent] = []
        for item in events:
            if not isinstance(item, dict):
                continue
            start, end = remote_moment(item.get("start")), remote_moment(item.get("end"))
            try:
                found.append(
                    CalendarEvent(
                        start=start,  # type: ignore[arg-type]  # checked by CalendarEvent
                        end=end,  # type: ignore[arg-type]
                        summary=str(item.get("summary") or ""),
                        description=item.get("description"),
                        location=item.get("location"),
                        uid=item.get("uid"),
                        recurrence_id=item.get("recurrence_id"),
                        rrule=item.get("rrule"),
                    )
                )
            except HomeAssistantError, TypeError, ValueError:  # its own validation
                self._bad("events", item)
        return found

    async def async_create_event(self, **kwargs: Any) -> None:
        """On the remote, with the service's own field names."""
        start, end = kwargs.pop("dtstart"), kwargs.pop("dtend")
        if isinstance(start, datetime):
            kwargs |= {"start_date_time": start, "end_date_time": end}
        else:
            kwargs |= {"start_date": start, "end_date": end}
        await self._forward("create_event", kwargs)

    async def async_delete_event(self, *args: Any, **kwargs: Any) -> None:
        """No remote service: refused with a translated error."""
        await self._refuse_unforwarded("deleting a calendar event")

    async def async_update_event(self, *args: Any, **kwargs: Any) -> None:
        """No remote service: refused with a translated error."""
        await self._refuse_unforwarded("changing a calendar event")


async_setup_entry = native_setup(CalendarMirror)
