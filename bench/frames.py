"""Realistic `state_changed` events, pre-encoded once, and their WebSocket framing.

The events look like what a Home Assistant sends for `subscribe_events`: an old and a new state with
attributes, ISO timestamps and context ids, for a mix of sensors, lights, climate, media players
and binary sensors. They average about 1 KB of JSON each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import random
from typing import Any

import orjson

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ROOMS = (
    "kitchen",
    "living_room",
    "bedroom",
    "bathroom",
    "office",
    "garage",
    "hallway",
    "attic",
    "basement",
    "garden",
)


def _ulid(rng: random.Random) -> str:
    bits = rng.getrandbits(115)
    return "01J" + "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(23))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _context(rng: random.Random, user: bool = False) -> dict[str, Any]:
    return {
        "id": _ulid(rng),
        "parent_id": None,
        "user_id": rng.getrandbits(128).to_bytes(16).hex() if user else None,
    }


def _sensor(rng: random.Random, room: str, n: int) -> tuple[str, str, dict[str, Any]]:
    kind = rng.choice(("power", "energy", "temperature", "humidity"))
    unit, device_class, state_class, value = {
        "power": ("W", "power", "measurement", f"{rng.uniform(0, 3500):.1f}"),
        "energy": ("kWh", "energy", "total_increasing", f"{rng.uniform(0, 20000):.3f}"),
        "temperature": ("°C", "temperature", "measurement", f"{rng.uniform(15, 28):.2f}"),
        "humidity": ("%", "humidity", "measurement", f"{rng.uniform(30, 70):.1f}"),
    }[kind]
    attributes = {
        "state_class": state_class,
        "unit_of_measurement": unit,
        "device_class": device_class,
        "friendly_name": f"{room.replace('_', ' ').title()} {kind.title()} {n}",
    }
    return f"sensor.{room}_{kind}_{n}", value, attributes


def _light(rng: random.Random, room: str, n: int) -> tuple[str, str, dict[str, Any]]:
    on = rng.random() < 0.7
    hue, sat = round(rng.uniform(0, 360), 3), round(rng.uniform(0, 100), 3)
    attributes: dict[str, Any] = {
        "min_color_temp_kelvin": 2000,
        "max_color_temp_kelvin": 6535,
        "effect_list": ["None", "candle", "fireplace", "colorloop", "sunrise"],
        "supported_color_modes": ["color_temp", "xy"],
        "color_mode": "xy" if on else None,
        "brightness": rng.randint(1, 255) if on else None,
        "hs_color": [hue, sat] if on else None,
        "rgb_color": [rng.randint(0, 255) for _ in range(3)] if on else None,
        "xy_color": [round(rng.random(), 3), round(rng.random(), 3)] if on else None,
        "effect": "None" if on else None,
        "friendly_name": f"{room.replace('_', ' ').title()} Ceiling {n}",
        "supported_features": 44,
    }
    return f"light.{room}_ceiling_{n}", "on" if on else "off", attributes


def _climate(rng: random.Random, room: str, n: int) -> tuple[str, str, dict[str, Any]]:
    attributes = {
        "hvac_modes": ["off", "heat", "auto"],
        "min_temp": 5.0,
        "max_temp": 30.0,
        "target_temp_step": 0.5,
        "preset_modes": ["none", "away", "eco", "boost", "comfort"],
        "current_temperature": round(rng.uniform(16, 24), 1),
        "temperature": round(rng.uniform(18, 22) * 2) / 2,
        "hvac_action": rng.choice(("heating", "idle")),
        "preset_mode": "none",
        "friendly_name": f"{room.replace('_', ' ').title()} Thermostat {n}",
        "supported_features": 401,
    }
    return f"climate.{room}_thermostat_{n}", "heat", attributes


def _media(rng: random.Random, room: str, n: int) -> tuple[str, str, dict[str, Any]]:
    attributes = {
        "volume_level": round(rng.random(), 2),
        "is_volume_muted": False,
        "media_content_type": "music",
        "media_duration": 214,
        "media_position": rng.randint(0, 214),
        "media_position_updated_at": "2025-04-11T10:00:00.000000+00:00",
        "media_title": "Some Song Title",
        "media_artist": "Some Artist",
        "media_album_name": "Some Album",
        "shuffle": False,
        "repeat": "off",
        "friendly_name": f"{room.replace('_', ' ').title()} Speaker {n}",
        "supported_features": 4127295,
    }
    return f"media_player.{room}_speaker_{n}", "playing", attributes


def _binary(rng: random.Random, room: str, n: int) -> tuple[str, str, dict[str, Any]]:
    attributes = {
        "device_class": "motion",
        "friendly_name": f"{room.replace('_', ' ').title()} Motion {n}",
        "battery": rng.randint(20, 100),
        "linkquality": rng.randint(30, 255),
        "voltage": rng.randint(2800, 3100),
        "illuminance_lux": rng.randint(0, 800),
    }
    return f"binary_sensor.{room}_motion_{n}", rng.choice(("on", "off")), attributes


_KINDS = ((_sensor, 5), (_light, 2), (_binary, 2), (_climate, 1), (_media, 1))


def _state(
    entity_id: str, state: str, attributes: dict[str, Any], moment: datetime, ctx: dict[str, Any]
) -> dict[str, Any]:
    stamp = _iso(moment)
    return {
        "entity_id": entity_id,
        "state": state,
        "attributes": attributes,
        "last_changed": stamp,
        "last_reported": stamp,
        "last_updated": stamp,
        "context": ctx,
    }


def make_events(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` state_changed events (the `event` object of an event message), deterministic."""
    rng = random.Random(seed)
    makers = [maker for maker, weight in _KINDS for _ in range(weight)]
    start = datetime(2025, 4, 11, 10, 0, tzinfo=UTC)
    events = []
    for i in range(count):
        maker = rng.choice(makers)
        room = rng.choice(_ROOMS)
        n = rng.randint(1, 20)
        entity_id, old_value, old_attrs = maker(rng, room, n)
        _, new_value, new_attrs = maker(rng, room, n)
        new_attrs["friendly_name"] = old_attrs["friendly_name"]
        moment = start + timedelta(microseconds=10_000 * i + rng.randint(0, 9_999))
        ctx = _context(rng, user=rng.random() < 0.1)
        events.append(
            {
                "event_type": "state_changed",
                "data": {
                    "entity_id": entity_id,
                    "old_state": _state(
                        entity_id,
                        old_value,
                        old_attrs,
                        moment - timedelta(microseconds=rng.randint(10**6, 600 * 10**6)),
                        _context(rng),
                    ),
                    "new_state": _state(entity_id, new_value, new_attrs, moment, ctx),
                },
                "origin": "LOCAL",
                "time_fired": _iso(moment),
                "context": ctx,
            }
        )
    return events


def event_bodies(count: int, seed: int = 0) -> list[bytes]:
    """The events encoded once: the JSON of each `event` object."""
    return [orjson.dumps(event) for event in make_events(count, seed)]


def event_message(body: bytes, subscription_id: int) -> bytes:
    """The event message the remote sends for `body` on subscription `subscription_id`."""
    return b'{"id":%d,"type":"event","event":%s}' % (subscription_id, body)


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked (server to client) WebSocket text frame."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def framed_chunks(
    bodies: list[bytes],
    subscription_id: int,
    chunk_size: int = 64 * 1024,
    frames_per_chunk: int = 0,
) -> list[bytes]:
    """All event messages as WebSocket frames, joined into chunks that each hold whole frames.

    A chunk closes at `chunk_size` bytes, or after `frames_per_chunk` frames when that is set.
    """
    chunks: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for body in bodies:
        frame = ws_text_frame(event_message(body, subscription_id))
        pending.append(frame)
        size += len(frame)
        if (frames_per_chunk and len(pending) >= frames_per_chunk) or (
            not frames_per_chunk and size >= chunk_size
        ):
            chunks.append(b"".join(pending))
            pending, size = [], 0
    if pending:
        chunks.append(b"".join(pending))
    return chunks
