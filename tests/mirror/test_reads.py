"""What a domain reads outside its actions, over the link: events, items, release notes."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from tests.conftest import wait_for
from tests.fake_ha import FakeHA
from tests.mirror.test_mirror import SetupLink
from tests.mirror.test_native import REMOTE, local_id, mirror_all, mirror_of


def bad_counts(hass: HomeAssistant) -> dict[str, int]:
    entry = hass.config_entries.async_entries("ha_ingestion")[0]
    counts: dict[str, int] = entry.runtime_data.mirror.control.as_dict()["bad_attributes"]
    return counts


async def test_calendar_events_are_the_remotes(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await mirror_all(hass, fake_ha, setup_link, ["calendar"])
    fake_ha.service_responses["calendar.calendar_1"] = {
        "events": [
            {
                "start": "2026-12-07T10:00:00+00:00",
                "end": "2026-12-07T11:00:00+00:00",
                "summary": "Dentist",
                "description": "Bring the card",
                "location": "Town",
            },
            {"start": "2026-12-08", "end": "2026-12-09", "summary": "Holiday"},
            "junk",
            {"start": "soon", "end": None, "summary": "No times"},
        ]
    }
    answer = await hass.services.async_call(
        "calendar",
        "get_events",
        {"entity_id": local_id("calendar"), "duration": {"days": 3}},
        blocking=True,
        return_response=True,
    )
    events = answer[local_id("calendar")]["events"]  # type: ignore[index]
    assert [(e["summary"], e["start"]) for e in events] == [
        ("Dentist", "2026-12-07T02:00:00-08:00"),  # the same instant, in this time zone
        ("Holiday", "2026-12-08"),
    ]
    assert events[0]["location"] == "Town"
    assert bad_counts(hass) == {"calendar.events": 1}
    fake_ha.service_responses["calendar.calendar_1"] = {"events": "none"}
    assert await mirror_of(hass, "calendar").async_get_events(hass, None, None) == []
    calendar = mirror_of(hass, "calendar")
    for refused in (calendar.async_delete_event("uid"), calendar.async_update_event("uid", {})):
        with pytest.raises(HomeAssistantError) as err:
            await refused
        assert err.value.translation_key == "remote_not_supported"


async def test_todo_items_are_read_again_with_each_remote_change(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await mirror_all(hass, fake_ha, setup_link, ["todo"])
    todo = mirror_of(hass, "todo")
    await wait_for(lambda: todo.todo_items is not None)
    assert [i.summary for i in todo.todo_items] == ["Bread", "Eggs"]
    fake_ha.service_responses["todo.shopping_list"] = {
        "items": [
            {"summary": "Milk", "uid": "m", "status": "needs_action", "due": "2026-12-08"},
            {"summary": "Tea", "uid": "t", "status": "odd", "due": "2026-12-08T10:00:00+00:00"},
            {"summary": "Jam", "uid": "j", "status": "completed", "due": "never"},
            "junk",
        ]
    }
    await fake_ha.fire_state_changed("todo.shopping_list", "2", REMOTE["todo"][2])
    await wait_for(lambda: [i.summary for i in todo.todo_items] == ["Milk", "Tea", "Jam"])
    milk, tea, jam = todo.todo_items
    assert (str(milk.due), tea.status, jam.due) == ("2026-12-08", None, None)
    # Changing an item sends every field it has, by its uid (a date-time as such).
    fake_ha.service_calls.clear()
    await hass.services.async_call(
        "todo",
        "update_item",
        {"entity_id": local_id("todo"), "item": "Tea", "description": "green"},
        blocking=True,
    )
    assert fake_ha.service_calls[-1]["service_data"] == {
        "item": "t",
        "rename": "Tea",
        "description": "green",
        "due_datetime": "2026-12-08T02:00:00-08:00",
    }
    fake_ha.service_responses["todo.shopping_list"] = {"items": "junk"}
    await fake_ha.fire_state_changed("todo.shopping_list", "3", REMOTE["todo"][2])
    await wait_for(lambda: "todo.items" in bad_counts(hass))
    with pytest.raises(HomeAssistantError) as err:
        await todo.async_move_todo_item("m")
    assert err.value.translation_key == "remote_not_supported"


async def test_update_release_notes_are_the_remotes(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    hass_ws_client: WebSocketGenerator,
) -> None:
    fake_ha.release_notes["update.demo_update_with_progress"] = "## 1.0.1\nFixes."
    await mirror_all(hass, fake_ha, setup_link, ["update"])
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {"type": "update/release_notes", "entity_id": local_id("update")}
    )
    answer = await client.receive_json()
    assert answer["result"] == "## 1.0.1\nFixes."
    update = mirror_of(hass, "update")
    update.remote_id = "update.gone"
    with pytest.raises(HomeAssistantError) as err:
        await update.async_release_notes()
    assert err.value.translation_key == "remote_call_failed"
