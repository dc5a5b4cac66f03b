"""Diagnostics download: configuration, engine snapshot, errors, capture; nothing private.

Diagnostics files get pasted into public issues. So no event payload is included (per event type
only its count, the time and size of the last one), every key that can hold a secret, a position
or a code is redacted at any depth, and the remote's addresses are removed from every string.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
import re
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL, __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
import orjson
import yarl

from .client import sanitize
from .const import CONF_DISCOVERY_URL, CONF_REJECTED_TOKEN, CONF_REMOTE_USER_ID, DOMAIN
from .data import HaIngestionConfigEntry

TO_REDACT = {
    # credentials and identities
    CONF_ACCESS_TOKEN,
    "token",
    "refresh_token",
    "api_key",
    "password",
    "username",
    "user_id",
    CONF_REMOTE_USER_ID,
    CONF_REJECTED_TOKEN,  # a fingerprint, not the token: still nobody else's business
    # codes (alarm panels, locks, keypads)
    "code",
    "code_format",
    "pin",
    "passcode",
    # positions
    "latitude",
    "longitude",
    "elevation",
    "altitude",
    "gps",
    "gps_accuracy",
    "location",
    "coordinates",
    # the remote's addresses
    "internal_url",
    "external_url",
    "base_url",
    CONF_DISCOVERY_URL,
    "ip",
    "ip_address",
    "host",
    "mac",
}


def _hosts(urls: Iterable[str | None]) -> set[str]:
    return {host for url in urls if url and (host := yarl.URL(url).host)}


def _host_pattern(hosts: set[str]) -> re.Pattern[str] | None:
    """Whole host names only: a short name such as `ha` must not eat `ha_ingestion`."""
    if not hosts:
        return None
    names = "|".join(re.escape(host) for host in sorted(hosts, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{names})(?![\w-])", re.IGNORECASE)


def _scrub(value: Any, pattern: re.Pattern[str] | None) -> Any:
    """Remove the remote's host names and addresses from every string, at any depth."""
    if pattern is None:
        return value
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {key: _scrub(item, pattern) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, pattern) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub(item, pattern) for item in value)
    return value


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HaIngestionConfigEntry
) -> dict[str, Any]:
    """Everything needed to understand a link's health, without its secrets."""
    coordinator = entry.runtime_data.coordinator
    capture = entry.runtime_data.capture
    engine = entry.runtime_data.engine
    config = engine.config
    integration = await async_get_integration(hass, DOMAIN)
    snapshot = asdict(engine.snapshot())
    remote = snapshot.get("remote") or {}
    hosts = _hosts(
        (
            entry.data.get(CONF_URL),
            entry.data.get(CONF_DISCOVERY_URL),
            config.connection.url,
            remote.get("internal_url"),
            remote.get("external_url"),
        )
    )
    data = dict(entry.data)
    data[CONF_URL] = sanitize(data[CONF_URL])
    connection = asdict(config.connection)
    connection["url"] = sanitize(connection["url"])
    del connection["token_gate"]  # the rejection shows in the snapshot's errors and the entry
    counts: dict[str, int] = snapshot["events_by_type"]
    event_types = {
        event_type: {
            "count": counts.get(event_type, 0),
            "last_time_fired": capture.live.last_by_type.get(event_type, {}).get("time_fired"),
            "last_size_bytes": (
                len(orjson.dumps(event))
                if (event := capture.live.last_by_type.get(event_type))
                else None
            ),
        }
        for event_type in sorted(set(counts) | set(capture.live.last_by_type))
    }
    diagnostics = {
        "versions": {
            "integration": str(integration.version),
            "home_assistant": ha_version,
        },
        "entry": {
            "title": entry.title,
            "data": data,
            "options": dict(entry.options),
        },
        "config": {
            "connection": connection,
            "backoff": asdict(config.backoff),
            "breaker": asdict(config.breaker),
            "max_attempts": config.max_attempts,
            "stability_window": config.stability_window,
        },
        "snapshot": snapshot,
        "event_rate_per_minute": coordinator.data.event_rate,
        "capture": {
            "forward_events": capture.settings.forward,
            "backfill": capture.settings.backfill_enabled,
            "forwarded": capture.live.forwarded,
            # A link both ways: events that would come back (our own, the remote's mirrors').
            "echo_skipped": capture.live.echo_skipped,
            "backfilled": capture.state.backfilled,
            # Of those, fired again after a crash and possibly already fired before it.
            "possible_duplicates_after_crash": capture.state.possible_duplicates,
            "queue_length": len(capture.live.queue),
            "queue_size": capture.live.queue_size,
            "overflow": capture.state.overflow,
            "event_types": event_types,
            "gaps": [gap.as_dict() for gap in capture.state.gaps],
        },
        "mirror": entry.runtime_data.mirror.as_dict(),
    }
    return _scrub(async_redact_data(diagnostics, TO_REDACT), _host_pattern(hosts))  # type: ignore[no-any-return]
