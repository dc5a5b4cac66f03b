"""HTTP view GET /api/ha_ingestion/health: 200 when every enabled link is connected, else 503.

Administrators get every link with its id and name. Other users (a read-only token for an uptime
monitor) get only the verdict and counts: which remotes this instance links to is not theirs to
list. Disabled entries were turned off on purpose and are left out; with no enabled link the answer
is 503 with a reason (nothing is being watched, which a monitor should not call healthy).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.exceptions import Unauthorized
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
    snapshot = entry.runtime_data.engine.snapshot()
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
    """Health of every enabled link (or of one: ?entry_id=..., administrators only)."""

    url = HEALTH_VIEW_URL
    name = "api:ha_ingestion:health"
    requires_auth = True

    async def get(self, request: web.Request) -> web.Response:
        """Answer 200 when every enabled link is connected, 503 otherwise."""
        hass = request.app[KEY_HASS]
        admin = request[KEY_HASS_USER].is_admin
        entries: list[HaIngestionConfigEntry] = [
            entry
            for entry in hass.config_entries.async_entries(DOMAIN)
            if entry.disabled_by is None
        ]
        if wanted := request.query.get("entry_id"):
            if not admin:
                raise Unauthorized
            entries = [entry for entry in entries if entry.entry_id == wanted]
            if not entries:
                return self.json_message("Unknown or disabled entry_id", HTTPStatus.NOT_FOUND)
        if not entries:
            return self.json(
                {"healthy": False, "reason": "no_links", "links": 0, "connected": 0},
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        links = [entry_health(entry) for entry in entries]
        connected = sum(1 for link in links if link["connected"])
        healthy = connected == len(links)
        body: dict[str, Any] = {"healthy": healthy, "links": len(links), "connected": connected}
        if admin:
            body["entries"] = links
        return self.json(body, HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE)
