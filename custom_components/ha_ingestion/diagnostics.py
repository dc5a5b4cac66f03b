"""Diagnostics download: configuration (secrets redacted), engine snapshot, errors, capture."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL, __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

from .client import sanitize
from .const import DOMAIN
from .data import HaIngestionConfigEntry

TO_REDACT = {CONF_ACCESS_TOKEN, "token", "user_id"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HaIngestionConfigEntry
) -> dict[str, Any]:
    """Everything needed to understand a link's health, without its secrets."""
    coordinator = entry.runtime_data.coordinator
    capture = entry.runtime_data.capture
    supervisor = coordinator.supervisor
    config = supervisor.config
    integration = await async_get_integration(hass, DOMAIN)
    data = dict(entry.data)
    data[CONF_URL] = sanitize(data[CONF_URL])
    snapshot = asdict(supervisor.snapshot())
    connection = asdict(config.connection)
    connection["url"] = sanitize(connection["url"])
    return async_redact_data(
        {
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
                "forward_events": capture.forward,
                "backfill": capture.backfill_enabled,
                "forwarded": capture.forwarded,
                "backfilled": capture.backfilled,
                "queue_length": len(capture.queue),
                "queue_size": capture.queue_size,
                "overflow": capture.overflow,
                "events_by_type": snapshot["events_by_type"],
                "last_event_by_type": {
                    event_type: {
                        "time_fired": event.get("time_fired"),
                        "origin": event.get("origin"),
                        "data": event.get("data"),
                    }
                    for event_type, event in capture.last_by_type.items()
                },
                "gaps": [gap.as_dict() for gap in capture.gaps],
            },
        },
        TO_REDACT,
    )
