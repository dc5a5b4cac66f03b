"""To-do platform: mirrors of the remote's to-do lists; items read and changed over the link.

The items are the remote's `todo.get_items` answer, read again with each state change of the
remote list (its state is the count of open items) and kept here for the services, the to-do
panel and its subscriptions; adding, changing and removing items run on the remote. Clearing a
field of an item (its due date or description) is not forwarded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.todo import (  # type: ignore[attr-defined,unused-ignore]
    TodoItem,  # re-exports on later releases
    TodoItemStatus,
    TodoListEntity,
)
from homeassistant.core import Context
from homeassistant.exceptions import HomeAssistantError

from .client import RemoteState
from .const import LOGGER
from .mirror.entity import NativeMirror, feature_flags
from .mirror.platform import PARALLEL_UPDATES, native_setup
from .mirror.readers import remote_moment

__all__ = ["PARALLEL_UPDATES", "TodoListMirror", "async_setup_entry"]


def _item_data(item: TodoItem) -> dict[str, Any]:
    """An item as the remote's services take it (a field that is None: left out)."""
    data: dict[str, Any] = {}
    if item.status is not None:
        data["status"] = item.status
    if item.description is not None:
        data["description"] = item.description
    if isinstance(item.due, datetime):
        data["due_datetime"] = item.due
    elif item.due is not None:
        data["due_date"] = item.due
    return data


class TodoListMirror(NativeMirror, TodoListEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote to-do list."""

    _features = feature_flags("todo")
    _items: list[TodoItem] | None = None

    @property
    def todo_items(self) -> list[TodoItem] | None:
        """The remote's items, as last read."""
        return self._items

    def set_remote(self, remote: RemoteState | None, *, link_down: Context | None = None) -> None:
        """The remote's state; its items are read again with it."""
        super().set_remote(remote, link_down=link_down)
        if remote is not None and self._added:
            self._background(self._async_read_items(), "to-do items read")

    async def async_added_to_hass(self) -> None:
        """Read the remote's items now."""
        await super().async_added_to_hass()
        if self._remote is not None:
            await self._async_read_items()

    async def _async_read_items(self) -> None:
        try:
            answer = await self._forward("get_items", {}, response=True, read=True)
        except HomeAssistantError as err:
            LOGGER.debug("Items of %s not read: %s", self.entity_id, err)
            return
        items = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            self._bad("items", items)
            return
        found: list[TodoItem] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            try:
                status = TodoItemStatus(str(item.get("status")))
            except ValueError:
                status = None
            found.append(
                TodoItem(
                    summary=item.get("summary"),
                    uid=item.get("uid"),
                    status=status,
                    due=remote_moment(item.get("due")),
                    description=item.get("description"),
                )
            )
        self._items = found
        self.async_update_listeners()

    async def async_create_todo_item(self, item: TodoItem) -> None:
        """On the remote."""
        data = _item_data(item)
        data.pop("status", None)
        await self._forward("add_item", {"item": item.summary, **data})

    async def async_update_todo_item(self, item: TodoItem) -> None:
        """On the remote: the item by its uid, every field it has."""
        await self._forward(
            "update_item", {"item": item.uid, "rename": item.summary, **_item_data(item)}
        )

    async def async_delete_todo_items(self, uids: list[str]) -> None:
        """On the remote."""
        await self._forward("remove_item", {"item": uids})

    async def async_move_todo_item(self, uid: str, previous_uid: str | None = None) -> None:
        """No remote service: refused with a translated error."""
        await self._refuse_unforwarded("moving a to-do item")


async_setup_entry = native_setup(TodoListMirror)
