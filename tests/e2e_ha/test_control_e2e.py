"""Control through a mirror against a real remote Home Assistant (tests/harness).

The shared remote has a template light (`light.e2e_lamp`, tests/harness/remote.py). A call made
here on its mirror reaches it as the real remote's `call_service` (its schema, its entity
services), the remote's light changes and then the mirror; during an outage a call is not sent
and never runs later. Every wait is bounded.
"""

from __future__ import annotations

import time

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.exceptions import HomeAssistantError
import pytest

from custom_components.ha_ingestion.const import CONF_MIRROR_ENTITIES, CONF_MIRROR_INCLUDE
from tests.e2e.helpers import record
from tests.e2e_ha.conftest import LinkFactory
from tests.harness import RemoteHass
from tests.harness.proxy import FaultProxy

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LAMP = "light.e2e_lamp"


async def test_a_call_on_a_mirror_changes_the_remote_then_the_mirror_never_during_an_outage(
    remote: RemoteHass, proxy: FaultProxy, link_factory: LinkFactory
) -> None:
    await remote.call_service(
        "input_boolean", "turn_off", {"entity_id": "input_boolean.e2e_lamp_power"}
    )
    link = await link_factory(
        f"{proxy.host}:{proxy.port}",
        **{CONF_MIRROR_ENTITIES: True, CONF_MIRROR_INCLUDE: [LAMP]},
    )
    hass = link.hass
    lamp = f"light.{link.slug}_e2e_lamp"
    await link.wait_until(lambda: link.state_of(lamp) == "off", 20, f"{lamp} mirrored")

    # Home Assistant's light service runs here (percent to 0-255), the remote's light runs it.
    started = time.monotonic()
    await hass.services.async_call(
        "light", "turn_on", {"entity_id": lamp, "brightness_pct": 40}, blocking=True
    )
    answered_s = time.monotonic() - started
    await link.wait_until(
        lambda: (
            (s := hass.states.get(lamp)) is not None
            and s.state == "on"
            and s.attributes.get("brightness") == 102
        ),
        20,
        f"{lamp} on at 40 %",
    )
    # One sample each (not a benchmark: `scripts/bench control` measures that).
    record("control", call_answered_s=answered_s, mirror_changed_s=time.monotonic() - started)
    shown = hass.states.get(lamp)
    assert shown is not None
    remote_lamp = await remote.get_state(LAMP)
    assert remote_lamp is not None
    assert remote_lamp["state"] == "on"
    attributes = dict(shown.attributes)
    assert attributes.pop("friendly_name").endswith("E2E lamp")
    assert attributes == {
        k: v for k, v in remote_lamp["attributes"].items() if k != "friendly_name"
    }

    # The link down: the mirror is unavailable and the call is skipped (Home Assistant skips an
    # unavailable entity); called on the entity directly it fails at once, translated.
    await proxy.refuse()
    proxy.reset_connections()
    await link.wait_until(lambda: link.state_of(lamp) == STATE_UNAVAILABLE, 20, "unavailable")
    await hass.services.async_call("light", "turn_off", {"entity_id": lamp}, blocking=True)
    entity = link.entry.runtime_data.mirror.local.entities[LAMP]
    with pytest.raises(HomeAssistantError) as err:
        await entity.async_turn_off()
    assert err.value.translation_key == "remote_unavailable"
    await proxy.refuse(False)
    await link.wait_until(lambda: link.state_of(lamp) == "on", 30, f"{lamp} back")
    remote_lamp = await remote.get_state(LAMP)
    assert remote_lamp is not None
    assert remote_lamp["state"] == "on"  # nothing sent later

    # The remote's refusal reaches the caller with the remote's reason.
    with pytest.raises(HomeAssistantError) as err:
        await entity._forward("turn_on", {"flash": "forever"})
    assert err.value.translation_key == "remote_call_failed"
    await hass.services.async_call("light", "turn_off", {"entity_id": lamp}, blocking=True)
    await link.wait_until(lambda: link.state_of(lamp) == "off", 20, f"{lamp} off")
