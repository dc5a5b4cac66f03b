"""Event capture over real sockets: forwarding, diagnostics, outage backfill, backpressure.

Every test runs the integration in the test `hass` against the in-process fake remote
(`tests/fake_ha.py`) on 127.0.0.1. An outage is made by refusing new connections and closing the
open ones; state changes "missed" during it are put in the fake recorder with `record_state` (never
sent), and the test then checks what the local bus received once the link is back. Every wait is
bounded (`wait_for`), no test asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import logging
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.ha_ingestion.capture import (
    EventCapture,
    backfill as backfill_module,
    live as live_module,
    recovery as recovery_module,
)
from custom_components.ha_ingestion.client import LinkSnapshot, LinkState
from custom_components.ha_ingestion.const import (
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_EVENT_TYPES,
    CONF_FAILURE_THRESHOLD,
    CONF_FORWARD_EVENTS,
    CONF_MIRROR_ENTITIES,
    DOMAIN,
    EVENT_INGESTED,
)
from custom_components.ha_ingestion.diagnostics import async_get_config_entry_diagnostics
from tests import fake_ha as fake_module
from tests.conftest import SetUpEntry, link_state, linked_entry, wait_for
from tests.fake_ha import FakeConnection, FakeHA

HISTORY = "history/history_during_period"
LOGGER_NAME = "custom_components.ha_ingestion"

type SetupLink = Callable[..., Awaitable[MockConfigEntry]]
type HistoryHandler = Callable[[FakeConnection, int, dict[str, Any]], Awaitable[None]]


# ---------------------------------------------------------------------------------- helpers


@pytest.fixture
def setup_link(fake_ha: FakeHA, set_up_entry: SetUpEntry) -> SetupLink:
    """Set the integration up against the fake remote with extra options, connected; unloaded
    afterwards.

    The breaker threshold is raised so the refused attempts of an outage never open it (its
    recovery timeout would stall the test).
    """

    async def _setup(**options: Any) -> MockConfigEntry:
        entry = linked_entry(fake_ha, **{CONF_FAILURE_THRESHOLD: 1000, **options})
        await set_up_entry(entry)
        await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
        return entry

    return _setup


def capture_of(entry: MockConfigEntry) -> EventCapture:
    """The entry's EventCapture."""
    capture: EventCapture = entry.runtime_data.capture
    return capture


async def drop_link(fake_ha: FakeHA, entry: MockConfigEntry) -> datetime:
    """Start an outage (new connections refused); return the moment the link was seen lost."""
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    lost = entry.runtime_data.coordinator.engine.snapshot().last_disconnected
    assert lost is not None
    # Leave room for a few distinct microsecond timestamps strictly inside the gap.
    await wait_for(lambda: datetime.now(UTC) - lost > timedelta(milliseconds=2))
    return lost


async def restore_link(fake_ha: FakeHA, entry: MockConfigEntry, gaps: int) -> None:
    """End the outage and wait until the backfill has recorded gap number `gaps`."""
    fake_ha.refuse = False
    await wait_for(lambda: len(capture_of(entry).state.gaps) >= gaps)
    assert len(capture_of(entry).state.gaps) == gaps


def inside(start: datetime, count: int) -> list[datetime]:
    """`count` increasing instants strictly between `start` and now."""
    span = datetime.now(UTC) - start
    return [start + span * (index + 1) / (count + 1) for index in range(count)]


def state_dict(
    entity_id: str,
    state: str,
    updated: datetime,
    attributes: dict[str, Any] | None = None,
    changed: datetime | None = None,
) -> dict[str, Any]:
    """A state object as the backfill rebuilds it from a history row."""
    return {
        "entity_id": entity_id,
        "state": state,
        "attributes": attributes or {},
        "last_changed": (changed or updated).isoformat(),
        "last_updated": updated.isoformat(),
    }


def backfilled(events: list[Event]) -> list[dict[str, Any]]:
    """The data of the backfilled local events, in the order they were fired."""
    return [event.data for event in events if event.data["backfilled"]]


def live(events: list[Event]) -> list[dict[str, Any]]:
    """The data of the live local events, in the order they were fired."""
    return [event.data for event in events if not event.data["backfilled"]]


def events_data(events: list[Event]) -> list[dict[str, Any]]:
    """The data of every local event."""
    return [event.data for event in events]


def history_requests(fake_ha: FakeHA) -> list[dict[str, Any]]:
    """Every history command the fake remote received, on any connection."""
    return [cmd for conn in fake_ha.connections for cmd in conn.commands if cmd["type"] == HISTORY]


def changes_of(events: list[dict[str, Any]], entity_id: str) -> list[tuple[str, str]]:
    """(state, last_updated) of each change of `entity_id`."""
    return [
        (data["data"]["new_state"]["state"], data["data"]["new_state"]["last_updated"])
        for data in events
        if data["data"]["entity_id"] == entity_id
    ]


def patch_history(monkeypatch: pytest.MonkeyPatch, handler: HistoryHandler) -> None:
    """Let `handler` answer history/history_during_period on the fake remote."""
    monkeypatch.setitem(fake_module._HANDLERS, HISTORY, handler)


async def answer_history(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
    """The fake remote's own answer."""
    await FakeConnection._cmd_history(conn, msg_id, msg)


def live_change_before_first_history(fake_ha: FakeHA, entity_id: str, state: str) -> HistoryHandler:
    """A history handler: before answering the first query, the remote records `state` for
    `entity_id` and sends it live (subscribed again already), as a busy remote does."""

    async def handler(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        if history_requests(fake_ha)[1:]:
            await answer_history(conn, msg_id, msg)
            return
        moment = datetime.now(UTC)
        old = fake_ha.states[entity_id].as_dict()
        fake_ha.record_state(entity_id, state, moment)
        await fake_ha.fire_event(
            "state_changed",
            {
                "entity_id": entity_id,
                "old_state": old,
                "new_state": fake_ha.states[entity_id].as_dict(),
            },
            time_fired=moment.isoformat(),
        )
        await answer_history(conn, msg_id, msg)

    return handler


def sensor_state(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str | None:
    """The state of one of the entry's sensors (by unique id)."""
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{entry.unique_id}_{key}")
    assert entity_id is not None
    state = hass.states.get(entity_id)
    return None if state is None else state.state


# ---------------------------------------------------------------------------------- live path


async def test_events_forwarded_with_fields_and_fresh_context(
    hass: HomeAssistant, fake_ha: FakeHA, init_integration: MockConfigEntry
) -> None:
    """Each remote event is fired locally with all fields; the remote context is never copied."""
    events = async_capture_events(hass, EVENT_INGESTED)
    remote_context = {"id": "01REMOTECONTEXT0000000000", "parent_id": None, "user_id": "remote-u"}
    data = {
        "entity_id": "light.kitchen",
        "old_state": None,
        "new_state": {
            "entity_id": "light.kitchen",
            "state": "on",
            "attributes": {"brightness": 128},
            "last_changed": "2025-04-01T10:00:00+00:00",
            "last_updated": "2025-04-01T10:00:00+00:00",
            "context": remote_context,
        },
    }
    await fake_ha.fire_event(
        "state_changed", data, time_fired="2025-04-01T10:00:00.123456+00:00", context=remote_context
    )
    await fake_ha.fire_state_changed("sensor.temperature", "21.5", {"unit_of_measurement": "°C"})
    await wait_for(lambda: len(events) == 2)

    first, second = events
    clean_new_state = {k: v for k, v in data["new_state"].items() if k != "context"}
    assert first.data == {
        "entry_id": init_integration.entry_id,
        "remote_name": fake_ha.location_name,
        "event_type": "state_changed",
        "data": {**data, "new_state": clean_new_state},
        "time_fired": "2025-04-01T10:00:00.123456+00:00",
        "origin": "REMOTE",
        "backfilled": False,
    }
    assert "remote-u" not in str(first.data)
    for event in events:
        assert event.context.user_id is None
        assert event.context.parent_id is None
        assert event.context.id != remote_context["id"]
    remote_state = fake_ha.states["sensor.temperature"].as_dict()
    assert "context" in remote_state
    assert second.data["data"]["new_state"] == {
        k: v for k, v in remote_state.items() if k != "context"
    }
    assert second.data["time_fired"] == remote_state["last_updated"]
    assert second.context.id != remote_state["context"]["id"]
    capture = capture_of(init_integration)
    assert capture.live.forwarded == 2
    assert capture.state.overflow == 0


async def test_forwarding_off_fires_nothing_but_counts(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """With forward_events off nothing reaches the local bus, yet every event is counted."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_FORWARD_EVENTS: False})
    for value in ("1", "2", "3"):
        await fake_ha.fire_state_changed("sensor.counter", value)
    engine = entry.runtime_data.coordinator.engine
    await wait_for(lambda: engine.snapshot().events_received == 3)
    await hass.async_block_till_done()

    assert events == []
    capture = capture_of(entry)
    assert capture.live.forwarded == 0
    assert not capture.live.queue
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["capture"]["forward_events"] is False
    last = diagnostics["capture"]["event_types"]["state_changed"]
    assert last["count"] == 3
    assert last["last_time_fired"] == fake_ha.states["sensor.counter"].as_dict()["last_updated"]


async def test_diagnostics_counts_and_last_event_per_type(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per-type counts, time and size of the last event appear in diagnostics (no payload)."""
    # Small drain batches: the drain yields to the reader inside a burst and still loses nothing.
    monkeypatch.setattr(live_module, "DRAIN_BATCH", 3)
    fake_ha.expected_subscriptions = 2
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_EVENT_TYPES: ["state_changed", "call_service"]})
    await fake_ha.wait_for_connections(1)

    await fake_ha.fire_events(
        [("call_service", {"domain": "light", "service": "turn_on", "n": n}) for n in range(7)]
    )
    for value in ("a", "b"):
        await fake_ha.fire_state_changed("switch.pump", value)
    await fake_ha.fire_event(
        "call_service",
        {"domain": "light", "service": "turn_off", "n": 7},
        time_fired="2025-04-02T08:00:00+00:00",
    )
    await wait_for(lambda: len(events) == 10)

    assert [e.data["data"]["n"] for e in events if e.data["event_type"] == "call_service"] == list(
        range(8)
    )
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    capture = diagnostics["capture"]
    assert {t: info["count"] for t, info in capture["event_types"].items()} == {
        "call_service": 8,
        "state_changed": 2,
    }
    assert capture["forwarded"] == 10
    assert capture["overflow"] == 0
    assert capture["queue_length"] == 0
    last_call = capture["event_types"]["call_service"]
    assert last_call["last_time_fired"] == "2025-04-02T08:00:00+00:00"
    assert last_call["last_size_bytes"] > 0
    last_state = capture["event_types"]["state_changed"]
    assert last_state["last_time_fired"] == fake_ha.states["switch.pump"].as_dict()["last_updated"]
    assert "switch.pump" not in str(capture)
    assert capture["gaps"] == []


async def test_backpressure_counts_overflow_and_keeps_reading(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A burst beyond the queue is counted as dropped (one warning); the link keeps reading."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    capture.live.queue_size = 5
    coordinator = entry.runtime_data.coordinator
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)

    # One coalesced frame: the reader hands all 20 events over before the drain can run once.
    await fake_ha.fire_events([("state_changed", {"entity_id": f"sensor.s{n}"}) for n in range(20)])
    await wait_for(lambda: capture.state.overflow == 15 and not capture.live.queue)
    await hass.async_block_till_done()

    assert [e.data["data"]["entity_id"] for e in events] == [f"sensor.s{n}" for n in range(5)]
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "queue full" in r.message
    ]
    assert len(warnings) == 1
    assert any("15 events dropped" in r.message for r in caplog.records)
    # The dropped_events sensor's data.
    assert capture.stats.overflow == 15
    await wait_for(lambda: coordinator.data.capture.overflow == 15)

    # The reader kept going: same connection, later events still arrive.
    await fake_ha.fire_state_changed("sensor.after", "ok")
    await wait_for(lambda: len(events) == 6)
    assert events[-1].data["data"]["entity_id"] == "sensor.after"
    assert link_state(entry) is LinkState.CONNECTED
    assert len(fake_ha.connections) == 1
    assert coordinator.engine.snapshot().events_received == 21
    assert capture.state.overflow == 15
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["capture"]["overflow"] == 15
    assert diagnostics["capture"]["queue_size"] == 5


# ---------------------------------------------------------------------------------- backfill


@pytest.mark.parametrize("sub_microsecond", [0.0, 2e-7], ids=["whole_us", "real_db_float"])
async def test_backfill_recovers_missed_changes(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
    sub_microsecond: float,
) -> None:
    """Every change missed in the gap arrives once, in order, chained, flagged backfilled.

    With `real_db_float`, history times carry digits below the microsecond (as a real recorder's
    do) while live events carry whole microseconds: the change seen live before the gap must
    still not be fired again.
    """
    fake_ha.history_sub_microsecond = sub_microsecond
    monkeypatch.setattr(live_module, "DRAIN_BATCH", 3)  # the backfill yields while firing
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    # sensor.b: known to the remote only from long before the window (start-time placeholder).
    fake_ha.record_state("sensor.b", "b0", long_ago)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    # sensor.a: its last change before the gap arrives live.
    await fake_ha.fire_state_changed("sensor.a", "a0", {"unit": "W"})
    await wait_for(lambda: len(events) == 1)
    a0 = fake_ha.states["sensor.a"]

    lost = await drop_link(fake_ha, entry)
    times = inside(lost, 12)
    expected: dict[str, list[dict[str, Any]]] = {"sensor.a": [], "sensor.b": [], "sensor.c": []}
    for index, moment in enumerate(times):
        entity_id = ("sensor.a", "sensor.b", "sensor.c")[index % 3]
        step = index // 3
        # sensor.c keeps its state once (attributes only): last_changed stays at its first change.
        value = "c1" if entity_id == "sensor.c" and step == 1 else f"{entity_id[-1]}{step + 1}"
        attributes = {"step": step}
        fake_ha.record_state(entity_id, value, moment, attributes)
        changed = moment
        previous = expected[entity_id][-1] if expected[entity_id] else None
        if previous is not None and previous["state"] == value:
            changed = datetime.fromisoformat(previous["last_changed"])
        expected[entity_id].append(state_dict(entity_id, value, moment, attributes, changed))
    await restore_link(fake_ha, entry, gaps=1)

    fired = backfilled(events)
    assert len(fired) == 12
    assert [d["time_fired"] for d in fired] == [t.isoformat() for t in times]  # time order
    # One read at once, one after the remote's commit interval (from the newest change read).
    request, again = history_requests(fake_ha)
    assert "end_time" not in request  # the remote's clock ends the read, not ours
    assert datetime.fromisoformat(again["start_time"]) < times[-1]
    window_start = datetime.fromisoformat(request["start_time"])
    for data in fired:
        assert data["entry_id"] == entry.entry_id
        assert data["remote_name"] == fake_ha.location_name
        assert data["event_type"] == "state_changed"
        assert data["origin"] == "REMOTE"
        assert data["backfilled"] is True
        assert data["time_fired"] == data["data"]["new_state"]["last_updated"]
    for entity_id, states in expected.items():
        mine = [d["data"] for d in fired if d["data"]["entity_id"] == entity_id]
        assert [d["new_state"] for d in mine] == states
        assert [d["old_state"] for d in mine[1:]] == states[:-1]
    first_old = {d["data"]["entity_id"]: d["data"]["old_state"] for d in reversed(fired)}
    # sensor.a chains on the change that arrived live before the gap (which is not fired again).
    assert first_old["sensor.a"] == state_dict("sensor.a", "a0", a0.last_updated, {"unit": "W"})
    # sensor.b chains on the state at the window start; that placeholder row is not fired.
    assert first_old["sensor.b"] == state_dict("sensor.b", "b0", window_start)
    assert first_old["sensor.c"] is None
    assert len(live(events)) == 1

    capture = capture_of(entry)
    (gap,) = capture.state.gaps
    assert gap.start == lost
    assert gap.end > gap.start
    assert gap.duration == pytest.approx((gap.end - gap.start).total_seconds(), abs=1e-5)
    assert gap.event_types == ("state_changed",)
    assert gap.backfilled == 12
    assert gap.backfill_error is None
    assert capture.state.backfilled == 12
    assert not capture.recovery.backfill_running
    assert entry.runtime_data.coordinator.data.capture.backfilled == 12
    await wait_for(lambda: sensor_state(hass, entry, "backfilled_changes") == "12")
    await wait_for(lambda: sensor_state(hass, entry, "last_gap") not in (None, "unknown"))
    assert gap.outage is not None
    assert float(sensor_state(hass, entry, "last_gap") or "nan") == gap.outage.length
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["capture"]["backfilled"] == 12
    assert diagnostics["capture"]["gaps"] == [gap.as_dict()]
    # The history was asked for explicitly, per entity, with every change.
    assert request["entity_ids"] == ["sensor.a", "sensor.b", "sensor.c"]
    assert request["significant_changes_only"] is False
    assert request["include_start_time_state"] is True


async def test_change_arriving_live_after_reconnect_is_not_fired_twice(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change that arrives live after the reconnect and is also in the history fires once."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.door", "closed")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    missed = inside(lost, 2)
    fake_ha.record_state("sensor.door", "open", missed[0])
    fake_ha.record_state("sensor.window", "open", missed[1])

    # The remote records a change just before the backfill's end time and sends it live.
    patch_history(monkeypatch, live_change_before_first_history(fake_ha, "sensor.door", "closed"))
    await restore_link(fake_ha, entry, gaps=1)
    await hass.async_block_till_done()

    request = history_requests(fake_ha)[0]
    live_moment = fake_ha.states["sensor.door"].last_updated
    fired = backfilled(events)
    assert changes_of(fired, "sensor.door") == [("open", missed[0].isoformat())]
    assert changes_of(fired, "sensor.window") == [("open", missed[1].isoformat())]
    assert changes_of(live(events), "sensor.door") == [
        ("closed", fake_ha.history[0].last_updated.isoformat()),
        ("closed", live_moment.isoformat()),
    ]
    # The history did contain the live change: it was left out, not missing.
    assert fake_ha.history_during_period(request)["sensor.door"][-1]["lu"] == (
        live_moment.timestamp()
    )
    assert capture_of(entry).state.gaps[0].backfilled == 2


async def test_two_outages_with_overlapping_windows(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """The second backfill's window covers the first outage: still no change fires twice."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "a0")
    await wait_for(lambda: len(events) == 1)

    lost = await drop_link(fake_ha, entry)
    first = inside(lost, 3)
    fake_ha.record_state("sensor.a", "a1", first[0])
    fake_ha.record_state("sensor.b", "b1", first[1])
    fake_ha.record_state("sensor.a", "a2", first[2])
    await restore_link(fake_ha, entry, gaps=1)
    await fake_ha.fire_state_changed("sensor.a", "a3")  # arrives live between the outages
    await wait_for(lambda: len(live(events)) == 2)

    lost = await drop_link(fake_ha, entry)
    second = inside(lost, 2)
    fake_ha.record_state("sensor.c", "c1", second[0])
    fake_ha.record_state("sensor.a", "a4", second[1])
    await restore_link(fake_ha, entry, gaps=2)

    requests = history_requests(fake_ha)
    assert len(requests) == 4  # two reads per gap
    # The windows overlap: the second gap's read reaches back over the whole first outage.
    assert datetime.fromisoformat(requests[2]["start_time"]) < first[0]
    fired = backfilled(events)
    assert [(d["data"]["new_state"]["state"]) for d in fired] == ["a1", "b1", "a2", "c1", "a4"]
    every = [d["data"]["new_state"]["state"] for d in events_data(events)]
    assert sorted(every) == sorted(set(every))  # nothing twice, live or backfilled
    a4 = next(d for d in fired if d["data"]["new_state"]["state"] == "a4")
    assert a4["data"]["old_state"]["state"] == "a3"  # chained on the live change
    gaps = capture_of(entry).state.gaps
    assert [gap.backfilled for gap in gaps] == [3, 2]

    # A third outage in which nothing changed: its window covers both others, nothing fires.
    await drop_link(fake_ha, entry)
    await restore_link(fake_ha, entry, gaps=3)
    assert len(history_requests(fake_ha)) == 6
    assert gaps[-1].backfilled == 0
    assert len(backfilled(events)) == 5
    assert capture_of(entry).state.backfilled == 5


async def test_history_is_chunked_by_entity(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five entities in chunks of two: three explicit history requests, every change."""
    monkeypatch.setattr(backfill_module, "CHUNK", 2)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    lost = await drop_link(fake_ha, entry)
    entity_ids = [f"sensor.e{n}" for n in range(5)]
    for entity_id, moment in zip(entity_ids, inside(lost, 5), strict=True):
        fake_ha.record_state(entity_id, "on", moment)
    await restore_link(fake_ha, entry, gaps=1)

    requests = history_requests(fake_ha)
    chunks = [entity_ids[0:2], entity_ids[2:4], entity_ids[4:]]
    assert [r["entity_ids"] for r in requests] == chunks * 2  # read, and read again
    for request in requests:
        assert request["significant_changes_only"] is False
        assert request["include_start_time_state"] is True
        assert request["minimal_response"] is False
        assert request["no_attributes"] is False
        assert "end_time" not in request
        assert request["start_time"] == requests[3 * (requests.index(request) // 3)]["start_time"]
    assert [d["data"]["entity_id"] for d in backfilled(events)] == entity_ids


async def test_change_older_than_the_max_window_is_not_fired(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """With a short backfill window, a change inside the detection margin but older than the
    window is left out; changes inside it are fired."""
    hours = 0.005  # 18 s, less than the detection margin (30 + 10 + 5 s)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_BACKFILL_MAX_WINDOW: hours})
    lost = await drop_link(fake_ha, entry)
    too_old = lost - timedelta(seconds=30)
    fake_ha.record_state("sensor.stale", "stale", too_old)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.fresh", "fresh", moment)
    await restore_link(fake_ha, entry, gaps=1)

    request = history_requests(fake_ha)[0]
    start = datetime.fromisoformat(request["start_time"])
    assert datetime.now(UTC) - start >= timedelta(hours=hours)
    assert start > too_old
    # The part of the gap older than the window is recorded as not recovered, never invented.
    (gap,) = capture_of(entry).state.gaps
    ((old_start, old_end),) = gap.unrecoverable
    assert datetime.fromisoformat(old_start) < datetime.fromisoformat(old_end) <= start
    fired = backfilled(events)
    assert changes_of(fired, "sensor.stale") == []
    assert changes_of(fired, "sensor.fresh") == [("fresh", moment.isoformat())]


@pytest.mark.parametrize(
    ("options", "event_types"),
    [
        ({CONF_BACKFILL: False}, ("state_changed",)),
        ({CONF_EVENT_TYPES: ["call_service"]}, ("call_service",)),
    ],
    ids=["backfill_off", "state_changed_not_subscribed"],
)
async def test_gap_recorded_without_backfill(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    options: dict[str, Any],
    event_types: tuple[str, ...],
) -> None:
    """Backfill off (or no state_changed subscription): nothing is fetched, the gap is recorded."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**options)
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.missed", "missed", moment)
    await restore_link(fake_ha, entry, gaps=1)
    await hass.async_block_till_done()

    assert history_requests(fake_ha) == []
    assert all(cmd["type"] != "get_states" for c in fake_ha.connections for cmd in c.commands)
    assert backfilled(events) == []
    (gap,) = capture_of(entry).state.gaps
    assert gap.start == lost
    assert gap.duration > 0
    assert gap.event_types == event_types
    assert gap.backfilled == 0
    assert gap.backfill_error is None
    stats = entry.runtime_data.coordinator.data.capture
    assert stats.backfilled == 0
    assert stats.last_outage == gap.outage
    await wait_for(lambda: sensor_state(hass, entry, "last_gap") not in (None, "unknown"))


async def test_malformed_history_and_events_are_skipped(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Odd live events and malformed history rows are skipped; the valid rows still fire."""
    monkeypatch.setattr(backfill_module, "CHUNK", 1)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    # A removal (no new state) is forwarded; an event without data and a state without a usable
    # last_updated are skipped and counted.
    await fake_ha.fire_event(
        "state_changed", {"entity_id": "sensor.gone", "old_state": None, "new_state": None}
    )
    await fake_ha.fire_event("state_changed", {})
    await fake_ha.fire_event(
        "state_changed",
        {"entity_id": "sensor.odd", "new_state": {"state": "?", "last_updated": "not a time"}},
    )
    await fake_ha.fire_state_changed("sensor.fine", "1")
    await wait_for(lambda: len(events) == 2)
    assert capture_of(entry).skips.counts == {"bad_entity_id": 1, "bad_last_updated": 1}
    lost = await drop_link(fake_ha, entry)
    first, second = inside(lost, 2)
    for entity_id in ("sensor.broken", "sensor.list", "sensor.odd"):
        fake_ha.record_state(entity_id, "x", first)

    async def malformed(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        (entity_id,) = msg["entity_ids"]
        if entity_id == "sensor.list":
            await conn._result(msg_id, [])  # not an object at all
        elif entity_id == "sensor.broken":
            await conn._result(msg_id, {entity_id: "rows"})
        elif entity_id == "sensor.odd":
            rows = [{"s": "no time"}, "junk", {"s": "ok", "lu": second.timestamp()}]
            await conn._result(msg_id, {entity_id: rows})
        else:
            await answer_history(conn, msg_id, msg)

    patch_history(monkeypatch, malformed)
    await restore_link(fake_ha, entry, gaps=1)

    asked = [r["entity_ids"] for r in history_requests(fake_ha)]
    assert asked[:4] == [["sensor.broken"], ["sensor.fine"], ["sensor.list"], ["sensor.odd"]]
    fired = backfilled(events)
    assert [d["data"]["entity_id"] for d in fired] == ["sensor.odd"]
    assert fired[0]["data"]["new_state"]["state"] == "ok"
    assert fired[0]["data"]["old_state"] is None
    capture = capture_of(entry)
    assert capture.state.gaps[0].backfilled == 1
    assert capture.skips.counts["bad_history_row"] >= 4  # each read: 2 rows, 1 text, 1 list
    assert link_state(entry) is LinkState.CONNECTED


async def test_outage_during_backfill_does_not_duplicate(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The link drops again while a backfill is still firing: the same gap goes on at the next
    connection (one record), and nothing is fired twice."""
    monkeypatch.setattr(backfill_module, "FIRE_BATCH", 1)  # yield after every backfilled change
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    lost = await drop_link(fake_ha, entry)
    first = inside(lost, 40)
    for n, moment in enumerate(first):
        fake_ha.record_state("sensor.busy", f"v{n}", moment)

    @callback
    def drop_on_first_backfilled(event: Event) -> None:
        if event.data["backfilled"] and not dropped:
            dropped.append(event)
            fake_ha.refuse = True
            for conn in fake_ha.open_connections:
                conn.abort()

    dropped: list[Event] = []
    hass.bus.async_listen(EVENT_INGESTED, drop_on_first_backfilled)
    capture = capture_of(entry)
    seen_lost_while: list[tuple[bool, int]] = []

    def note_loss(snapshot: LinkSnapshot) -> None:
        if snapshot.state is LinkState.RECONNECTING and dropped and not seen_lost_while:
            seen_lost_while.append((capture.recovery.backfill_running, capture.state.backfilled))

    remove = entry.runtime_data.coordinator.engine.add_listener(note_loss)
    fake_ha.refuse = False
    await wait_for(lambda: bool(dropped) and link_state(entry) is not LinkState.CONNECTED)
    await wait_for(lambda: not capture.recovery.backfill_running)
    remove()
    # The loss was seen while the backfill was still firing; the fetched slice was still fired,
    # and the gap stays open (no record yet) for the next connection.
    ((running, fired_then),) = seen_lost_while
    assert running
    assert 0 < fired_then < 40
    assert capture.state.backfilled == 40
    assert not capture.state.gaps
    lost = entry.runtime_data.coordinator.engine.snapshot().last_disconnected
    assert lost is not None
    await wait_for(lambda: datetime.now(UTC) - lost > timedelta(milliseconds=2))
    (later,) = inside(lost, 1)
    fake_ha.record_state("sensor.busy", "last", later)
    await restore_link(fake_ha, entry, gaps=1)
    assert capture.state.gaps[0].backfilled == 41

    states = [d["data"]["new_state"]["state"] for d in backfilled(events)]
    assert states == [f"v{n}" for n in range(40)] + ["last"]


# ---------------------------------------------------------------------------------- bad input


async def send_event_frame(conn: FakeConnection, event: Any) -> None:
    """An event message on the connection's state_changed subscription, as raw as given."""
    (sub_id,) = conn.sub_ids
    await conn.send_json({"id": sub_id, "type": "event", "event": event})


BAD_EVENTS: list[tuple[Any, str]] = [
    ({"event_type": ["state_changed"], "data": {}}, "bad_event_type"),
    ({"data": {"entity_id": "light.a"}}, "bad_event_type"),
    ({"event_type": "call_service", "data": {}}, "unexpected_event_type"),
    ({"event_type": "state_changed", "data": ["x"]}, "bad_data"),
    ({"event_type": "state_changed", "data": {"new_state": {}}}, "bad_entity_id"),
    ({"event_type": "state_changed", "data": {"entity_id": {"a": 1}}}, "bad_entity_id"),
    ({"event_type": "state_changed", "data": {"entity_id": "a.b", "new_state": 7}}, "bad_state"),
    (
        {
            "event_type": "state_changed",
            "data": {"entity_id": "a.b", "new_state": {"last_updated": ["2026"]}},
        },
        "bad_last_updated",
    ),
]


async def test_malformed_events_never_cost_the_link(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Each malformed event is skipped and counted by reason; the same connection goes on."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    conn = fake_ha.last_connection
    assert conn is not None
    for bad, _reason in BAD_EVENTS:
        await send_event_frame(conn, bad)
    await fake_ha.fire_state_changed("sensor.after", "ok")
    await wait_for(lambda: len(events) == 1)

    capture = capture_of(entry)
    expected: dict[str, int] = {}
    for _bad, reason in BAD_EVENTS:
        expected[reason] = expected.get(reason, 0) + 1
    assert capture.skips.counts == expected
    assert list(capture.live.last_by_type) == ["state_changed"]  # only subscribed types are kept
    assert link_state(entry) is LinkState.CONNECTED
    assert len(fake_ha.connections) == 1
    assert events[0].data["data"]["entity_id"] == "sensor.after"


async def test_queue_is_bounded_in_bytes(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Big events fill the byte budget before the count limit: the rest is dropped and counted."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    capture.live.queue_bytes_limit = 50_000
    big = {"entity_id": "sensor.big", "blob": "x" * 10_000}
    await fake_ha.fire_events([("state_changed", dict(big)) for _ in range(20)])
    await wait_for(lambda: capture.state.overflow > 0 and not capture.live.queue)
    assert len(capture.live.queue) == 0
    assert capture.live.queue_bytes == 0
    # The first event goes into an empty queue unmeasured; the next ones fill 50 kB.
    assert 4 <= len(events) <= 6
    assert capture.state.overflow == 20 - len(events)


# ---------------------------------------------------------------------------------- switches


async def test_forwarding_off_means_no_event_and_no_history_query(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Forwarding off: an outage is recorded, but nothing is fired and history is never asked."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_FORWARD_EVENTS: False, CONF_BACKFILL: True})
    await fake_ha.fire_state_changed("sensor.a", "1")
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.a", "2", moment)
    await restore_link(fake_ha, entry, gaps=1)
    await hass.async_block_till_done()
    assert events == []
    commands = {cmd["type"] for conn in fake_ha.connections for cmd in conn.commands}
    assert HISTORY not in commands
    assert "config/entity_registry/list_for_display" not in commands
    assert capture_of(entry).settings.backfill_enabled is False
    assert entry.runtime_data.capture.stats.backfill_available is False


# ---------------------------------------------------------------------------------- self-link


async def test_self_link_never_captures_its_own_entities_or_events(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """The entry's token is one this instance issued: the remote is this instance. Its own
    entities' changes and ha_ingestion_events are skipped (live and in backfill); others pass."""
    user = await hass.auth.async_create_user("Self link")
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name="self", token_type="long_lived_access_token"
    )
    fake_ha.token = hass.auth.async_create_access_token(refresh)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    assert capture.self_link
    own = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.unique_id}_events_received"
    )
    assert own is not None
    assert own in capture.own.entity_ids
    for _ in range(3):
        await fake_ha.fire_state_changed(own, "5")
        await fake_ha.fire_event(EVENT_INGESTED, {"entry_id": entry.entry_id})
    await fake_ha.fire_state_changed("light.kitchen", "on")
    await wait_for(lambda: len(events) == 1)
    await hass.async_block_till_done()
    assert [e.data["data"]["entity_id"] for e in events] == ["light.kitchen"]
    assert capture.live.self_skipped == 3  # ha_ingestion_event is not subscribed: rejected earlier
    # Its own changes do not move its counters either (they would change them again: a loop).
    coordinator = entry.runtime_data.coordinator
    snapshot = coordinator.engine.snapshot()
    assert coordinator.ignored == 3
    data = coordinator._build(snapshot)
    assert data.events_received == snapshot.events_received - 3
    assert data.last_event_time == snapshot.last_event_time  # the light's: not an own event
    coordinator.async_publish()
    await fake_ha.fire_state_changed(own, "6")
    await wait_for(lambda: coordinator.ignored == 4)
    later = coordinator._build(coordinator.engine.snapshot())
    assert later.events_received == data.events_received
    assert later.last_event_time == data.last_event_time
    assert capture.is_own_event({"event_type": EVENT_INGESTED})
    assert not capture.is_own_event({"event_type": "state_changed", "data": ["not", "a", "dict"]})
    assert not capture.is_own_event({"event_type": "state_changed", "data": {"entity_id": 5}})

    lost = await drop_link(fake_ha, entry)
    first, second = inside(lost, 2)
    fake_ha.record_state(own, "9", first)
    fake_ha.record_state("light.kitchen", "off", second)
    await restore_link(fake_ha, entry, gaps=1)
    assert [d["data"]["entity_id"] for d in backfilled(events)] == ["light.kitchen"]
    assert all(own not in r["entity_ids"] for r in history_requests(fake_ha))


async def test_other_token_is_not_a_self_link(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """A token this instance did not issue (any other remote): nothing is filtered."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    assert not capture_of(entry).self_link
    await fake_ha.fire_state_changed("sensor.remote_home_events_received", "5")
    await wait_for(lambda: len(events) == 1)


# ---------------------------------------------------------------------------------- exactly once


async def test_commit_race_closes_the_gap_only_once_history_covers_it(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changes made just before the link came back are not in the remote's history yet (its
    recorder commits every 5 s). The first read misses them; the backfill waits for the commit
    interval (and an empty backlog), reads again, and only then closes the gap."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 1:
            fake_ha.recorder_backlog = 3  # still busy at the first look
        else:
            fake_ha.recorder_backlog = 0
            fake_ha.commit()

    capture.recovery._sleep = fake_sleep
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 3600.0)  # it is slept, never waited
    lost = await drop_link(fake_ha, entry)
    early, late1, late2 = inside(lost, 3)
    fake_ha.record_state("sensor.t", "early", early)
    fake_ha.record_state("sensor.t", "late1", late1, committed=False)
    fake_ha.record_state("sensor.u", "late2", late2, committed=False)
    await restore_link(fake_ha, entry, gaps=1)

    assert changes_of(backfilled(events), "sensor.t") == [
        ("early", early.isoformat()),
        ("late1", late1.isoformat()),
    ]
    assert changes_of(backfilled(events), "sensor.u") == [("late2", late2.isoformat())]
    assert sleeps[0] > 3500  # the commit interval, counted from the confirmed subscription
    assert fake_ha.recorder_info_requests >= 2
    first, *_, last = history_requests(fake_ha)
    assert last["start_time"] == first["start_time"]  # the second read covers the whole gap
    assert capture.state.gaps[0].backfilled == 3


@pytest.mark.parametrize("skew", [30.0, -30.0], ids=["remote_ahead", "remote_behind"])
async def test_remote_clock_skew_loses_nothing(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, skew: float
) -> None:
    """The remote's clock is 30 s off ours: the gap is placed on the remote's clock (measured
    from live events) and read open-ended, so its last changes are not lost."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    shift = timedelta(seconds=skew)
    await fake_ha.fire_event(
        "state_changed",
        {
            "entity_id": "sensor.s",
            "old_state": None,
            "new_state": {
                "entity_id": "sensor.s",
                "state": "0",
                "attributes": {},
                "last_changed": (datetime.now(UTC) + shift).isoformat(),
                "last_updated": (datetime.now(UTC) + shift).isoformat(),
            },
        },
    )
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    times = [moment + shift for moment in inside(lost, 3)]
    for n, moment in enumerate(times):
        fake_ha.record_state("sensor.s", str(n + 1), moment)
    await restore_link(fake_ha, entry, gaps=1)
    assert changes_of(backfilled(events), "sensor.s") == [
        (str(n + 1), moment.isoformat()) for n, moment in enumerate(times)
    ]


async def test_reconnect_while_firing_fires_everything_once(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Reconnect button pressed while the backfill fires: one gap, every change once."""
    monkeypatch.setattr(backfill_module, "FIRE_BATCH", 1)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    engine = entry.runtime_data.coordinator.engine
    lost = await drop_link(fake_ha, entry)
    for n, moment in enumerate(inside(lost, 30)):
        fake_ha.record_state("sensor.busy", f"v{n}", moment)
    pressed: list[bool] = []

    @callback
    def reconnect_on_first(event: Event) -> None:
        if event.data["backfilled"] and not pressed:
            pressed.append(True)
            hass.async_create_task(engine.reconnect())

    hass.bus.async_listen(EVENT_INGESTED, reconnect_on_first)
    await restore_link(fake_ha, entry, gaps=1)
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert pressed
    assert len(fake_ha.ready_connections) >= 3  # first link, restored, reconnected
    states = [d["data"]["new_state"]["state"] for d in backfilled(events)]
    assert states == [f"v{n}" for n in range(30)]
    assert len(capture_of(entry).state.gaps) == 1


async def test_reload_mid_backfill_goes_on_without_repeating(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Options saved (a reload) while the backfill fires: the checkpoint keeps the open gap and
    what was fired; the reloaded entry fires the rest, nothing twice."""
    monkeypatch.setattr(backfill_module, "FIRE_BATCH", 1)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    lost = await drop_link(fake_ha, entry)
    for n, moment in enumerate(inside(lost, 30)):
        fake_ha.record_state("sensor.busy", f"v{n}", moment)
    reloads: list[Any] = []

    @callback
    def reload_on_tenth(event: Event) -> None:
        if event.data["backfilled"] and len(backfilled(events)) == 10 and not reloads:
            reloads.append(hass.async_create_task(hass.config_entries.async_reload(entry.entry_id)))

    hass.bus.async_listen(EVENT_INGESTED, reload_on_tenth)
    fake_ha.refuse = False
    await wait_for(lambda: bool(reloads))
    await reloads[0]
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    states = [d["data"]["new_state"]["state"] for d in backfilled(events)]
    assert states == [f"v{n}" for n in range(30)]
    assert capture_of(entry).state.backfilled == 30  # the total survived the reload


async def test_restart_recovers_changes_made_while_stopped(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Local instance stopped (entry unloaded), remote changes, started again while the remote
    is still down, remote back: every change recovered once, in order, flagged backfilled."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.r", "before")
    await wait_for(lambda: len(events) == 1)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    stopped = datetime.now(UTC)
    await wait_for(lambda: datetime.now(UTC) - stopped > timedelta(milliseconds=2))
    times = inside(stopped, 20)
    for n, moment in enumerate(times):
        fake_ha.record_state("sensor.r", f"v{n}", moment)
    fake_ha.refuse = True  # the first connection after the start finds the remote down
    await fake_ha.close_all()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert link_state(entry) is not LinkState.CONNECTED
    fake_ha.refuse = False
    await wait_for(lambda: len(capture_of(entry).state.gaps) >= 1)
    fired = backfilled(events)
    assert changes_of(fired, "sensor.r") == [
        (f"v{n}", moment.isoformat()) for n, moment in enumerate(times)
    ]
    assert fired[0]["data"]["old_state"]["state"] == "before"
    assert len(live(events)) == 1


async def test_remote_without_history_is_detected_once(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """unknown_command for history: the gap is recorded unrecoverable, backfill reported off,
    the next outage asks nothing."""
    monkeypatch.delitem(fake_module._HANDLERS, HISTORY)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "1")
    await drop_link(fake_ha, entry)
    await restore_link(fake_ha, entry, gaps=1)
    capture = capture_of(entry)
    assert capture.recovery.history_available is False
    assert capture.state.gaps[0].backfill_error == "remote has no history"
    assert capture.state.gaps[0].unrecoverable
    assert entry.runtime_data.capture.stats.backfill_available is False
    asked = len(history_requests(fake_ha))
    assert asked == 1
    await drop_link(fake_ha, entry)
    await restore_link(fake_ha, entry, gaps=2)
    assert len(history_requests(fake_ha)) == asked


async def test_window_that_keeps_failing_becomes_unrecoverable_with_a_repair(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every history request fails: tried a bounded number of times, then the span is recorded
    unrecoverable and a repair raised; the live link stays up throughout."""
    from homeassistant.helpers import issue_registry as ir

    async def failing(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        await conn._error(msg_id, "home_assistant_error", "database locked")

    patch_history(monkeypatch, failing)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    main = len(fake_ha.ready_connections)
    await restore_link(fake_ha, entry, gaps=1)
    (gap,) = capture_of(entry).state.gaps
    assert gap.unrecoverable
    assert "database locked" in (gap.backfill_error or "")
    assert gap.start == lost
    assert len(history_requests(fake_ha)) <= 2 * backfill_module.MAX_TRIES
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"backfill_incomplete_{entry.entry_id}")
    assert issue is not None
    assert link_state(entry) is LinkState.CONNECTED
    assert len(fake_ha.ready_connections) == main + 1  # the live link never dropped for it
    await fake_ha.fire_state_changed("sensor.live", "still")
    await wait_for(lambda: len(live(events)) == 2)


async def test_oversize_reply_never_closes_the_live_link(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """History replies above the reply budget end only the backfill's own session; requests are
    split until they fit and every change is recovered; the live connection is the same."""
    monkeypatch.setattr(recovery_module, "REPLY_LIMIT", 6_000)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    lost = await drop_link(fake_ha, entry)
    entity_ids = [f"sensor.e{n}" for n in range(8)]
    moments = inside(lost, 40)
    for n, moment in enumerate(moments):
        fake_ha.record_state(entity_ids[n % 8], f"v{n}", moment, {"pad": "x" * 200})
    await restore_link(fake_ha, entry, gaps=1)
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    live_connections = [c for c in fake_ha.connections if c.ready]
    assert len(live_connections) == 2  # before the outage, and after: never dropped again
    assert not live_connections[-1].closed
    fired = backfilled(events)
    assert [d["data"]["new_state"]["state"] for d in fired] == [f"v{n}" for n in range(40)]
    capture = capture_of(entry)
    assert capture.recovery.session.sessions_opened > 1  # oversize replies ended backfill sessions
    assert capture.state.gaps[0].unrecoverable == ()


async def test_backfill_session_lost_while_the_link_stays_up_is_retried(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The remote drops the backfill's session mid-query (the live link stays): the read is
    retried after a pause and the gap closes complete, without an error on its record."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.x", "x0")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    (missed,) = inside(lost, 1)
    fake_ha.record_state("sensor.x", "x1", missed)
    dropped: list[int] = []

    async def drop_first(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        if not dropped:
            dropped.append(msg_id)
            await conn.close()
            return
        await answer_history(conn, msg_id, msg)

    patch_history(monkeypatch, drop_first)
    await restore_link(fake_ha, entry, gaps=1)
    (gap,) = capture_of(entry).state.gaps
    assert gap.backfill_error is None
    assert gap.unrecoverable == ()
    assert changes_of(backfilled(events), "sensor.x") == [("x1", missed.isoformat())]
    assert any("Backfill after the outage" in r.message for r in caplog.records)
    assert link_state(entry) is LinkState.CONNECTED


async def test_unreadable_checkpoint_starts_fresh(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
) -> None:
    """A checkpoint that cannot be read is logged and ignored; capture works as new."""
    from custom_components.ha_ingestion.capture.checkpoint import storage_key

    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[storage_key(entry.entry_id)]
    stored["data"]["seen"] = {"sensor.a": "not a number"}
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    capture = capture_of(entry)
    assert capture.state.gap is None
    assert not capture.state.gaps
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: len(events) == 1)


async def test_registry_list_too_large_or_missing_falls_back_to_seen_entities(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An entity registry list above the reply budget (or no such command, or no recorder/info):
    the entities seen here are still recovered."""
    monkeypatch.setattr(recovery_module, "REPLY_LIMIT", 20_000)

    async def huge(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        rows = [{"ei": f"sensor.n{n}", "pl": "x" * 50} for n in range(2_000)]
        await conn._result(msg_id, {"entity_categories": {}, "entities": rows})

    monkeypatch.setitem(fake_module._HANDLERS, "config/entity_registry/list_for_display", huge)
    monkeypatch.delitem(fake_module._HANDLERS, "recorder/info")
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.seen", "0")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.seen", "1", moment)
    await restore_link(fake_ha, entry, gaps=1)
    assert changes_of(backfilled(events), "sensor.seen") == [("1", moment.isoformat())]
    assert {tuple(r["entity_ids"]) for r in history_requests(fake_ha)} == {("sensor.seen",)}

    monkeypatch.delitem(fake_module._HANDLERS, "config/entity_registry/list_for_display")
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.seen", "2", moment)
    await restore_link(fake_ha, entry, gaps=2)
    assert changes_of(backfilled(events), "sensor.seen")[-1] == ("2", moment.isoformat())


async def test_totals_survive_a_reload(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Reconnects, backfilled, dropped and the last outage are the same after a reload."""
    entry = await setup_link()
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.t", "1", moment)
    await fake_ha.fire_state_changed("sensor.t", "0")  # nobody connected: only recorded
    await restore_link(fake_ha, entry, gaps=1)
    capture = capture_of(entry)
    capture.state.overflow = 7
    before = (capture.state.backfilled, capture.state.gaps[-1])
    await wait_for(lambda: sensor_state(hass, entry, "reconnect_count") == "1")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    capture = capture_of(entry)
    await wait_for(lambda: len(capture.state.gaps) == 2)  # the reload's own short gap
    assert capture.state.backfilled == before[0]
    assert capture.state.gaps[0] == before[1]
    assert capture.state.overflow == 7
    await wait_for(lambda: sensor_state(hass, entry, "reconnect_count") == "1")
    await wait_for(lambda: sensor_state(hass, entry, "backfilled_changes") == str(before[0]))
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.unique_id}_backfilled_changes"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["backfill_available"] is True


async def test_live_changes_wait_for_the_gap_other_events_do_not(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a gap is recovered, a live state change waits (it is newer than the recovered ones,
    so each entity stays in order) and is not fired twice; other event types go on at once."""
    fake_ha.expected_subscriptions = 2
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_EVENT_TYPES: ["state_changed", "e2e_ping"]})
    capture = capture_of(entry)
    waiting = asyncio.Event()
    release = asyncio.Event()

    async def held_sleep(_delay: float) -> None:
        waiting.set()
        await release.wait()

    capture.recovery._sleep = held_sleep
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 3600.0)  # slept by held_sleep
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.o", "missed", moment)
    fake_ha.refuse = False
    await wait_for(waiting.is_set)
    assert capture.recovering
    await fake_ha.fire_state_changed("sensor.o", "live")  # also lands in the remote's history
    await fake_ha.fire_event("e2e_ping", {"n": 1})
    await wait_for(lambda: any(e.data["event_type"] == "e2e_ping" for e in events))
    assert [e for e in live(events) if e["event_type"] == "state_changed"] == []
    release.set()
    await wait_for(lambda: not capture.recovering and len(events) == 3)
    order = [
        (e.data["data"]["new_state"]["state"], e.data["backfilled"])
        for e in events
        if e.data["event_type"] == "state_changed"
    ]
    assert order == [("missed", True), ("live", False)]


async def test_start_after_a_crash_is_flagged(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    hass_storage: dict[str, Any],
) -> None:
    """A checkpoint from a throttled write (no clean stop after it) marks the next gap
    `after_crash` (its first changes may repeat); a clean unload does not."""
    from custom_components.ha_ingestion.capture.checkpoint import storage_key

    entry = await setup_link()
    await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[storage_key(entry.entry_id)]
    assert stored["data"]["clean"] is True
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    assert capture_of(entry).state.gaps[-1].after_crash is False
    await hass.config_entries.async_unload(entry.entry_id)
    hass_storage[storage_key(entry.entry_id)]["data"]["clean"] = False  # as a kill leaves it
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 2)
    assert capture_of(entry).state.gaps[-1].after_crash is True


async def test_possible_duplicates_after_a_crash_are_counted(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    hass_storage: dict[str, Any],
) -> None:
    """After a kill (the checkpoint as last written), the changes fired after that write are
    fired again and counted as possible duplicates (gap record, totals, diagnostics); a change
    made long after the crash is recovered but not counted; a clean restart counts nothing."""
    import copy

    from custom_components.ha_ingestion.capture.checkpoint import storage_key

    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: len(events) == 1)
    await capture.checkpoint.async_flush()  # the last throttled write before the kill
    key = storage_key(entry.entry_id)
    on_disk = copy.deepcopy(hass_storage[key])
    assert on_disk["data"]["clean"] is False
    assert on_disk["data"]["save_delay"] == 10.0
    await fake_ha.fire_state_changed("sensor.a", "2")  # fired after the last write
    await fake_ha.fire_state_changed("sensor.b", "x")
    await wait_for(lambda: len(events) == 3)
    await hass.config_entries.async_unload(entry.entry_id)
    hass_storage[key] = on_disk  # the kill: no final write
    late = datetime.now(UTC) + timedelta(seconds=600)  # far outside the window (10 s + 45 s)
    fake_ha.record_state("sensor.a", "late", late)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    capture = capture_of(entry)
    assert [
        (e["data"]["entity_id"], e["data"]["new_state"]["state"]) for e in backfilled(events)
    ] == [
        ("sensor.a", "2"),
        ("sensor.b", "x"),
        ("sensor.a", "late"),
    ]
    (gap,) = capture.state.gaps
    assert (gap.after_crash, gap.backfilled, gap.possible_duplicates) == (True, 3, 2)
    assert capture.state.possible_duplicates == 2
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["capture"]["possible_duplicates_after_crash"] == 2
    assert diagnostics["capture"]["gaps"][-1]["possible_duplicates"] == 2
    # Kept across a clean restart, which adds none.
    await hass.config_entries.async_unload(entry.entry_id)
    assert hass_storage[key]["data"]["totals"]["possible_duplicates"] == 2
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 2)
    assert capture_of(entry).state.possible_duplicates == 2
    assert capture_of(entry).state.gaps[-1].possible_duplicates == 0


async def test_crash_while_a_gap_was_open_counts_every_change_fired_for_it(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    hass_storage: dict[str, Any],
) -> None:
    """Killed while a gap was open (its backfill may have fired hours of history after the last
    write): no time bound is known, so every change fired for that gap may be a duplicate."""
    from custom_components.ha_ingestion.capture.checkpoint import storage_key

    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    first, second = inside(lost, 2)
    fake_ha.record_state("sensor.a", "2", first)
    fake_ha.record_state("sensor.a", "3", second + timedelta(seconds=600))
    await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[storage_key(entry.entry_id)]["data"]
    assert stored["gap"] is not None
    stored["clean"] = False  # as a kill during the outage leaves it
    fake_ha.refuse = False
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: len(capture_of(entry).state.gaps) == 1)
    (gap,) = capture_of(entry).state.gaps
    assert changes_of(backfilled(events), "sensor.a") == [
        ("2", first.isoformat()),
        ("3", (second + timedelta(seconds=600)).isoformat()),
    ]
    assert (gap.after_crash, gap.possible_duplicates) == (True, 2)


async def test_a_span_captured_without_state_changed_is_not_owed_after_it_is_turned_on(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Event types without state_changed for a while (the switch means what it says): turned on
    again, the changes made meanwhile are not backfilled, not even those within the detection
    margin before the reload; those made while the link was reloading are. Found by
    `scripts/bench local_cost`, which fired 9,000 old changes after such a switch."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "1")  # measures the remote's clock
    await wait_for(lambda: len(events) == 1)
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_EVENT_TYPES: ["call_service"]}
    )
    assert await hass.config_entries.async_reload(entry.entry_id)  # as the options flow does
    assert not capture_of(entry).settings.captures_state_changes
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    off = datetime.now(UTC) - timedelta(seconds=1)  # within the detection margin
    fake_ha.record_state("sensor.b", "while off", off)
    await hass.config_entries.async_unload(entry.entry_id)
    reloading = datetime.now(UTC) + timedelta(milliseconds=1)
    fake_ha.record_state("sensor.b", "while reloading", reloading)
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_EVENT_TYPES: ["state_changed"]}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: bool(capture_of(entry).state.gaps) and not capture_of(entry).recovering)
    assert changes_of(backfilled(events), "sensor.b") == [
        ("while reloading", reloading.isoformat())
    ]


async def test_recorder_that_does_not_catch_up_keeps_the_gap_open(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backlog that never empties: the gap is not closed short; it is retried, then recorded
    unrecoverable with a repair (never silently lost)."""
    monkeypatch.setattr(recovery_module, "BACKLOG_POLLS", 3)
    fake_ha.recorder_backlog = 5000
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.a", "2", moment)
    await restore_link(fake_ha, entry, gaps=1)
    capture = capture_of(entry)
    (gap,) = capture.state.gaps
    assert "backlog" in (gap.backfill_error or "")
    assert gap.unrecoverable
    assert capture.recovery.recorder_backlog_max == 5000
    # Per try: one look when the link is back, then the first poll, then BACKLOG_POLLS more.
    assert fake_ha.recorder_info_requests == (1 + 1 + 3) * recovery_module.MAX_PASS_FAILURES
    assert changes_of(backfilled(events), "sensor.a") == [("2", moment.isoformat())]


async def test_a_backlog_that_gets_shorter_is_waited_for_however_long(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a big outage a busy remote's recorder may take minutes to work through its queue:
    while the queue gets shorter it is no failure (more polls than BACKLOG_POLLS, one stall
    among them), and the gap closes complete, without a retry."""
    monkeypatch.setattr(recovery_module, "BACKLOG_POLLS", 3)
    backlogs = [900, 800, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    backlogs_asked = list(backlogs)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: len(events) == 1)
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.a", "2", moment)
    fake_ha.recorder_backlogs = backlogs
    await restore_link(fake_ha, entry, gaps=1)
    (gap,) = capture_of(entry).state.gaps
    assert (gap.backfill_error, gap.unrecoverable) == (None, ())
    assert fake_ha.recorder_info_requests == len(backlogs_asked)  # one try: no retry
    assert backlogs == []
    assert capture_of(entry).recovery.recorder_backlog_max == 900
    assert changes_of(backfilled(events), "sensor.a") == [("2", moment.isoformat())]


async def test_recorder_behind_at_the_reconnect_waits_one_more_commit_interval(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The remote's recorder was still working through a backlog when the link came back: an
    empty queue later is not enough (what it took last is not written yet); one more commit
    interval is waited before the last read."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)
        fake_ha.recorder_backlog = 0  # emptied during the commit wait...
        if len(sleeps) == 2:
            fake_ha.commit()  # ...and written only an interval later

    capture.recovery._sleep = fake_sleep
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 3600.0)
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.slow", "late", moment, committed=False)
    fake_ha.recorder_backlog = 40
    await restore_link(fake_ha, entry, gaps=1)
    assert changes_of(backfilled(events), "sensor.slow") == [("late", moment.isoformat())]
    assert len(sleeps) == 2
    assert sleeps[1] == 3600.0
    assert capture.recovery.recorder_backlog_max == 40


async def test_gap_closes_only_once_history_shows_a_change_sent_after_the_reconnect(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy remote whose recorder is slow: a live change arrived after the reconnect, but its
    history does not show it yet. The gap stays open until it does (then every earlier change is
    written too), and the changes made just before the reconnect are recovered."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    await fake_ha.fire_state_changed("sensor.busy", "0")
    await wait_for(lambda: len(events) == 1)
    polls: list[float] = []
    live_seen = asyncio.Event()

    async def slow_recorder(delay: float) -> None:
        polls.append(delay)
        if len(polls) == 1:  # the commit wait: the live change arrives meanwhile
            await live_seen.wait()
        if len(polls) == 4:
            fake_ha.commit()

    capture.recovery._sleep = slow_recorder
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 3600.0)
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.busy", "just before", moment, committed=False)
    fake_ha.refuse = False
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await fake_ha.fire_state_changed("sensor.busy", "after", committed=False)
    await wait_for(lambda: bool(capture.state.after_connect))
    live_seen.set()
    # The held live change is fired by the drain task after the gap closes, not by the close.
    await wait_for(lambda: len(capture.state.gaps) == 1 and len(events) == 3)
    assert capture.recovery.sentinel_polls == 4  # three misses, then the row is there
    states = [(e.data["data"]["new_state"]["state"], e.data["backfilled"]) for e in events]
    assert states == [("0", False), ("just before", True), ("after", False)]


async def test_an_attribute_only_change_after_the_reconnect_proves_the_commit_too(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first live change after the reconnect only touches attributes (an automation's
    `current` and `last_triggered`, every few seconds on a real remote). The remote's history
    shows it, but only when asked with attributes: asked without, it answers {} at once (its
    state machine says the state has not changed since). Found by the demo: its gaps were never
    closed and ended as "could not all be recovered"."""
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    capture = capture_of(entry)
    await fake_ha.fire_state_changed("automation.tick", "on", {"current": 0})
    await wait_for(lambda: len(events) == 1)
    live_seen = asyncio.Event()

    async def commit_wait(_delay: float) -> None:  # the live change arrives meanwhile
        await live_seen.wait()

    capture.recovery._sleep = commit_wait
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 3600.0)  # it is slept, never waited
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.level", "7", moment)
    fake_ha.refuse = False
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await fake_ha.fire_state_changed("automation.tick", "on", {"current": 1})
    await wait_for(lambda: bool(capture.state.after_connect))
    live_seen.set()
    await wait_for(lambda: len(capture.state.gaps) == 1)
    assert capture.state.gaps[-1].backfill_error is None
    assert capture.state.gaps[-1].unrecoverable == ()
    assert capture.recovery.sentinel_polls == 1
    assert changes_of(backfilled(events), "sensor.level") == [("7", moment.isoformat())]


async def test_second_read_covers_what_an_early_request_of_the_first_missed(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first read's requests see the history at different moments: the recorder commits
    between two of them, so a later request shows a newer change than an earlier one could.
    The second read must still cover the earlier request's entities from the gap start."""
    monkeypatch.setattr(backfill_module, "CHUNK", 1)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    lost = await drop_link(fake_ha, entry)
    (moment,) = inside(lost, 1)
    fake_ha.record_state("sensor.a", "older", lost - timedelta(seconds=3), committed=False)
    fake_ha.record_state("sensor.b", "newer", moment, committed=False)
    asked: list[str] = []

    async def commit_between(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        asked.extend(msg["entity_ids"])
        if asked == ["sensor.a", "sensor.b"]:
            fake_ha.commit()  # after sensor.a was read, before sensor.b is
        await answer_history(conn, msg_id, msg)

    patch_history(monkeypatch, commit_between)
    await restore_link(fake_ha, entry, gaps=1)
    fired = backfilled(events)
    assert changes_of(fired, "sensor.a") == [("older", (lost - timedelta(seconds=3)).isoformat())]
    assert changes_of(fired, "sensor.b") == [("newer", moment.isoformat())]


# ---------------------------------------------------------------------------------- mirrors


def local_mirror(entry: MockConfigEntry, remote_id: str) -> str | None:
    """The local entity id of a remote entity's mirror (None: not mirrored)."""
    local: str | None = entry.runtime_data.mirror.local_entity_id(remote_id)
    return local


async def test_mirrored_entities_without_a_registry_entry_are_recovered(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """Issue 25's defect: remote entities with no registry entry there (YAML/template entities
    without a unique id, states set by scripts) that did not change while linked are mirrored,
    so their changes in a gap are recovered too; an entity neither mirrored, registered nor seen
    is not asked for."""
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    yaml_ids = [f"sensor.yaml_{n}" for n in range(3)]
    for entity_id in yaml_ids:
        fake_ha.record_state(entity_id, "0", long_ago, registered=False)
    # input_boolean is not a mirrored domain: neither held here, nor registered there, nor seen.
    fake_ha.record_state("input_boolean.yaml", "off", long_ago, registered=False)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_MIRROR_ENTITIES: True})
    await wait_for(lambda: all(local_mirror(entry, e) is not None for e in yaml_ids))
    assert capture_of(entry).state.seen == {}  # none of them changed while linked

    lost = await drop_link(fake_ha, entry)
    times = inside(lost, 4)
    for n, entity_id in enumerate(yaml_ids):
        fake_ha.record_state(entity_id, f"{n + 1}", times[n], registered=False)
    fake_ha.record_state("input_boolean.yaml", "on", times[3], registered=False)
    await restore_link(fake_ha, entry, gaps=1)

    fired = backfilled(events)
    for n, entity_id in enumerate(yaml_ids):
        assert changes_of(fired, entity_id) == [(f"{n + 1}", times[n].isoformat())]
    assert changes_of(fired, "input_boolean.yaml") == []
    asked = {e for request in history_requests(fake_ha) for e in request["entity_ids"]}
    assert set(yaml_ids) <= asked
    assert "input_boolean.yaml" not in asked


async def test_mirrors_known_only_locally_are_recovered_after_a_restart(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """After a restart with the remote down, the mirrors exist from the local registry only (no
    state told yet): they are in the gap's entity list, registry entry on the remote or not."""
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    fake_ha.record_state("sensor.script_set", "0", long_ago, registered=False)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_MIRROR_ENTITIES: True})
    await wait_for(lambda: local_mirror(entry, "sensor.script_set") is not None)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    stopped = datetime.now(UTC)
    await wait_for(lambda: datetime.now(UTC) - stopped > timedelta(milliseconds=2))
    times = inside(stopped, 3)
    for n, moment in enumerate(times):
        fake_ha.record_state("sensor.script_set", f"v{n}", moment, registered=False)
    fake_ha.refuse = True
    await fake_ha.close_all()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert link_state(entry) is not LinkState.CONNECTED
    assert "sensor.script_set" in entry.runtime_data.mirror.held_remote_ids()
    fake_ha.refuse = False
    await wait_for(lambda: len(capture_of(entry).state.gaps) >= 1)
    assert changes_of(backfilled(events), "sensor.script_set") == [
        (f"v{n}", moment.isoformat()) for n, moment in enumerate(times)
    ]
