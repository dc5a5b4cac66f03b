"""Control: service calls on native mirrors forwarded to the remote entity, over real sockets.

The fake remote (`tests/fake_ha.py`) records every `call_service` and answers as Home Assistant
does (its context; the response when asked; an error when told). Every wait is bounded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from homeassistant.components.light.const import ColorMode
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.client import HaTimeoutError
from custom_components.ha_ingestion.const import CONF_MIRROR_INCLUDE
from custom_components.ha_ingestion.mirror.control import json_safe
from tests.conftest import wait_for
from tests.fake_ha import FakeHA
from tests.mirror.test_mirror import SetupLink

DEMO_LIGHT = {
    "min_color_temp_kelvin": 2000,
    "max_color_temp_kelvin": 6535,
    "min_mireds": 153,
    "max_mireds": 500,
    "effect_list": ["rainbow", "none"],
    "supported_color_modes": ["hs", "color_temp"],
    "effect": "rainbow",
    "color_mode": "hs",
    "brightness": 180,
    "color_temp_kelvin": None,
    "color_temp": None,
    "hs_color": [345.0, 75.0],
    "rgb_color": [255, 64, 112],
    "xy_color": [0.59, 0.274],
    "friendly_name": "Bed Light",
    "supported_features": 4,
}


async def mirrored(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    remote_id: str,
    state: str,
    attributes: dict[str, Any],
    **options: Any,
) -> tuple[MockConfigEntry, str]:
    """The remote entity mirrored here; its local entity id."""
    await fake_ha.fire_state_changed(remote_id, state, attributes)
    domain, _, object_id = remote_id.partition(".")
    entry = await setup_link(**{CONF_MIRROR_INCLUDE: [remote_id], **options})
    local_id = f"{domain}.remote_home_{object_id}"
    await wait_for(lambda: (s := hass.states.get(local_id)) is not None and s.state == state)
    return entry, local_id


def calls(fake_ha: FakeHA) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "id"} for c in fake_ha.service_calls]


async def test_light_turn_on_reaches_the_remote_processed_as_for_a_local_light(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    _, light = await mirrored(hass, fake_ha, setup_link, "light.bed_light", "on", DEMO_LIGHT)
    await hass.services.async_call(
        "light", "turn_on", {"entity_id": light, "brightness_pct": 50}, blocking=True
    )
    assert calls(fake_ha) == [
        {
            "type": "call_service",
            "domain": "light",
            "service": "turn_on",
            "service_data": {"brightness": 128},
            "target": {"entity_id": "light.bed_light"},
            "return_response": False,
        }
    ]
    state = hass.states.get(light)
    assert state is not None
    attributes = dict(state.attributes)
    assert attributes.pop("friendly_name") == "Remote Home Bed Light"
    assert attributes == {k: v for k, v in DEMO_LIGHT.items() if k != "friendly_name"}


async def test_the_remote_error_reaches_the_caller_translated(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    _, light = await mirrored(hass, fake_ha, setup_link, "light.bed_light", "on", DEMO_LIGHT)
    fake_ha.service_error = ("unauthorized", "Unauthorized")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("light", "turn_off", {"entity_id": light}, blocking=True)
    assert err.value.translation_key == "remote_call_failed"
    assert err.value.translation_placeholders == {
        "entity_id": light,
        "message": "Unauthorized",
        "code": "unauthorized",
    }
    assert hass.states.get(light).state == "on"  # type: ignore[union-attr]  # never optimistic


async def test_a_call_without_the_link_fails_at_once_and_is_never_sent_later(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    entry, light = await mirrored(hass, fake_ha, setup_link, "light.bed_light", "on", DEMO_LIGHT)
    mirror = entry.runtime_data.mirror
    entity = mirror.local.entities["light.bed_light"]
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: hass.states.get(light).state == "unavailable")  # type: ignore[union-attr]
    # Unavailable: Home Assistant skips it; called directly (a race): the translated error.
    await hass.services.async_call("light", "turn_off", {"entity_id": light}, blocking=True)
    with pytest.raises(HomeAssistantError) as err:
        await entity.async_turn_off()
    assert err.value.translation_key == "remote_unavailable"
    fake_ha.refuse = False
    await wait_for(lambda: hass.states.get(light).state == "on")  # type: ignore[union-attr]
    await hass.async_block_till_done()
    assert fake_ha.service_calls == []
    assert mirror.control.as_dict()["failed"] == {"unavailable": 1}


async def test_a_timeout_is_a_translated_error(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    entry, light = await mirrored(hass, fake_ha, setup_link, "switch.pump", "on", {})
    engine = entry.runtime_data.mirror.control.engine

    async def no_answer(payload: dict[str, Any], time_limit: float | None = None) -> Any:
        raise HaTimeoutError("no result")

    engine.command = no_answer
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("switch", "turn_off", {"entity_id": light}, blocking=True)
    assert err.value.translation_key == "remote_timeout"


async def test_bad_attributes_are_counted_and_never_crash(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    bad = {
        **DEMO_LIGHT,
        "supported_color_modes": ["hs", "warp"],
        "brightness": "bright",
        "effect_list": "rainbow",
        "min_color_temp_kelvin": -5,
    }
    entry, light = await mirrored(hass, fake_ha, setup_link, "light.bed_light", "on", bad)
    state = hass.states.get(light)
    assert state is not None
    assert state.attributes["brightness"] == "bright"  # shown as the remote tells it
    await hass.services.async_call(
        "light", "turn_on", {"entity_id": light, "hs_color": [10, 20]}, blocking=True
    )
    assert fake_ha.service_calls[-1]["service_data"] == {"hs_color": [10.0, 20.0]}
    counts = entry.runtime_data.mirror.control.as_dict()["bad_attributes"]
    # What was read for the call and the state write (a bad value read once per remote state).
    assert set(counts) >= {"light.supported_color_modes", "light.effect_list"}


def test_service_data_is_made_json_safe() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert json_safe(
        {
            "a": (1, 2),
            "b": ColorMode.HS,
            "c": moment,
            "d": date(2026, 1, 2),
            "e": time(3, 4),
            "f": timedelta(seconds=2),
            "g": {1},
            "h": object,
        }
    ) == {
        "a": [1, 2],
        "b": "hs",
        "c": "2026-01-02T03:04:05+00:00",
        "d": "2026-01-02",
        "e": "03:04:00",
        "f": 2.0,
        "g": [1],
        "h": str(object),
    }
