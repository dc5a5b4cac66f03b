"""A real remote with entities of nearly every domain, for the mirror and control proofs.

    remote = EveryDomainRemote()            # a RemoteHass; setup()/close()/cleanup() as usual
    async with EveryDomainRemote() as remote:
        counts = await domain_counts(remote)

What it loads (YAML only, so that a restart or a reused config dir gives the same remote):

- Home Assistant's `demo` integration (`RemoteHass(demo=True)`): about 120 entities in some 35
  domains, among them every common controllable one (light, switch, cover, climate, fan, lock,
  media_player, vacuum, humidifier, water_heater, valve, siren, number, select, text, date, time,
  datetime, button, remote, update, alarm_control_panel, notify) and calendar, camera, weather,
  device_tracker, event, air_quality, geo_location, image_processing, stt;
- `kitchen_sink` (Home Assistant's second demo): `lawn_mower` and `image`, which the demo lacks;
- `shopping_list` (its config entry made through its config flow over REST at the first
  `setup()`, as a user adds it; its YAML import shows a form and makes none): `todo.shopping_list`;
- one YAML `scene`.

Not there: domains without a demo platform (`tts` entities, `wake_word`, `assist_satellite`,
`ai_task`...). The demo's entities live in memory: a restart brings back its initial states.
`CONTROL_CASES` names, per controllable domain, one ordinary service call and the remote state
it leads to (checked against both releases' demo entities).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
import time
from typing import Any

import aiohttp

from .remote import REQUEST_TIMEOUT, RemoteHass, RemoteHassError

EVERY_DOMAIN_NAME = "E2E Every Domain"

# What the demo lacks (the demo itself comes with RemoteHass(demo=True)).
EVERY_DOMAIN_EXTRA_YAML = """\
config:
kitchen_sink:
scene:
  - id: e2e_every_domain_evening
    name: E2E evening
    entities:
      switch.decorative_lights: "on"
"""

# Domains the remote has entities of on both releases (at least these; `remote` and
# `geo_location` only on newer ones).
EXPECTED_DOMAINS: frozenset[str] = frozenset(
    {
        "air_quality",
        "alarm_control_panel",
        "binary_sensor",
        "button",
        "calendar",
        "camera",
        "climate",
        "cover",
        "date",
        "datetime",
        "device_tracker",
        "event",
        "fan",
        "humidifier",
        "image",
        "lawn_mower",
        "light",
        "lock",
        "media_player",
        "notify",
        "number",
        "scene",
        "select",
        "sensor",
        "siren",
        "switch",
        "text",
        "time",
        "todo",
        "update",
        "vacuum",
        "valve",
        "water_heater",
        "weather",
    }
)


# Integrations added through their config flow (over REST) when the remote has no entry of them.
CONFIG_FLOW_INTEGRATIONS: tuple[str, ...] = ("shopping_list",)


class EveryDomainRemote(RemoteHass):
    """A RemoteHass with entities of nearly every domain; see the module docstring."""

    def __init__(self, config_dir: Any = None, **kwargs: Any) -> None:
        """Prepare (nothing runs until `setup()`); RemoteHass's keywords, `demo` always on."""
        kwargs.setdefault("name", EVERY_DOMAIN_NAME)
        kwargs["extra_yaml"] = EVERY_DOMAIN_EXTRA_YAML + kwargs.get("extra_yaml", "")
        kwargs["demo"] = True
        super().__init__(config_dir, **kwargs)

    async def setup(self) -> dict[str, float]:
        """RemoteHass.setup(), then add the config-flow integrations it lacks (timed)."""
        timings = await super().setup()
        began = time.monotonic()
        for handler in CONFIG_FLOW_INTEGRATIONS:
            await self.add_integration(handler)
        timings["integrations"] = time.monotonic() - began
        timings["total"] += timings["integrations"]
        return timings

    async def add_integration(self, handler: str) -> bool:
        """Add `handler` through its config flow (a form without fields); False if it had one."""
        async with aiohttp.ClientSession() as http:
            async with (
                asyncio.timeout(REQUEST_TIMEOUT),
                http.get(
                    f"{self.url}/api/config/config_entries/entry",
                    params={"domain": handler},
                    headers=self._auth(self.admin_token),
                ) as resp,
            ):
                if resp.status != 200:
                    raise RemoteHassError(f"listing {handler} entries: HTTP {resp.status}")
                if await resp.json():
                    return False
            flow = await self._post_json(
                http,
                "/api/config/config_entries/flow",
                {"handler": handler},
                token=self.admin_token,
            )
            result = await self._post_json(
                http,
                f"/api/config/config_entries/flow/{flow['flow_id']}",
                {},
                token=self.admin_token,
            )
        if result.get("type") != "create_entry":
            raise RemoteHassError(f"adding {handler} through its config flow: {result}")
        return True


async def remote_states(remote: RemoteHass) -> dict[str, dict[str, Any]]:
    """Every state of the remote by entity id (one `get_states`)."""
    states = await remote.command({"type": "get_states"})
    return {state["entity_id"]: state for state in states}


async def domain_counts(remote: RemoteHass) -> Counter[str]:
    """How many entities the remote has per domain."""
    return Counter(entity_id.split(".", 1)[0] for entity_id in await remote_states(remote))


@dataclass(frozen=True, kw_only=True)
class ControlCase:
    """One ordinary service call on a remote entity and what the remote shows afterwards.

    `expect` maps "state" or an attribute name to the value the remote entity has once the call
    is done (a frozenset: one of those values, for a state that moves on by itself).
    """

    entity_id: str
    service: str
    data: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any]

    @property
    def domain(self) -> str:
        """The entity's (and the service's) domain."""
        return self.entity_id.split(".", 1)[0]

    def holds(self, state: dict[str, Any] | None) -> bool:
        """The remote's state (as `get_states` gives it) shows the call's outcome."""
        if state is None:
            return False
        for key, value in self.expect.items():
            seen = state["state"] if key == "state" else state["attributes"].get(key)
            if seen not in value if isinstance(value, frozenset) else seen != value:
                return False
        return True


# One per controllable domain of the demo; every call changes the entity from its initial state.
CONTROL_CASES: tuple[ControlCase, ...] = (
    ControlCase(
        entity_id="light.bed_light",
        service="turn_on",
        data={"brightness": 120},
        expect={"state": "on", "brightness": 120},
    ),
    ControlCase(entity_id="switch.ac", service="turn_on", expect={"state": "on"}),
    ControlCase(entity_id="cover.kitchen_window", service="open_cover", expect={"state": "open"}),
    ControlCase(
        entity_id="climate.hvac",
        service="set_hvac_mode",
        data={"hvac_mode": "heat"},
        expect={"state": "heat"},
    ),
    ControlCase(
        entity_id="fan.living_room_fan",
        service="turn_on",
        data={"percentage": 67},
        expect={"state": "on", "percentage": 67},
    ),
    ControlCase(entity_id="lock.kitchen_door", service="lock", expect={"state": "locked"}),
    ControlCase(
        entity_id="media_player.living_room",
        service="volume_set",
        data={"volume_level": 0.3},
        expect={"volume_level": 0.3},
    ),
    ControlCase(
        entity_id="vacuum.demo_vacuum_0_ground_floor",
        service="start",
        expect={"state": "cleaning"},
    ),
    ControlCase(
        entity_id="humidifier.humidifier",
        service="set_humidity",
        data={"humidity": 40},
        expect={"humidity": 40},
    ),
    ControlCase(
        entity_id="water_heater.demo_water_heater_celsius",
        service="set_temperature",
        data={"temperature": 52},
        expect={"temperature": 52},
    ),
    ControlCase(entity_id="valve.orchard", service="open_valve", expect={"state": "open"}),
    ControlCase(entity_id="siren.siren", service="turn_off", expect={"state": "off"}),
    ControlCase(
        entity_id="number.volume",
        service="set_value",
        data={"value": 17},
        expect={"state": "17.0"},
    ),
    ControlCase(
        entity_id="select.speed",
        service="select_option",
        data={"option": "light_speed"},
        expect={"state": "light_speed"},
    ),
    ControlCase(
        entity_id="text.text",
        service="set_value",
        data={"value": "From here"},
        expect={"state": "From here"},
    ),
    ControlCase(
        entity_id="date.date",
        service="set_value",
        data={"date": "2026-12-24"},
        expect={"state": "2026-12-24"},
    ),
    ControlCase(
        entity_id="time.time",
        service="set_value",
        data={"time": "06:30:00"},
        expect={"state": "06:30:00"},
    ),
    ControlCase(
        entity_id="datetime.date_and_time",
        service="set_value",
        data={"datetime": "2026-12-24T18:00:00+00:00"},
        expect={"state": "2026-12-24T18:00:00+00:00"},
    ),
    ControlCase(
        entity_id="alarm_control_panel.security",
        service="alarm_arm_away",
        data={"code": "1234"},
        expect={"state": frozenset({"arming", "armed_away"})},
    ),
    ControlCase(
        entity_id="update.demo_update_no_install",
        service="skip",
        expect={"state": "off"},
    ),
    ControlCase(
        entity_id="lawn_mower.mower_can_mow",
        service="start_mowing",
        expect={"state": "mowing"},
    ),
    ControlCase(
        entity_id="todo.shopping_list",
        service="add_item",
        data={"item": "e2e milk"},
        expect={"state": "1"},
    ),
)
