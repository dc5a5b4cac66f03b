"""The Last outage sensor: one meaning, from the remote's last sign of life to the link's return.

The integration runs against the in-process fake remote over real sockets, with the local wall
clock injected (the engine's `wall`, and `time` in the recovery and checkpoint modules) and moved
by the test: the time a link stays down, and the commit wait of the recovery, are whatever the
test says, never slept. The silence before a loss is measured by the real session (its heartbeat's
clock): the sensor must show it as detection, inside the outage. Each test reads the sensor's value
and attributes and the log line at the gap's close, and checks they say the same numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
import functools
import logging
import re
import time
import types
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.ha_ingestion as integration_module
from custom_components.ha_ingestion.capture import (
    EventCapture,
    checkpoint as checkpoint_module,
    recovery as recovery_module,
)
from custom_components.ha_ingestion.capture.checkpoint import storage_key
from custom_components.ha_ingestion.client import LinkEngine, LinkState
from custom_components.ha_ingestion.const import (
    CONF_FAILURE_THRESHOLD,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    DOMAIN,
)
from tests.conftest import SetUpEntry, link_state, linked_entry, wait_for
from tests.fake_ha import FakeHA

LOGGER_NAME = "custom_components.ha_ingestion"
ENGINE_LOGGER = "custom_components.ha_ingestion.client.engine"
# The log line at the gap's close: the sensor's value and its four attributes.
GAP_CLOSED = re.compile(
    r"Gap of the link to .+ closed: outage (?P<value>[\d.]+) s \(from the last message received "
    r"at (?P<start>\S+) to the link's return at (?P<end>\S+)\), detection (?P<detection>[\d.]+) "
    r"s, recovery (?P<recovery>[\d.]+) s$"
)
RESTORED = re.compile(
    r"Link to .+ restored: outage (?P<value>[\d.]+) s \(from the last message received at "
    r"(?P<start>\S+) to the link's return at (?P<end>\S+)\), detection (?P<detection>[\d.]+) s$"
)
HEARTBEAT = 0.2  # interval and timeout (s) of the freeze test: detection takes at least 0.4 s
COMMIT_WAIT = 7.0  # the recovery's commit wait, on the injected clock

type SetupLink = Callable[..., Awaitable[MockConfigEntry]]


class Wall:
    """The local wall clock, moved by the test only."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    """The engine, the recovery and the checkpoint read this wall clock (monotonic stays real)."""
    clock = Wall()
    monkeypatch.setattr(
        integration_module, "LinkEngine", functools.partial(LinkEngine, wall=clock.time)
    )
    fake_time = types.SimpleNamespace(time=clock.time, monotonic=time.monotonic)
    monkeypatch.setattr(recovery_module, "time", fake_time)
    monkeypatch.setattr(checkpoint_module, "time", fake_time)
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", COMMIT_WAIT)
    return clock


@pytest.fixture
def setup_link(fake_ha: FakeHA, wall: Wall, set_up_entry: SetUpEntry) -> SetupLink:
    """Set the integration up on the injected wall clock; its commit wait moves that clock."""

    async def _setup(entry: MockConfigEntry | None = None, **options: Any) -> MockConfigEntry:
        if entry is None:
            entry = linked_entry(fake_ha, **{CONF_FAILURE_THRESHOLD: 1000, **options})
        await set_up_entry(entry)

        async def commit_wait(_delay: float) -> None:
            wall.now += COMMIT_WAIT

        capture_of(entry).recovery._sleep = commit_wait
        return entry

    return _setup


def capture_of(entry: MockConfigEntry) -> EventCapture:
    """The entry's EventCapture."""
    capture: EventCapture = entry.runtime_data.capture
    return capture


def last_outage(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[str, dict[str, Any]]:
    """The Last outage sensor's state and attributes."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.unique_id}_last_gap"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state, dict(state.attributes)


def logged(caplog: pytest.LogCaptureFixture, pattern: re.Pattern[str]) -> list[dict[str, str]]:
    """The fields of every log line matching `pattern`."""
    return [m.groupdict() for r in caplog.records if (m := pattern.match(r.getMessage()))]


def assert_log_says_the_sensor(
    hass: HomeAssistant, entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> tuple[float, dict[str, Any]]:
    """The gap's log line has the sensor's value and attributes, digit for digit."""
    value, attributes = last_outage(hass, entry)
    (line,) = logged(caplog, GAP_CLOSED)
    assert line["value"] == value
    assert line["start"] == attributes["start"]
    assert line["end"] == attributes["end"]
    assert float(line["detection"]) == attributes["detection"]
    assert float(line["recovery"]) == attributes["recovery"]
    return float(value), attributes


def seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def test_freeze_outage_runs_from_the_last_message_not_from_the_detection(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    wall: Wall,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A remote that stops answering: silence, the heartbeat notices, the link is down 60 s.

    The outage is the silence (detection) plus the time down; the recovery after the link's
    return is an attribute, not part of the value.
    """
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    entry = await setup_link(
        **{CONF_HEARTBEAT_INTERVAL: HEARTBEAT, CONF_HEARTBEAT_TIMEOUT: HEARTBEAT}
    )
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    engine = entry.runtime_data.engine
    fake_ha.answer_pings = False  # frozen: no pong, and no new connection
    fake_ha.refuse = True
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    lost = engine.snapshot()
    assert any(e.type == "HaHeartbeatTimeoutError" for e in lost.errors), lost.errors
    assert lost.last_seen is not None
    assert lost.last_disconnected is not None
    silence = (lost.last_disconnected - lost.last_seen).total_seconds()
    assert silence >= 2 * HEARTBEAT  # no pong within the timeout after an interval of silence

    wall.now += 60.0
    fake_ha.answer_pings = True
    fake_ha.refuse = False
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    await hass.async_block_till_done()

    value, attributes = assert_log_says_the_sensor(hass, entry, caplog)
    back = engine.snapshot().last_connected
    assert back is not None
    assert value == round((back - lost.last_seen).total_seconds(), 1)
    assert value >= 60.0 + 2 * HEARTBEAT  # at least the real silence: frozen, then down
    assert attributes["detection"] == round(silence, 1)
    assert attributes["recovery"] == COMMIT_WAIT
    assert datetime.fromisoformat(attributes["start"]) == lost.last_seen.replace(
        microsecond=lost.last_seen.microsecond // 1000 * 1000
    )
    assert seconds(attributes["end"], attributes["start"]) == pytest.approx(value, abs=0.051)
    # The engine's line at the link's return says the same outage and detection.
    (restored,) = logged(caplog, RESTORED)
    assert restored["value"] == str(value)
    assert float(restored["detection"]) == attributes["detection"]
    assert (restored["start"], restored["end"]) == (attributes["start"], attributes["end"])


async def test_remote_restart_closes_at_once_detection_is_nil(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    wall: Wall,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A remote that restarts says goodbye (close frame): detection ~0, outage = time down."""
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    entry = await setup_link()  # heartbeat 30 s: it plays no part
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await fake_ha.fire_state_changed("sensor.r", "before")  # a frame just before the close
    fake_ha.refuse = True
    await fake_ha.close_all(code=1001)
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    wall.now += 20.0
    fake_ha.refuse = False
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    await hass.async_block_till_done()

    value, attributes = assert_log_says_the_sensor(hass, entry, caplog)
    # The close frame is the last sign of life, seen the moment it came (real time, a few ms).
    assert attributes["detection"] < 1.0
    assert value - attributes["detection"] == pytest.approx(20.0, abs=0.11)
    assert attributes["recovery"] == COMMIT_WAIT


async def test_local_restart_outage_starts_at_the_last_message_before_the_stop(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    wall: Wall,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Home Assistant stopped for 120 s: the outage runs from the last frame received before
    the stop (kept in the checkpoint) to the link's return after the start."""
    entry = await setup_link()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await fake_ha.fire_state_changed("sensor.r", "before")
    await wait_for(lambda: capture_of(entry).live.forwarded == 1)
    seen = entry.runtime_data.engine.snapshot().last_seen
    assert seen is not None
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    stored = hass_storage[storage_key(entry.entry_id)]["data"]
    assert stored["last_seen"] == pytest.approx(seen.timestamp(), abs=1.0)
    assert stored["last_seen"] <= stored["saved_at"]

    wall.now += 120.0
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    await setup_link(entry)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    await hass.async_block_till_done()

    value, attributes = assert_log_says_the_sensor(hass, entry, caplog)
    last_seen = datetime.fromtimestamp(stored["last_seen"], UTC)
    assert attributes["start"] == last_seen.isoformat(timespec="milliseconds")
    back = entry.runtime_data.engine.snapshot().last_connected
    assert back is not None
    assert value == round((back - last_seen).total_seconds(), 1)
    assert value >= 120.0
    # Detection: from the last frame to the stop (the checkpoint's last write).
    assert attributes["detection"] == round(stored["saved_at"] - stored["last_seen"], 1)
    assert attributes["recovery"] == COMMIT_WAIT
    assert not logged(caplog, RESTORED)  # a new engine: no loss of its own to report


async def test_checkpoint_of_an_earlier_release_loads_outage_unknown_until_the_next(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    wall: Wall,
    hass_storage: dict[str, Any],
) -> None:
    """A checkpoint without the last sign of life (earlier releases) loads; its records and the
    restart's gap have no outage (the sensor is unknown, not a number of another meaning); the
    next outage has one."""
    entry = linked_entry(fake_ha, **{CONF_FAILURE_THRESHOLD: 1000})
    entry.add_to_hass(hass)
    saved_at = wall.now - 30.0
    old_record = {
        "start": datetime.fromtimestamp(saved_at - 100, UTC).isoformat(),
        "end": datetime.fromtimestamp(saved_at - 60, UTC).isoformat(),
        "duration": 40.0,
        "event_types": ["state_changed"],
        "backfilled": 2,
        "backfill_error": None,
        "unrecoverable": [],
        "after_crash": False,
        "possible_duplicates": 0,
    }
    hass_storage[storage_key(entry.entry_id)] = {
        "version": 1,
        "minor_version": 1,
        "key": storage_key(entry.entry_id),
        "data": {
            "clean": True,
            "saved_at": saved_at,
            "save_delay": 10.0,
            "remote_us": int(saved_at * 1_000_000),
            "state_changes": True,
            "offset_us": 0,
            "seen": {},
            "gap": None,
            "totals": {
                "reconnects": 1,
                "backfilled": 2,
                "possible_duplicates": 0,
                "dropped": 0,
                "gaps": [old_record],
            },
        },
    }
    await setup_link(entry)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 2)
    await hass.async_block_till_done()
    old, restart = capture_of(entry).state.gaps
    assert old.duration == 40.0
    assert (old.outage, restart.outage) == (None, None)
    value, attributes = last_outage(hass, entry)
    assert value == "unknown"
    assert not {"start", "end", "detection", "recovery"} & set(attributes)

    fake_ha.refuse = True
    await fake_ha.close_all(code=1001)
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    wall.now += 5.0
    fake_ha.refuse = False
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 3)
    await hass.async_block_till_done()
    value, attributes = last_outage(hass, entry)
    assert float(value) >= 5.0
    assert attributes["recovery"] == COMMIT_WAIT


async def test_link_lost_again_while_recovering_is_a_new_outage_of_the_same_gap(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    wall: Wall,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each return shows its outage at once (no recovery yet: left out, not "unknown"); lost
    again before the gap is recovered, the next return shows the next outage; the gap's close
    adds the recovery, and the log line at the close says the last outage."""
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    entry = await setup_link()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    capture = capture_of(entry)
    gate = asyncio.Event()

    async def held_commit_wait(_delay: float) -> None:
        await gate.wait()
        wall.now += COMMIT_WAIT

    capture.recovery._sleep = held_commit_wait

    async def outage(down_for: float) -> tuple[float, dict[str, Any]]:
        fake_ha.refuse = True
        await fake_ha.close_all(code=1001)
        await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
        wall.now += down_for
        fake_ha.refuse = False
        await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
        await hass.async_block_till_done()
        value, attributes = last_outage(hass, entry)
        return float(value), attributes

    first, attributes = await outage(10.0)
    assert first - attributes["detection"] == pytest.approx(10.0, abs=0.11)
    assert "recovery" not in attributes
    assert capture.recovering
    second, attributes = await outage(30.0)
    assert second - attributes["detection"] == pytest.approx(30.0, abs=0.11)
    assert "recovery" not in attributes
    assert [m["value"] for m in logged(caplog, RESTORED)] == [str(first), str(second)]

    gate.set()
    await wait_for(lambda: len(capture.state.gaps) == 1)
    await hass.async_block_till_done()
    value, attributes = assert_log_says_the_sensor(hass, entry, caplog)
    assert value == second
    assert attributes["recovery"] >= COMMIT_WAIT
    (gap,) = capture.state.gaps
    assert gap.outage == capture.state.last_outage
