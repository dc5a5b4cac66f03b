"""Control: service calls on native mirrors forwarded to the remote entity, over real sockets.

The fake remote (`tests/fake_ha.py`) records every `call_service` and answers as Home Assistant
does (its context; the response when asked; an error when told). Every wait is bounded.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.const import CONF_MIRROR_INCLUDE
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
