"""HTTP view GET /api/ha_ingestion/health: 200 when every link is connected, else 503."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import DOMAIN, HEALTH_VIEW_URL
from .data import HaIngestionConfigEntry


def entry_health(entry: HaIngestionConfigEntry) -> dict[str, Any]:
    """One link's health as JSON."""
    if entry.state is not ConfigEntryState.LOADED:
        return {
            "entry_id": entry.entry_id,
            "title": entry.title,
            "connected": False,
            "state": f"entry_{entry.state.value}",
        }
    snapshot = entry.runtime_data.coordinator.supervisor.snapshot()
    return {
        "entry_id": entry.entry_id,
        "title": entry.title,
        "connected": snapshot.connected,
        "state": snapshot.state.value,
        "reconnect_count": snapshot.reconnect_count,
        "last_reconnect": snapshot.last_connected.isoformat() if snapshot.last_connected else None,
        "max_attempts": snapshot.max_attempts,
        "consecutive_failures": snapshot.consecutive_failures,
        "current_backoff": snapshot.current_backoff,
        "subscription_restored": snapshot.connected and snapshot.subscriptions_confirmed,
        "breaker_state": snapshot.breaker.state.value,
    }


class HealthView(HomeAssistantView):
    """Health of every link (or of one: ?entry_id=...). Requires Home Assistant authentication."""

    url = HEALTH_VIEW_URL
    name = "api:ha_ingestion:health"
    requires_auth = True

    async def get(self, request: web.Request) -> web.Response:
        """Answer 200 when every link is connected, 503 otherwise."""
        hass = request.app[KEY_HASS]
        entries: list[HaIngestionConfigEntry] = hass.config_entries.async_entries(DOMAIN)
        if wanted := request.query.get("entry_id"):
            entries = [entry for entry in entries if entry.entry_id == wanted]
            if not entries:
                return self.json_message("Unknown entry_id", HTTPStatus.NOT_FOUND)
        links = [entry_health(entry) for entry in entries]
        healthy = all(link["connected"] for link in links)
        return self.json(
            {"healthy": healthy, "entries": links},
            HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE,
        )
