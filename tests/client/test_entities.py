"""subscribe_entities: the filter sent, diffs applied, and the subscription through reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import aiohttp
import pytest

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    ConnectionConfig,
    EngineConfig,
    EntitiesUpdate,
    EntityFilter,
    EntityStates,
    LinkEngine,
    LinkState,
    compress_state,
    decode,
    entities,
    protocol,
)
from tests.fake_ha import FakeHA, _entity_filter

IDS = (
    "sensor.kitchen_power",
    "sensor.kitchen_temp",
    "sensor.hall_power",
    "light.kitchen",
    "light.hall",
    "switch.pump",
    "binary_sensor.door",
)


# ---------------------------------------------------------------------------- the filter


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ((), (), set(IDS)),
        (("sensor",), (), {"sensor.kitchen_power", "sensor.kitchen_temp", "sensor.hall_power"}),
        (
            ("sensor.*_power", "light.hall"),
            (),
            {"sensor.kitchen_power", "sensor.hall_power", "light.hall"},
        ),
        ((), ("sensor", "light.hall"), {"light.kitchen", "switch.pump", "binary_sensor.door"}),
        (
            ("sensor", "light"),
            ("sensor.kitchen_temp",),
            {"sensor.kitchen_power", "sensor.hall_power", "light.kitchen", "light.hall"},
        ),
        (("sensor.kitchen_temp", "light.hall"), ("sensor",), {"light.hall"}),
        (("*kitchen*",), ("light",), {"sensor.kitchen_power", "sensor.kitchen_temp"}),
        (("light", "switch.pump"), ("light.*",), {"switch.pump"}),
    ],
)
def test_exclude_wins_and_the_remote_is_asked_for_exactly_that(
    include: tuple[str, ...], exclude: tuple[str, ...], expected: set[str]
) -> None:
    flt = EntityFilter(include=include, exclude=exclude)
    assert {e for e in IDS if flt.matches(e)} == expected
    fields = flt.server_filter()
    assert fields is not None
    # Home Assistant's own filter rules (as the fake implements them) on what is sent.
    passes = _entity_filter(fields)
    sent = {e for e in IDS if passes(e)}
    if include == ("*kitchen*",):
        # The one documented exception: an include glob beats an exclude on the remote.
        assert sent == expected | {"light.kitchen"}
    else:
        assert sent == expected


def test_a_filter_nothing_can_pass_is_never_sent_as_the_empty_filter() -> None:
    # An empty include/exclude means "everything" to the remote.
    assert EntityFilter(include=("sensor.a",), exclude=("sensor",)).server_filter() is None
    assert EntityFilter(include=("light",), exclude=("light",)).server_filter() is None
    assert EntityFilter().server_filter() == {}


@pytest.mark.parametrize("pattern", ["Sensor", "sensor.a b", "", "a.b.c", "sensor.ä"])
def test_what_is_no_pattern_is_rejected(pattern: str) -> None:
    with pytest.raises(ValueError, match="not a domain"):
        EntityFilter(include=(pattern,))


# ---------------------------------------------------------------------------- diffs


def test_additions_changes_and_removals_apply_to_complete_states() -> None:
    states = EntityStates()
    update, problems = states.apply(
        {"a": {"sensor.a": {"s": "1", "a": {"unit": "W", "x": 1}, "c": "CTX", "lc": 10.0}}}
    )
    assert problems == []
    assert update.initial
    assert update.changed == ("sensor.a",)
    first = update.states["sensor.a"]
    assert (first.state, first.last_changed, first.last_updated) == ("1", 10.0, 10.0)
    update, problems = states.apply(
        {"c": {"sensor.a": {"+": {"s": "2", "lc": 12.0, "a": {"y": 2}}, "-": {"a": ["x"]}}}}
    )
    assert not update.initial
    assert problems == []
    second = update.states["sensor.a"]
    assert second.state == "2"
    assert dict(second.attributes) == {"unit": "W", "y": 2}
    assert (second.last_changed, second.last_updated) == (12.0, 12.0)
    update, _ = states.apply({"c": {"sensor.a": {"+": {"lu": 13.5, "c": {"id": "X"}}}}})
    third = update.states["sensor.a"]
    assert (third.state, third.last_changed, third.last_updated) == ("2", 12.0, 13.5)
    update, _ = states.apply({"a": {"sensor.b": {"s": "on", "a": {}, "lc": 1.0, "lu": 2.0}}})
    assert update.states["sensor.b"].last_updated == 2.0
    update, _ = states.apply({"r": ["sensor.a"]})
    assert update.removed == ("sensor.a",)
    assert set(update.states) == {"sensor.b"}


@pytest.mark.parametrize(
    "message",
    [
        [1, 2],
        {"a": []},
        {"a": {"sensor.a": "on"}},
        {"a": {"sensor.a": {"s": 1, "a": {}, "lc": 1.0}}},
        {"a": {"sensor.a": {"s": "on", "a": {}, "lc": "yesterday"}}},
        {"c": {"sensor.unknown": {"+": {"s": "on"}}}},
        {"c": {"sensor.ok": "on"}},
        {"c": {"sensor.ok": {"+": []}}},
        {"c": {"sensor.ok": {"+": {"s": 5}}}},
        {"c": {"sensor.ok": {"+": {"lc": None}}}},
        {"r": [["sensor.ok"]]},
    ],
)
def test_a_bad_part_is_skipped_alone(message: Any) -> None:
    states = EntityStates()
    states.apply({"a": {"sensor.ok": {"s": "1", "a": {"k": 1}, "lc": 1.0}}})
    update, problems = states.apply(message)
    assert len(problems) == 1
    assert states.skipped == 1
    assert update.states["sensor.ok"].state == "1"
    assert dict(update.states["sensor.ok"].attributes) == {"k": 1}


def _added(count: int, state: str = "1") -> dict[str, Any]:
    return {f"sensor.s{n}": {"s": state, "a": {"n": n}, "lc": float(n)} for n in range(count)}


@pytest.mark.parametrize(
    ("added", "changed", "pauses"),
    [(0, 0, 0), (10, 0, 0), (11, 0, 1), (25, 0, 2), (20, 5, 2), (5, 16, 2)],
)
def test_a_big_message_is_applied_in_steps_to_the_same_states(
    monkeypatch: pytest.MonkeyPatch, added: int, changed: int, pauses: int
) -> None:
    """A pause after each STEP_ENTITIES entities (additions and changes); none in a small one."""
    monkeypatch.setattr(entities, "STEP_ENTITIES", 10)
    base = {"a": _added(max(added, changed))}
    message: dict[str, Any] = {"a": _added(added, "2")}
    message["c"] = {f"sensor.s{n}": {"+": {"s": "3", "lc": 99.0}} for n in range(changed)}
    at_once, stepped = EntityStates(), EntityStates()
    at_once.apply(base)
    stepped.apply(base)
    expected, _ = at_once.apply(message)
    steps = stepped.steps(message)
    done = 0
    while True:
        try:
            next(steps)
        except StopIteration as end:
            update, problems = end.value
            break
        done += 1
        assert stepped.messages == 1  # not counted (nor told) before the whole message is in
    assert done == pauses
    assert problems == []
    assert update.changed == expected.changed
    assert dict(update.states) == dict(expected.states)
    assert not update.initial


# ---------------------------------------------------------------------------- over the wire


async def _no_sleep(_delay: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def make(fake_ha: FakeHA) -> AsyncGenerator[Callable[..., LinkEngine]]:
    http = aiohttp.ClientSession()
    made: list[LinkEngine] = []

    def build(
        entities: EntityFilter | None = EntityFilter(),  # noqa: B008
        max_msg_size: int = 16 * 1024 * 1024,
    ) -> LinkEngine:
        config = EngineConfig(
            connection=ConnectionConfig(
                url=fake_ha.url, token="good-token", max_msg_size=max_msg_size
            ),
            backoff=BackoffConfig(base=1.0, max_delay=1.0, jitter=False),
            probe_interval=0.0,
            entities=entities,
        )
        engine = LinkEngine(http, config, sleep=_no_sleep)
        made.append(engine)
        return engine

    try:
        yield build
    finally:
        for engine in made:
            await engine.close()
        await http.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


async def test_states_follow_the_remote_through_a_reconnect(
    fake_ha: FakeHA, make: Callable[..., LinkEngine]
) -> None:
    await fake_ha.fire_state_changed("sensor.a", "1", {"unit_of_measurement": "W"})
    await fake_ha.fire_state_changed("sensor.secret", "x")
    sup = make(EntityFilter(exclude=("sensor.secret",)))
    updates: list[EntitiesUpdate] = []
    sup.add_entities_listener(updates.append)
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.CONNECTED and bool(updates))
    assert updates[0].initial
    assert set(updates[0].states) == {"sensor.a"}
    status = sup.snapshot().entities
    assert status is not None
    assert status.confirmed
    assert status.event_type == "subscribe_entities"
    conn = fake_ha.last_connection
    assert conn is not None
    assert conn.deflate  # permessage-deflate negotiated
    assert sup._session is not None
    assert sup._session.compression == 15
    request = next(c for c in conn.commands if c["type"] == "subscribe_entities")
    assert request["exclude"]["entities"] == ["sensor.secret"]

    await fake_ha.fire_state_changed("sensor.a", "2", {"unit_of_measurement": "W", "k": 1})
    await fake_ha.fire_state_changed("sensor.secret", "y")
    await wait_for(lambda: len(updates) == 2)
    assert updates[1].changed == ("sensor.a",)
    assert updates[1].states["sensor.a"].state == "2"
    assert dict(updates[1].states["sensor.a"].attributes) == {"unit_of_measurement": "W", "k": 1}
    # The excluded entity never crossed the wire.
    assert "sensor.secret" not in str(conn.entity_messages)

    await fake_ha.close_all(1011)
    await wait_for(lambda: sup.snapshot().entities is not None and not sup.snapshot().connected)
    await fake_ha.fire_state_changed("sensor.a", "3", {})  # while down
    await wait_for(lambda: sup.snapshot().successful_connections == 2 and len(updates) == 3)
    assert updates[2].initial  # a fresh subscription: every current state again
    assert updates[2].states["sensor.a"].state == "3"
    assert sup.snapshot().entities.confirmed  # type: ignore[union-attr]

    await fake_ha.remove_state("sensor.a")
    await wait_for(lambda: len(updates) == 4)
    assert updates[3].removed == ("sensor.a",)


async def test_a_remote_without_the_command_or_refusing_it_keeps_the_link(
    fake_ha: FakeHA, make: Callable[..., LinkEngine], caplog: pytest.LogCaptureFixture
) -> None:
    fake_ha.fail_subscriptions = {"subscribe_entities"}
    fake_ha.subscription_error = ("unknown_command", "Unknown command.")
    sup = make()
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.CONNECTED)
    status = sup.snapshot().entities
    assert status is not None
    assert not status.confirmed
    assert status.unsupported
    assert "lacks subscribe_entities" in caplog.text
    await fake_ha.fire_state_changed("sensor.a", "1")
    await wait_for(lambda: sup.snapshot().events_received == 1)  # events still flow

    fake_ha.subscription_error = ("unauthorized", "Unauthorized")
    await fake_ha.close_all(1011)
    await wait_for(lambda: sup.snapshot().successful_connections == 2)
    status = sup.snapshot().entities
    assert status is not None
    assert status.refused is not None
    assert not status.unsupported
    fake_ha.fail_subscriptions = set()
    await fake_ha.close_all(1011)
    await wait_for(lambda: sup.snapshot().successful_connections == 3)
    assert sup.snapshot().entities.confirmed  # type: ignore[union-attr]
    assert "accepts the entities subscription again" in caplog.text


async def test_nothing_to_match_asks_for_nothing(
    fake_ha: FakeHA, make: Callable[..., LinkEngine]
) -> None:
    sup = make(EntityFilter(include=("sensor.a",), exclude=("sensor",)))
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.CONNECTED)
    conn = fake_ha.last_connection
    assert conn is not None
    assert not any(c["type"] == "subscribe_entities" for c in conn.commands)
    status = sup.snapshot().entities
    assert status is not None
    assert status.refused == "nothing matches the include/exclude filter"


async def test_no_filter_no_subscription(fake_ha: FakeHA, make: Callable[..., LinkEngine]) -> None:
    sup = make(None)
    await sup.start()
    await wait_for(lambda: sup.state is LinkState.CONNECTED)
    assert sup.snapshot().entities is None
    conn = fake_ha.last_connection
    assert conn is not None
    assert not any(c["type"] == "subscribe_entities" for c in conn.commands)


async def test_malformed_messages_and_broken_listeners_never_end_the_link(
    fake_ha: FakeHA, make: Callable[..., LinkEngine]
) -> None:
    await fake_ha.fire_state_changed("sensor.a", "1")
    sup = make()
    updates: list[EntitiesUpdate] = []

    def broken(_update: EntitiesUpdate) -> None:
        raise RuntimeError("listener bug")

    sup.add_entities_listener(broken)
    remove = sup.add_entities_listener(updates.append)
    await sup.start()
    await wait_for(lambda: bool(updates))
    conn = fake_ha.last_connection
    assert conn is not None
    sub_id = next(iter(conn.entity_subs))
    for bad in ("on", {"a": []}, {"c": {"sensor.nope": {"+": {"s": "x"}}}}):
        await conn.send_json({"id": sub_id, "type": "event", "event": bad})
    await fake_ha.fire_state_changed("sensor.a", "2")
    await wait_for(lambda: len(updates) == 5)
    snap = sup.snapshot()
    assert snap.state is LinkState.CONNECTED
    assert snap.entity_problems == 3
    assert updates[-1].states["sensor.a"].state == "2"
    remove()


@pytest.mark.parametrize(
    ("step", "decode_in_steps_over", "loop_ran"),
    [(10, None, True), (None, 100, True), (None, None, False)],
    ids=["applied-in-steps", "decoded-in-steps", "small-at-once"],
)
async def test_a_big_message_lets_the_loop_run_and_messages_keep_their_order(
    fake_ha: FakeHA,
    make: Callable[..., LinkEngine],
    monkeypatch: pytest.MonkeyPatch,
    step: int | None,
    decode_in_steps_over: int | None,
    loop_ran: bool,
) -> None:
    """Between receiving a big frame and its update the loop runs; the next message waits."""
    if step is not None:
        monkeypatch.setattr(entities, "STEP_ENTITIES", step)
    if decode_in_steps_over is not None:
        monkeypatch.setattr(protocol, "DECODE_IN_STEPS_OVER", decode_in_steps_over)
        monkeypatch.setattr(decode, "STEP_CHARS", 64)
    sup = make()
    updates: list[EntitiesUpdate] = []
    sup.add_entities_listener(updates.append)
    await sup.start()
    await wait_for(lambda: bool(updates))  # the initial message (no states yet)
    loop = asyncio.get_running_loop()
    marks: list[str] = []
    loads, loads_in_steps = decode.loads, decode.loads_in_steps

    def marking_loads(raw: Any) -> Any:
        loop.call_soon(marks.append, "the loop ran")
        return loads(raw)

    def marking_loads_in_steps(raw: str) -> Generator[None, None, Any]:
        loop.call_soon(marks.append, "the loop ran")
        return loads_in_steps(raw)

    monkeypatch.setattr(decode, "loads", marking_loads)
    monkeypatch.setattr(decode, "loads_in_steps", marking_loads_in_steps)
    ran_before: list[bool] = []
    sup.add_entities_listener(lambda _update: ran_before.append(bool(marks)))
    conn = fake_ha.last_connection
    assert conn is not None
    sub_id = next(iter(conn.entity_subs))
    # One frame: 25 additions, then a change of the last one (applied before it = a problem).
    await conn.send_json(
        [
            {"id": sub_id, "type": "event", "event": {"a": _added(25)}},
            {"id": sub_id, "type": "event", "event": {"c": {"sensor.s24": {"+": {"s": "9"}}}}},
        ]
    )
    await wait_for(lambda: len(updates) == 3)
    assert ran_before[0] is loop_ran
    assert len(updates[1].changed) == 25
    assert updates[2].changed == ("sensor.s24",)
    assert updates[2].states["sensor.s24"].state == "9"
    assert sup.snapshot().entity_problems == 0


async def test_a_first_message_too_large_ends_one_connection_not_every_one(
    fake_ha: FakeHA, make: Callable[..., LinkEngine], caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(40):
        await fake_ha.fire_state_changed(f"sensor.s{n}", "1", {"blob": "x" * 200})
    sup = make(max_msg_size=4096)
    await sup.start()
    await wait_for(lambda: sup.snapshot().successful_connections == 2 and sup.snapshot().connected)
    status = sup.snapshot().entities
    assert status is not None
    assert status.refused is not None
    assert "exceed the message size limit (4096 bytes)" in status.refused
    assert "too large" in caplog.text
    conn = fake_ha.last_connection
    assert conn is not None
    assert not any(c["type"] == "subscribe_entities" for c in conn.commands)
    await fake_ha.fire_state_changed("sensor.s1", "2")
    await wait_for(lambda: sup.snapshot().events_received >= 1)  # the link itself goes on
    assert sup.snapshot().state is LinkState.CONNECTED


def test_full_states_are_compressed_for_remotes_without_subscribe_entities() -> None:
    state = {
        "entity_id": "sensor.a",
        "state": "1",
        "attributes": {"unit": "W"},
        "last_changed": "2026-01-01T00:00:00+00:00",
        "last_updated": "2026-01-01T00:00:01+00:00",
        "context": {"id": "X", "user_id": "secret"},
    }
    entity_id, compressed = compress_state(state)  # type: ignore[misc]
    assert entity_id == "sensor.a"
    assert compressed == {"s": "1", "a": {"unit": "W"}, "lc": 1767225600.0, "lu": 1767225601.0}
    for bad in (None, [], {**state, "last_changed": None}, {**state, "entity_id": 1}, {}):
        assert compress_state(bad) is None
