"""Local event building and the rules for rejected remote input (pure functions)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from custom_components.ha_ingestion.capture.events import (
    ORIGIN,
    Rejected,
    SkipCounter,
    check_event,
    check_state_changed,
    iso_to_us,
    local_event,
    sanitize_data,
    ts_to_us,
    us_to_iso,
)

SUBSCRIBED = frozenset({"state_changed", "call_service"})
REMOTE_CONTEXT = {"id": "01REMOTE", "parent_id": None, "user_id": "remote-user"}


def test_context_removed_everywhere_it_is_carried() -> None:
    """data.context, new_state.context and old_state.context go; nothing else changes."""
    state = {"entity_id": "light.a", "state": "on", "attributes": {"context": "kept"}}
    data = {
        "entity_id": "light.a",
        "context": REMOTE_CONTEXT,
        "new_state": {**state, "context": REMOTE_CONTEXT},
        "old_state": {**state, "state": "off", "context": REMOTE_CONTEXT},
    }
    clean = sanitize_data(data)
    assert clean == {
        "entity_id": "light.a",
        "new_state": state,
        "old_state": {**state, "state": "off"},
    }
    assert "remote-user" not in repr(clean)
    assert data["new_state"]["context"] == REMOTE_CONTEXT  # the input is not modified
    # An attribute that happens to be called "context" is data, not the remote's context.
    assert clean["new_state"]["attributes"] == {"context": "kept"}
    assert sanitize_data({"old_state": None, "new_state": None}) == {
        "old_state": None,
        "new_state": None,
    }


@pytest.mark.parametrize("backfilled", [False, True])
def test_local_event_fields(backfilled: bool) -> None:
    """Exactly the documented fields; origin is the same for live and backfilled events."""
    event = local_event(
        entry_id="e1",
        remote_name="Remote",
        event_type="call_service",
        data={"domain": "light", "context": REMOTE_CONTEXT},
        time_fired="2026-01-01T00:00:00+00:00",
        backfilled=backfilled,
    )
    assert event == {
        "entry_id": "e1",
        "remote_name": "Remote",
        "event_type": "call_service",
        "data": {"domain": "light"},
        "time_fired": "2026-01-01T00:00:00+00:00",
        "origin": ORIGIN,
        "backfilled": backfilled,
    }
    assert ORIGIN == "REMOTE"
    odd = local_event(
        entry_id="e1",
        remote_name="R",
        event_type="x",
        data={},
        time_fired=12,
        backfilled=False,
    )
    assert odd["time_fired"] is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"data": {}}, "bad_event_type"),
        ({"event_type": ["state_changed"], "data": {}}, "bad_event_type"),  # unhashable
        ({"event_type": {"a": 1}, "data": {}}, "bad_event_type"),
        ({"event_type": "", "data": {}}, "bad_event_type"),
        ({"event_type": "not_subscribed", "data": {}}, "unexpected_event_type"),
        ({"event_type": "state_changed", "data": []}, "bad_data"),
        ({"event_type": "state_changed", "data": "text"}, "bad_data"),
        ({"event_type": "state_changed"}, "bad_data"),
    ],
)
def test_rejected_events(event: dict[str, Any], reason: str) -> None:
    """Every malformed event is rejected with its reason."""
    with pytest.raises(Rejected) as err:
        check_event(event, SUBSCRIBED)
    assert err.value.reason == reason


def test_match_all_accepts_any_type() -> None:
    """With `*` subscribed, any string type passes."""
    assert check_event({"event_type": "x", "data": {}}, frozenset({"*"})) == ("x", {})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "bad_entity_id"),
        ({"entity_id": ["light.a"]}, "bad_entity_id"),
        ({"entity_id": "nodot"}, "bad_entity_id"),
        ({"entity_id": "light.a", "new_state": "on"}, "bad_state"),
        ({"entity_id": "light.a", "new_state": None, "old_state": ["x"]}, "bad_state"),
        ({"entity_id": "light.a", "new_state": {"state": "on"}}, "bad_last_updated"),
        ({"entity_id": "light.a", "new_state": {"last_updated": 5}}, "bad_last_updated"),
        ({"entity_id": "light.a", "new_state": {"last_updated": "noon"}}, "bad_last_updated"),
    ],
)
def test_rejected_state_changes(data: dict[str, Any], reason: str) -> None:
    """Ill-typed state_changed fields are rejected, never raised as anything else."""
    with pytest.raises(Rejected) as err:
        check_state_changed(data)
    assert err.value.reason == reason


def test_valid_state_changes() -> None:
    """A change gives (entity_id, µs); a removal gives no time."""
    data = {"entity_id": "light.a", "new_state": {"last_updated": "1970-01-01T00:00:01+00:00"}}
    assert check_state_changed(data) == ("light.a", 1_000_000)
    assert check_state_changed({"entity_id": "light.a", "new_state": None}) == ("light.a", None)


def test_times_in_whole_microseconds() -> None:
    """ISO text and database floats meet as the same integer (sub-µs digits rounded)."""
    text = "2026-12-01T10:00:00.123456+00:00"
    us = iso_to_us(text)
    assert us is not None
    assert us_to_iso(us) == text
    assert ts_to_us(us / 1_000_000 + 2e-7) == us
    assert ts_to_us(us / 1_000_000 - 2e-7) == us
    assert iso_to_us("2026-12-01T10:00:00") == iso_to_us("2026-12-01T10:00:00+00:00")
    assert iso_to_us(None) is None
    assert iso_to_us("later") is None
    assert ts_to_us("1.0") is None
    assert ts_to_us(float("nan")) is None
    assert ts_to_us(1e20) is None
    assert ts_to_us(True) is None  # a bool is not a time


def test_skip_counter_rate_limits_its_log(caplog: pytest.LogCaptureFixture) -> None:
    """Counts everything, logs at most once per interval (injected clock)."""
    now = [0.0]
    counter = SkipCounter(logging.getLogger("test.skips"), "things", 60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.skips"):
        for _ in range(100):
            counter.skip("bad")
        now[0] = 61.0
        counter.skip("worse")
    assert counter.counts == {"bad": 100, "worse": 1}
    assert counter.total == 101
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "101 malformed things" in lines[1]
    assert "bad: 100, worse: 1" in lines[1]
