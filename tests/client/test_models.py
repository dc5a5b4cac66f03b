"""Model validation and derived values."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.ha_ingestion.client import (
    BackoffConfig,
    BreakerConfig,
    BreakerSnapshot,
    BreakerState,
    ConnectionConfig,
    EngineConfig,
    LinkSnapshot,
    LinkState,
    Outage,
    RemoteInfo,
    SubscriptionStatus,
)

URL = "ws://127.0.0.1:8123/api/websocket"


def test_connection_defaults() -> None:
    cfg = ConnectionConfig(url=URL, token="s3cret-t0ken")
    assert cfg.event_types == ("state_changed",)
    assert cfg.verify_ssl is True
    assert "s3cret-t0ken" not in repr(cfg)
    assert "token" not in repr(cfg)
    with pytest.raises(FrozenInstanceError):
        cfg.url = "ws://x"  # type: ignore[misc]


def test_wss_accepted() -> None:
    assert ConnectionConfig(url="wss://example.org/api/websocket", token="t").url.startswith("wss")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "http://127.0.0.1:8123/api/websocket"}, "url"),
        ({"url": "127.0.0.1:8123"}, "url"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"command_timeout": -1}, "command_timeout"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_timeout": float("nan")}, "heartbeat_timeout"),
        ({"max_msg_size": 0}, "max_msg_size"),
        ({"event_types": ()}, "event_types"),
        ({"event_types": ("state_changed", "")}, "event_types"),
    ],
)
def test_connection_rejects(kwargs: dict[str, Any], match: str) -> None:
    values: dict[str, Any] = {"url": URL, "token": "t"} | kwargs
    with pytest.raises(ValueError, match=match):
        ConnectionConfig(**values)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base": 0}, "base"),
        ({"max_delay": 0}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"base": 10, "max_delay": 5}, "base must not exceed"),
    ],
)
def test_backoff_rejects(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BackoffConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"recovery_timeout": 0}, "recovery_timeout"),
        ({"recovery_timeout": -5}, "recovery_timeout"),
    ],
)
def test_breaker_rejects(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BreakerConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_attempts": -1}, "max_attempts"),
        ({"stability_window": -0.1}, "stability_window"),
        ({"error_history_size": 0}, "error_history_size"),
    ],
)
def test_engine_rejects(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EngineConfig(connection=ConnectionConfig(url=URL, token="t"), **kwargs)


def test_engine_defaults() -> None:
    cfg = EngineConfig(connection=ConnectionConfig(url=URL, token="t"), stability_window=0)
    assert cfg.max_attempts == 0
    assert cfg.backoff == BackoffConfig()
    assert cfg.breaker == BreakerConfig()


def test_remote_info_from_messages() -> None:
    info = RemoteInfo.from_messages(
        {
            "location_name": "Cabin",
            "version": "2025.4.4",
            "time_zone": "Europe/Oslo",
            "external_url": "https://cabin.example",
            "internal_url": None,
        },
        {"id": "u1", "name": "x"},
    )
    assert info == RemoteInfo(
        location_name="Cabin",
        version="2025.4.4",
        user_id="u1",
        time_zone="Europe/Oslo",
        external_url="https://cabin.example",
        internal_url=None,
    )


def test_remote_info_fallbacks() -> None:
    info = RemoteInfo.from_messages({}, None)
    assert info.location_name == "Home Assistant"
    assert info.version == "unknown"
    assert info.user_id is None
    assert RemoteInfo.from_messages({"location_name": ""}, {"id": ""}).user_id is None


def _snapshot(state: LinkState, subscriptions: tuple[SubscriptionStatus, ...]) -> LinkSnapshot:
    return LinkSnapshot(
        state=state,
        breaker=BreakerSnapshot(
            state=BreakerState.CLOSED,
            consecutive_failures=0,
            failure_threshold=5,
            recovery_timeout=60.0,
            opened_at=None,
            retry_at=None,
            times_opened=0,
        ),
        attempts_total=1,
        successful_connections=1,
        failed_connections=0,
        consecutive_failures=0,
        reconnect_count=0,
        current_backoff=None,
        next_attempt=None,
        last_connected=datetime.now(UTC),
        last_disconnected=None,
        last_failed=None,
        uptime_ratio=1.0,
        average_reconnect_time=None,
        reconnect_success_rate=1.0,
        last_ping_rtt=None,
        events_received=0,
        events_by_type={},
        last_event_time=None,
        remote=None,
        subscriptions=subscriptions,
        last_error=None,
        errors=(),
        max_attempts=0,
    )


def test_snapshot_properties() -> None:
    confirmed = SubscriptionStatus(event_type="a", confirmed=True, subscription_id=4)
    pending = SubscriptionStatus(event_type="b", confirmed=False)
    assert _snapshot(LinkState.CONNECTED, (confirmed,)).connected
    assert _snapshot(LinkState.CONNECTED, (confirmed,)).subscriptions_confirmed
    assert not _snapshot(LinkState.CONNECTED, (confirmed, pending)).subscriptions_confirmed
    assert not _snapshot(LinkState.CONNECTED, ()).subscriptions_confirmed
    assert not _snapshot(LinkState.RECONNECTING, (confirmed,)).connected


def test_outage_figures_are_rounded_once_and_described_with_them() -> None:
    """The sensor's numbers and the log's are the same digits; never negative."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    outage = Outage(
        last_seen=t0,
        detected=t0 + timedelta(seconds=40.04),
        back=t0 + timedelta(seconds=70.06),
        recovered=t0 + timedelta(seconds=77.4),
    )
    assert (outage.length, outage.detection, outage.recovery) == (70.1, 40.0, 7.3)
    assert outage.figures() == {
        "start": "2026-01-01T00:00:00.000+00:00",
        "end": "2026-01-01T00:01:10.060+00:00",
        "detection": 40.0,
        "recovery": 7.3,
    }
    assert outage.describe() == (
        "outage 70.1 s (from the last message received at 2026-01-01T00:00:00.000+00:00 to "
        "the link's return at 2026-01-01T00:01:10.060+00:00), detection 40.0 s, recovery 7.3 s"
    )
    pending = Outage(last_seen=t0, detected=t0 - timedelta(seconds=1), back=t0)
    assert (pending.length, pending.detection, pending.recovery) == (0.0, 0.0, None)
    assert pending.describe().endswith("detection 0.0 s")
