"""Native mirrors of every controllable domain: each entity service forwards, or is refused cleanly.

For each domain a remote entity with the attributes of Home Assistant's own `demo` entities is
mirrored from the fake remote (`tests/fake_ha.py`); every entity service of the domain, as the
release under test registers it, is called here on the mirror and must reach the remote as one
`call_service` with the expected data, or be refused with a translated error
(`test_every_entity_service_is_covered` fails first for a service a new release adds). The
mirror's state and attributes equal the remote's (the friendly name gets the remote's name in
front, as for every mirror).
"""

from __future__ import annotations

import functools
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceNotSupported
from homeassistant.helpers import entity_registry as er, service as service_helper
from homeassistant.setup import async_setup_component
import pytest

from custom_components.ha_ingestion.const import CONF_CONTROL, CONF_MIRROR_INCLUDE
from custom_components.ha_ingestion.mirror import MIRROR_DOMAINS
from tests.conftest import wait_for
from tests.fake_ha import FakeHA
from tests.mirror.test_mirror import SetupLink

# domain -> (remote object id, state, attributes of a demo entity of the domain)
REMOTE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "switch": (
        "decorative_lights",
        "on",
        {"icon": "mdi:string-lights", "assumed_state": True, "friendly_name": "Decorative Lights"},
    ),
    "light": (
        "bed_light",
        "on",
        {
            "min_color_temp_kelvin": 2000,
            "max_color_temp_kelvin": 6535,
            "effect_list": ["rainbow", "none"],
            "supported_color_modes": ["color_temp", "hs"],
            "effect": "rainbow",
            "color_mode": "hs",
            "brightness": 180,
            "color_temp_kelvin": None,
            "hs_color": [345.0, 75.0],
            "rgb_color": [255, 64, 112],
            "xy_color": [0.59, 0.274],
            "friendly_name": "Bed Light",
            "supported_features": 4,
        },
    ),
    "cover": (
        "living_room_window",
        "open",
        {
            "current_position": 70,
            "current_tilt_position": 50,
            "device_class": "window",
            "friendly_name": "Living Room Window",
            "supported_features": 255,
        },
    ),
    "climate": (
        "ecobee",
        "heat_cool",
        {
            "hvac_modes": ["heat_cool", "cool", "heat"],
            "min_temp": 7,
            "max_temp": 35,
            "fan_modes": ["on_low", "on_high", "auto_low", "auto_high", "off"],
            "preset_modes": ["home", "eco", "away"],
            "swing_modes": ["auto", "1", "2", "3", "off"],
            "current_temperature": 23,
            "target_temp_high": 24,
            "target_temp_low": 21,
            "fan_mode": "auto_low",
            "preset_mode": "home",
            "swing_mode": "auto",
            "swing_horizontal_modes": ["on", "off"],
            "swing_horizontal_mode": "off",
            "friendly_name": "Ecobee",
            "supported_features": 958,
        },
    ),
    "fan": (
        "living_room_fan",
        "on",
        {
            "preset_modes": ["auto", "smart", "sleep", "on"],
            "direction": "forward",
            "oscillating": True,
            "percentage": 66,
            "percentage_step": 33.333333333333336,
            "preset_mode": None,
            "friendly_name": "Living Room Fan",
            "supported_features": 63,
        },
    ),
    "lock": ("front_door", "locked", {"friendly_name": "Front Door", "supported_features": 1}),
    "number": (
        "volume",
        "42.0",
        {
            "min": 0,
            "max": 100,
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "%",
            "friendly_name": "volume",
        },
    ),
    "select": (
        "speed",
        "ridiculous_speed",
        {
            "options": ["light_speed", "ridiculous_speed", "ludicrous_speed"],
            "friendly_name": "Speed",
        },
    ),
    "button": ("push", "unknown", {"friendly_name": "Push"}),
    "scene": ("romantic", "unknown", {"friendly_name": "Romantic"}),
    "siren": (
        "siren_with_all_features",
        "on",
        {
            "available_tones": ["fire", "alarm"],
            "friendly_name": "Siren with all features",
            "supported_features": 31,
        },
    ),
    "valve": (
        "front_garden",
        "open",
        {"current_position": 100, "friendly_name": "Front Garden", "supported_features": 15},
    ),
    "humidifier": (
        "hygrostat",
        "on",
        {
            "min_humidity": 0,
            "max_humidity": 100,
            "available_modes": ["home", "eco"],
            "current_humidity": 50,
            "humidity": 54,
            "mode": "home",
            "action": "humidifying",
            "friendly_name": "Hygrostat",
            "supported_features": 1,
        },
    ),
    "media_player": (
        "living_room",
        "playing",
        {
            "volume_level": 1.0,
            "is_volume_muted": False,
            "media_content_type": "tvshow",
            "media_title": "Chapter 1",
            "source_list": ["dvd", "youtube"],
            "source": "dvd",
            "sound_mode_list": ["music", "movie"],
            "sound_mode": "music",
            "shuffle": False,
            "repeat": "off",
            "entity_picture": "/api/media_player_proxy/media_player.living_room?token=x&cache=1",
            "friendly_name": "Living Room",
            "supported_features": 4194303,
        },
    ),
    "vacuum": (
        "0_ground_floor",
        "docked",
        {
            "fan_speed_list": ["min", "medium", "high", "max"],
            "battery_level": 100,
            "fan_speed": "medium",
            "friendly_name": "0_Ground_floor",
            "supported_features": 32767,
        },
    ),
    "water_heater": (
        "demo_water_heater",
        "eco",
        {
            "min_temp": 110,
            "max_temp": 140,
            "operation_list": [
                "eco",
                "electric",
                "performance",
                "high_demand",
                "heat_pump",
                "gas",
                "off",
            ],
            "current_temperature": None,
            "temperature": 119,
            "target_temp_high": None,
            "target_temp_low": None,
            "operation_mode": "eco",
            "away_mode": "off",
            "friendly_name": "Demo Water Heater",
            "supported_features": 15,
        },
    ),
    "alarm_control_panel": (
        "security",
        "disarmed",
        {
            "code_format": "number",
            "changed_by": None,
            "code_arm_required": False,
            "friendly_name": "Security",
            "supported_features": 63,
        },
    ),
    "remote": (
        "tv",
        "on",
        {
            "activity_list": ["Watch TV"],
            "current_activity": "Watch TV",
            "friendly_name": "TV",
            "supported_features": 7,
        },
    ),
    "text": (
        "text",
        "Hello world",
        {"mode": "text", "min": 0, "max": 100, "pattern": None, "friendly_name": "Text"},
    ),
    "date": ("date", "2020-01-01", {"friendly_name": "Date"}),
    "time": ("time", "12:00:00", {"friendly_name": "Time"}),
    "datetime": ("date_and_time", "2020-01-01T12:00:00+00:00", {"friendly_name": "Date and Time"}),
    "update": (
        "demo_update_with_progress",
        "on",
        {
            "auto_update": False,
            "display_precision": 0,
            "installed_version": "1.0.0",
            "in_progress": False,
            "latest_version": "1.0.1",
            "release_summary": "Awesome update, fixing everything!",
            "release_url": "https://www.example.com/release/1.0.1",
            "skipped_version": None,
            "title": "Philips Lamps Firmware",
            "update_percentage": None,
            "entity_picture": "/api/brands/integration/demo/icon.png",
            "friendly_name": "Demo Update with Progress",
            "supported_features": 21,
        },
    ),
    "weather": (
        "south",
        "sunny",
        {
            "temperature": 21.6,
            "apparent_temperature": 24.3,
            "dew_point": 12.1,
            "temperature_unit": "°C",
            "humidity": 92,
            "pressure": 1099.0,
            "pressure_unit": "hPa",
            "wind_speed": 0.5,
            "wind_speed_unit": "km/h",
            "visibility_unit": "km",
            "precipitation_unit": "mm",
            "attribution": "Powered by Home Assistant",
            "friendly_name": "Demo Weather South",
            "supported_features": 3,
        },
    ),
    "notify": ("bedroom", "unknown", {"friendly_name": "Bedroom", "supported_features": 1}),
    "calendar": (
        "calendar_1",
        "off",
        {
            "message": "Future Event",
            "all_day": False,
            "start_time": "2026-12-07 10:00:00",
            "end_time": "2026-12-07 11:00:00",
            "location": "Future Location",
            "description": "Future Description",
            "friendly_name": "Calendar 1",
            "supported_features": 1,
        },
    ),
    "camera": (
        "demo_camera",
        "streaming",
        {
            "access_token": "remote-token",
            "model_name": "Demo",
            "brand": "Demo",
            "motion_detection": False,
            "friendly_name": "Demo camera",
            "entity_picture": "/api/camera_proxy/camera.demo_camera?token=remote-token",
            "supported_features": 3,
        },
    ),
    "image": (
        "qr_code",
        "2026-12-06T10:00:00+00:00",
        {
            "access_token": "remote-token",
            "friendly_name": "QR Code",
            "entity_picture": "/api/image_proxy/image.qr_code?token=remote-token",
        },
    ),
    "todo": ("shopping_list", "1", {"friendly_name": "Shopping List", "supported_features": 127}),
    "lawn_mower": (
        "mower",
        "docked",
        {"friendly_name": "Mower", "supported_features": 15},
    ),
}

# (domain, service, data, (forwarded service, forwarded data)); None: refused cleanly; LOCAL:
# answered here from what the mirror read from the remote, nothing sent.
LOCAL = ("", {"answered": "here"})
# Services that only read: allowed with control off too.
READS = {
    ("calendar", "get_events"),
    ("media_player", "browse_media"),
    ("weather", "get_forecasts"),
    ("todo", "get_items"),
}
# What the remote's to-do list holds (its get_items answer).
TODO_ITEMS = [
    {"summary": "Bread", "uid": "uid-bread", "status": "needs_action"},
    {"summary": "Eggs", "uid": "uid-eggs", "status": "completed"},
]
type Call = tuple[str, str, dict[str, Any], tuple[str, dict[str, Any]] | None]


def plain(domain: str, *services: str) -> list[Call]:
    """Calls with no data, each forwarded as the same service with no data."""
    return [(domain, service, {}, (service, {})) for service in services]


def same(domain: str, service: str, data: dict[str, Any]) -> Call:
    """A call forwarded as it is: the same service, the same data."""
    return (domain, service, data, (service, data))


CALLS: list[Call] = [
    same("todo", "add_item", {"item": "Milk"}),
    (
        "todo",
        "update_item",
        {"item": "Bread", "status": "completed"},
        ("update_item", {"item": "uid-bread", "rename": "Bread", "status": "completed"}),
    ),
    ("todo", "remove_item", {"item": ["Bread"]}, ("remove_item", {"item": ["uid-bread"]})),
    ("todo", "get_items", {}, LOCAL),
    ("todo", "remove_completed_items", {}, ("remove_item", {"item": ["uid-eggs"]})),
    same("notify", "send_message", {"message": "Hi", "title": "T"}),
    (
        "calendar",
        "create_event",
        {"summary": "Dentist", "start_date": "2026-12-08", "end_date": "2026-12-09"},
        (
            "create_event",
            {
                "summary": "Dentist",
                "description": "",
                "start_date": "2026-12-08",
                "end_date": "2026-12-09",
            },
        ),
    ),
    (
        "calendar",
        "get_events",
        {"start_date_time": "2026-12-07T00:00:00+00:00", "duration": {"hours": 1}},
        (
            "get_events",
            # The same instants, in this instance's time zone (the test's: US/Pacific).
            {
                "start_date_time": "2026-12-06T16:00:00-08:00",
                "end_date_time": "2026-12-06T17:00:00-08:00",
            },
        ),
    ),
    ("image", "snapshot", {"filename": "/not_allowed/x.jpg"}, None),
    *plain("camera", "turn_on", "turn_off", "enable_motion_detection", "disable_motion_detection"),
    ("camera", "snapshot", {"filename": "/not_allowed/x.jpg"}, None),
    ("camera", "play_stream", {"media_player": "media_player.x"}, None),
    ("camera", "record", {"filename": "/not_allowed/x.mp4"}, None),
    same("weather", "get_forecasts", {"type": "daily"}),
    same("text", "set_value", {"value": "Hi"}),
    same("date", "set_value", {"date": "2026-02-03"}),
    ("time", "set_value", {"time": "07:30"}, ("set_value", {"time": "07:30:00"})),
    same("datetime", "set_value", {"datetime": "2026-02-03T07:30:00+01:00"}),
    *plain("update", "install", "skip", "clear_skipped"),
    *plain("switch", "turn_on", "turn_off", "toggle"),
    # The light service layer runs here: percent to 0-255, a color converted to a mode it has.
    ("light", "turn_on", {"brightness_pct": 50}, ("turn_on", {"brightness": 128})),
    ("light", "turn_on", {"rgb_color": [255, 0, 0]}, ("turn_on", {"hs_color": [0.0, 100.0]})),
    *plain("light", "turn_off"),
    ("light", "toggle", {}, ("turn_off", {})),
    *plain("cover", "open_cover", "close_cover"),
    same("cover", "set_cover_position", {"position": 30}),
    *plain(
        "cover", "stop_cover", "toggle", "open_cover_tilt", "close_cover_tilt", "stop_cover_tilt"
    ),
    same("cover", "set_cover_tilt_position", {"tilt_position": 10}),
    *plain("cover", "toggle_cover_tilt"),
    *plain("climate", "turn_on", "turn_off", "toggle"),
    same("climate", "set_hvac_mode", {"hvac_mode": "cool"}),
    same("climate", "set_preset_mode", {"preset_mode": "eco"}),
    (
        "climate",
        "set_temperature",
        {"target_temp_low": 20, "target_temp_high": 25},
        ("set_temperature", {"target_temp_low": 20.0, "target_temp_high": 25.0}),
    ),
    same("climate", "set_humidity", {"humidity": 40}),
    same("climate", "set_fan_mode", {"fan_mode": "on_high"}),
    same("climate", "set_swing_mode", {"swing_mode": "off"}),
    same("climate", "set_swing_horizontal_mode", {"swing_horizontal_mode": "on"}),
    same("fan", "turn_on", {"percentage": 33}),
    *plain("fan", "turn_off", "toggle", "increase_speed"),
    same("fan", "decrease_speed", {"percentage_step": 10}),
    same("fan", "oscillate", {"oscillating": False}),
    same("fan", "set_direction", {"direction": "reverse"}),
    same("fan", "set_percentage", {"percentage": 66}),
    same("fan", "set_preset_mode", {"preset_mode": "smart"}),
    *plain("lock", "unlock", "lock", "open"),
    ("number", "set_value", {"value": 50}, ("set_value", {"value": 50.0})),
    same("select", "select_option", {"option": "light_speed"}),
    *plain("select", "select_first", "select_last"),
    same("select", "select_next", {"cycle": False}),
    ("select", "select_previous", {}, ("select_previous", {"cycle": True})),
    *plain("button", "press"),
    *plain("scene", "turn_on"),
    same("siren", "turn_on", {"tone": "fire"}),
    *plain("siren", "turn_off", "toggle"),
    *plain("valve", "open_valve", "close_valve"),
    same("valve", "set_valve_position", {"position": 40}),
    *plain("valve", "stop_valve", "toggle"),
    *plain("humidifier", "turn_on", "turn_off", "toggle"),
    same("humidifier", "set_mode", {"mode": "eco"}),
    same("humidifier", "set_humidity", {"humidity": 45}),
    *plain(
        "media_player",
        "turn_on",
        "turn_off",
        "toggle",
        "volume_up",
        "volume_down",
        "media_play_pause",
        "media_play",
        "media_pause",
        "media_stop",
        "media_next_track",
        "media_previous_track",
        "clear_playlist",
    ),
    same("media_player", "volume_set", {"volume_level": 0.5}),
    same("media_player", "volume_mute", {"is_volume_muted": True}),
    same("media_player", "media_seek", {"seek_position": 12}),
    same("media_player", "join", {"group_members": ["media_player.elsewhere"]}),
    same("media_player", "select_source", {"source": "youtube"}),
    same("media_player", "select_sound_mode", {"sound_mode": "movie"}),
    (
        "media_player",
        "play_media",
        {"media_content_type": "music", "media_content_id": "x", "enqueue": "add"},
        (
            "play_media",
            {"media_content_type": "music", "media_content_id": "x", "enqueue": "add", "extra": {}},
        ),
    ),
    same("media_player", "shuffle_set", {"shuffle": True}),
    *plain("media_player", "unjoin"),
    same("media_player", "repeat_set", {"repeat": "all"}),
    *plain("media_player", "browse_media"),
    ("media_player", "search_media", {"search_query": "x"}, None),
    *plain("vacuum", "start", "pause", "return_to_base", "clean_spot", "locate", "stop"),
    same("vacuum", "set_fan_speed", {"fan_speed": "max"}),
    same("vacuum", "send_command", {"command": "spin", "params": {"n": 1}}),
    ("vacuum", "clean_area", {"cleaning_area_id": ["kitchen"]}, None),
    *plain("water_heater", "turn_on", "turn_off"),
    same("water_heater", "set_away_mode", {"away_mode": True}),
    (
        "water_heater",
        "set_temperature",
        {"temperature": 120},
        ("set_temperature", {"temperature": 120.0}),
    ),
    same("water_heater", "set_operation_mode", {"operation_mode": "gas"}),
    same("alarm_control_panel", "alarm_disarm", {"code": "1234"}),
    *plain(
        "alarm_control_panel",
        "alarm_arm_home",
        "alarm_arm_away",
        "alarm_arm_night",
        "alarm_arm_vacation",
        "alarm_arm_custom_bypass",
    ),
    same("alarm_control_panel", "alarm_trigger", {"code": "1234"}),
    same("remote", "turn_on", {"activity": "Watch TV"}),
    *plain("remote", "turn_off", "toggle"),
    (
        "remote",
        "send_command",
        {"command": "Mute", "num_repeats": 2},
        (
            "send_command",
            {"command": ["Mute"], "num_repeats": 2, "hold_secs": 0.0},
        ),
    ),
    (
        "remote",
        "learn_command",
        {"command": "Mute"},
        ("learn_command", {"command": ["Mute"]}),
    ),
    ("remote", "delete_command", {"command": "Mute"}, ("delete_command", {"command": ["Mute"]})),
    *plain("lawn_mower", "start_mowing", "pause", "dock", "stop"),
]

_ENTITY_SERVICE_CALLS = tuple(
    getattr(service_helper, name)
    for name in ("entity_service_call", "batched_entity_service_call")
    if hasattr(service_helper, name)
)


def entity_services(hass: HomeAssistant, domain: str) -> set[str]:
    """The entity services of `domain` on the release under test."""
    found = set()
    for name, service in hass.services.async_services_internal().get(domain, {}).items():
        target: Any = service.job.target
        if isinstance(target, functools.partial) and target.func in _ENTITY_SERVICE_CALLS:
            found.add(name)
    return found


def local_id(domain: str) -> str:
    return f"{domain}.remote_home_{REMOTE[domain][0]}"


def link_mirror(hass: HomeAssistant) -> Any:
    """The link's mirror (its local entities, its control)."""
    return hass.config_entries.async_entries("ha_ingestion")[0].runtime_data.mirror


def mirror_of(hass: HomeAssistant, domain: str) -> Any:
    """The mirror entity of the domain's remote entity (REMOTE)."""
    return link_mirror(hass).local.entities[f"{domain}.{REMOTE[domain][0]}"]


def responds(hass: HomeAssistant, domain: str, service: str) -> bool:
    """Whether the service is called with `return_response` (it can answer)."""
    return hass.services.supports_response(domain, service) != "none"


async def call_mirror(hass: HomeAssistant, domain: str, service: str, data: dict[str, Any]) -> Any:
    """`service` called on the domain's mirror, blocking (with its response when it can answer)."""
    return await hass.services.async_call(
        domain,
        service,
        {"entity_id": local_id(domain), **data},
        blocking=True,
        return_response=responds(hass, domain, service),
    )


async def mirror_all(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, domains: list[str], **options: Any
) -> None:
    fake_ha.service_responses["todo.shopping_list"] = {"items": TODO_ITEMS}
    for domain in domains:
        object_id, state, attributes = REMOTE[domain]
        await fake_ha.fire_state_changed(f"{domain}.{object_id}", state, attributes)
    await setup_link(**{CONF_MIRROR_INCLUDE: [f"{d}.{REMOTE[d][0]}" for d in domains], **options})
    await wait_for(lambda: all(hass.states.get(local_id(d)) is not None for d in domains))
    await wait_for(
        lambda: all(hass.states.get(local_id(d)).state == REMOTE[d][1] for d in domains)  # type: ignore[union-attr]
    )


NATIVE = sorted(REMOTE)

# Documented exceptions to "the attributes are the remote's" (README, domain table): a camera's
# and an image's picture is this instance's proxy (it reads the remote's), and a camera does not
# support `stream` here (not forwarded).
DIFFERENT: dict[str, set[str]] = {
    "camera": {"entity_picture", "supported_features"},
    "image": {"entity_picture"},
}


@pytest.mark.parametrize("domain", NATIVE)
async def test_every_entity_service_is_covered(hass: HomeAssistant, domain: str) -> None:
    assert domain in MIRROR_DOMAINS
    assert await async_setup_component(hass, domain, {})
    await hass.async_block_till_done()
    listed = {service for (d, service, _, _) in CALLS if d == domain}
    assert entity_services(hass, domain) - listed == set()


@pytest.mark.parametrize("domain", NATIVE)
async def test_each_service_reaches_the_remote_entity(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, domain: str
) -> None:
    await mirror_all(hass, fake_ha, setup_link, [domain])
    # Shown as the remote shows it: state and attributes (the friendly name: the remote's name
    # in front, as for every mirror).
    object_id, state, attributes = REMOTE[domain]
    shown = hass.states.get(local_id(domain))
    assert shown is not None
    assert shown.state == state
    shown_attributes = dict(shown.attributes)
    assert shown_attributes.pop("friendly_name") == f"Remote Home {attributes['friendly_name']}"
    different = DIFFERENT.get(domain, set())
    assert {k: v for k, v in shown_attributes.items() if k not in different} == {
        k: v for k, v in attributes.items() if k != "friendly_name" and k not in different
    }

    services = entity_services(hass, domain)
    for d, service, data, expected in CALLS:
        if d != domain or service not in services:
            continue
        fake_ha.service_calls.clear()
        if expected is None:
            with pytest.raises(HomeAssistantError):
                await call_mirror(hass, domain, service, data)
            # Refused cleanly, by the mirror (not forwarded) or by Home Assistant itself.
            assert fake_ha.service_calls == []
            continue
        if expected == LOCAL:
            answer = await call_mirror(hass, domain, service, data)
            assert answer, service
            assert fake_ha.service_calls == []
            continue
        await call_mirror(hass, domain, service, data)
        sent = [{k: v for k, v in c.items() if k != "id"} for c in fake_ha.service_calls]
        assert sent == [
            {
                "type": "call_service",
                "domain": domain,
                "service": expected[0],
                "service_data": expected[1],
                "target": {"entity_id": f"{domain}.{object_id}"},
                "return_response": responds(hass, domain, service),
            }
        ], service


@pytest.mark.parametrize("domain", NATIVE)
async def test_control_off_hides_every_control_and_refuses_every_call(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, domain: str
) -> None:
    await mirror_all(hass, fake_ha, setup_link, [domain], **{CONF_CONTROL: False})
    shown = hass.states.get(local_id(domain))
    assert shown is not None
    assert shown.attributes.get("supported_features", 0) == 0
    services = entity_services(hass, domain)
    for d, service, data, expected in CALLS:
        if d != domain or service not in services or expected is None or (d, service) in READS:
            continue  # (never forwarded: refused with control on too; reads: allowed)
        with pytest.raises((HomeAssistantError, ServiceNotSupported)) as err:
            await call_mirror(hass, domain, service, data)
        assert isinstance(err.value, ServiceNotSupported) or err.value.translation_key in (
            "mirror_read_only",
            "remote_not_supported",
        ), (service, err.value)
    assert [c for c in fake_ha.service_calls if (domain, c["service"]) not in READS] == []


async def test_a_response_is_the_remotes_for_the_mirror(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await mirror_all(hass, fake_ha, setup_link, ["weather", "media_player"])
    forecast = [{"condition": "rainy", "datetime": "2026-12-07T11:00:00+00:00", "temperature": 8}]
    fake_ha.service_responses["weather.south"] = {"forecast": forecast}
    answer = await call_mirror(hass, "weather", "get_forecasts", {"type": "hourly"})
    assert answer == {local_id("weather"): {"forecast": forecast}}

    node = {"title": "Media", "media_class": "directory", "children": [{"title": "Radio"}]}
    fake_ha.service_responses["media_player.living_room"] = node
    answer = await call_mirror(hass, "media_player", "browse_media", {"media_content_id": "root"})
    assert answer[local_id("media_player")].as_dict() == node  # type: ignore[union-attr,index]
    assert fake_ha.service_calls[-1]["service_data"] == {"media_content_id": "root"}


async def test_a_camera_still_is_read_from_the_remotes_proxy_with_the_links_token(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    from aiohttp import web
    from homeassistant.components.camera import async_get_image

    from custom_components.ha_ingestion.mirror.control import RemoteHttp

    requests: list[tuple[str, str | None, str]] = []

    async def proxy(request: web.Request) -> web.Response:
        requests.append((request.path, request.headers.get("Authorization"), request.query_string))
        if request.path.endswith("missing"):
            return web.Response(status=404)
        return web.Response(body=b"jpeg", content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/api/camera_proxy/{entity_id}", proxy)
    app.router.add_get("/api/image_proxy/{entity_id}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await mirror_all(hass, fake_ha, setup_link, ["camera", "image"])
        control = link_mirror(hass).control
        control.http = RemoteHttp(
            session=control.http.session, base_url=f"http://127.0.0.1:{port}", token="tok"
        )
        image = await async_get_image(hass, local_id("camera"), width=320)
        assert image.content == b"jpeg"
        assert requests == [("/api/camera_proxy/camera.demo_camera", "Bearer tok", "width=320")]
        entity = hass.data["image"].get_entity(local_id("image"))
        assert await entity.async_image() == b"jpeg"
        assert requests[-1][:2] == ("/api/image_proxy/image.qr_code", "Bearer tok")
        # The remote's refusal: translated, with its HTTP status.
        entity.remote_id = "image.missing"
        with pytest.raises(HomeAssistantError) as err:
            await entity.async_image()
        assert err.value.translation_key == "remote_call_failed"
        # Nothing listens: unavailable, at once.
        control.http = RemoteHttp(
            session=control.http.session, base_url="http://127.0.0.1:1", token="tok"
        )
        with pytest.raises(HomeAssistantError) as err:
            await entity.async_image()
        assert err.value.translation_key == "remote_unavailable"
    finally:
        await runner.cleanup()


# Garbage for every attribute a native mirror reads: wrong types, unknown enum values, non-lists,
# out-of-range numbers, a pattern that is no expression.
GARBAGE: dict[str, Any] = {
    key: value
    for keys, value in (
        (("supported_features", "brightness", "color_temp_kelvin", "current_position"), "x"),
        (("min_color_temp_kelvin", "max_color_temp_kelvin", "current_tilt_position"), -5),
        (("supported_color_modes", "hvac_modes", "effect_list", "options", "fan_modes"), "a"),
        (("preset_modes", "swing_modes", "swing_horizontal_modes", "available_modes"), 3),
        (("source_list", "sound_mode_list", "activity_list", "fan_speed_list"), {"a": 1}),
        (("operation_list", "available_tones"), 7),
        (("color_mode", "hvac_action", "action", "mode"), "warp"),
        (("hs_color",), [1, "a"]),
        (("min_temp", "max_temp", "min_humidity", "max_humidity", "min", "max", "step"), "hot"),
        (("temperature", "target_temp_high", "target_temp_low", "target_temp_step"), [1]),
        (("current_temperature", "current_humidity", "humidity", "percentage"), {}),
        (("percentage_step", "volume_level"), 7.5),
        (("oscillating", "is_volume_muted", "code_arm_required", "auto_update"), "yes"),
        (("in_progress",), "no"),
        (("fan_mode", "preset_mode", "swing_mode", "swing_horizontal_mode", "direction"), 1),
        (("effect", "fan_speed", "operation_mode", "away_mode", "current_activity"), 2),
        (("installed_version", "latest_version", "title", "release_summary"), 3),
        (("release_url", "entity_picture", "unit_of_measurement"), 4),
        (("pattern", "code_format"), "(unclosed"),
    )
    for key in keys
}


def own_properties(entity: Any) -> list[str]:
    """The properties the entity's mirror class (and NativeMirror) define."""
    names: list[str] = []
    for cls in type(entity).__mro__:
        if cls.__module__.startswith("custom_components.ha_ingestion"):
            names += [n for n, v in vars(cls).items() if isinstance(v, property)]
    return sorted(set(names))


@pytest.mark.parametrize("domain", NATIVE)
async def test_bad_attributes_are_counted_never_an_exception(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, domain: str
) -> None:
    await mirror_all(hass, fake_ha, setup_link, [domain])
    mirror = link_mirror(hass)
    object_id, state, attributes = REMOTE[domain]
    remote_id = f"{domain}.{object_id}"
    entity = mirror.local.entities[remote_id]
    good = {name: getattr(entity, name) for name in own_properties(entity)}
    assert mirror.control.as_dict()["bad_attributes"] == {}
    # The remote's values, typed (a few of each domain's, read as Home Assistant reads them).
    if domain != "camera":  # (its `stream` flag left out, see DIFFERENT)
        assert good["supported_features"] == attributes.get(
            "supported_features", good["supported_features"]
        )
    await fake_ha.fire_state_changed(remote_id, state, {**attributes, **GARBAGE})
    await wait_for(
        lambda: hass.states.get(local_id(domain)).attributes.get("pattern") == "(unclosed"
    )  # type: ignore[union-attr]
    for name in own_properties(entity):
        getattr(entity, name)  # never raises
    # Shown as the remote tells it all the same.
    shown = hass.states.get(local_id(domain))
    assert shown is not None
    assert shown.attributes["brightness"] == "x"
    if domain not in ("button", "scene", "date", "time", "datetime", "switch", "lawn_mower"):
        assert mirror.control.as_dict()["bad_attributes"], domain


async def test_typed_properties_are_the_remotes(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await mirror_all(hass, fake_ha, setup_link, NATIVE)

    def of(domain: str) -> Any:
        return mirror_of(hass, domain)

    light = of("light")
    assert (light.is_on, light.brightness, light.color_mode, light.effect) == (
        True,
        180,
        "hs",
        "rainbow",
    )
    assert (light.min_color_temp_kelvin, light.max_color_temp_kelvin) == (2000, 6535)
    assert light.supported_color_modes == {"hs", "color_temp"}
    climate = of("climate")
    assert (climate.hvac_mode, climate.min_temp, climate.max_temp) == ("heat_cool", 7, 35)
    assert (climate.target_temperature_low, climate.target_temperature_high) == (21, 24)
    assert climate.fan_modes == REMOTE["climate"][2]["fan_modes"]
    assert climate.temperature_unit == hass.config.units.temperature_unit
    cover = of("cover")
    assert cover.device_class == "window"
    registry_entry = er.async_get(hass).async_get(local_id("cover"))
    assert registry_entry is not None
    assert registry_entry.original_device_class == "window"
    assert (cover.is_closed, cover.current_cover_position, cover.current_cover_tilt_position) == (
        False,
        70,
        50,
    )
    fan = of("fan")
    assert (fan.percentage, fan.speed_count, fan.oscillating, fan.current_direction) == (
        66,
        3,
        True,
        "forward",
    )
    number = of("number")
    assert (number.native_value, number.native_min_value, number.native_max_value) == (42, 0, 100)
    assert (number.native_step, number.mode) == (1, "slider")
    assert of("select").options == REMOTE["select"][2]["options"]
    assert of("select").current_option == "ridiculous_speed"
    assert of("lock").is_locked is True
    assert of("valve").current_valve_position == 100
    assert of("valve").reports_position is True
    humidifier = of("humidifier")
    assert (humidifier.target_humidity, humidifier.mode, humidifier.action) == (
        54,
        "home",
        "humidifying",
    )
    media = of("media_player")
    assert (media.volume_level, media.is_volume_muted, media.source_list) == (
        1.0,
        False,
        ["dvd", "youtube"],
    )
    water = of("water_heater")
    assert (water.current_operation, water.target_temperature, water.is_away_mode_on) == (
        "eco",
        119,
        False,
    )
    assert of("alarm_control_panel").code_format == "number"
    assert of("alarm_control_panel").code_arm_required is False
    assert of("remote").current_activity == "Watch TV"
    assert of("vacuum").fan_speed_list == ["min", "medium", "high", "max"]
    assert of("siren").available_tones == ["fire", "alarm"]
    assert (of("text").native_max, of("text").mode) == (100, "text")
    update = of("update")
    assert (update.installed_version, update.latest_version, update.in_progress) == (
        "1.0.0",
        "1.0.1",
        False,
    )
    assert of("todo").todo_items[0].uid == "uid-bread"
