"""GET /api/ha_ingestion/health."""

from __future__ import annotations

from http import HTTPStatus

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import HEALTH_VIEW_URL

from .conftest import link_state, wait_for
from .fake_ha import FakeHA


async def test_health_view(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    fake_ha: FakeHA,
    hass_client: ClientSessionGenerator,
) -> None:
    client = await hass_client()
    response = await client.get(HEALTH_VIEW_URL)
    assert response.status == HTTPStatus.OK
    body = await response.json()
    assert body["healthy"] is True
    (link,) = body["entries"]
    assert link["entry_id"] == init_integration.entry_id
    assert link["connected"] is True
    assert link["state"] == "connected"
    assert link["subscription_restored"] is True
    assert link["breaker_state"] == "closed"
    assert link["max_attempts"] == 0
    assert link["last_reconnect"] is not None

    await fake_ha.go_down()
    await wait_for(lambda: link_state(init_integration) is not LinkState.CONNECTED)
    response = await client.get(HEALTH_VIEW_URL, params={"entry_id": init_integration.entry_id})
    assert response.status == HTTPStatus.SERVICE_UNAVAILABLE
    body = await response.json()
    assert body["entries"][0]["connected"] is False

    response = await client.get(HEALTH_VIEW_URL, params={"entry_id": "nope"})
    assert response.status == HTTPStatus.NOT_FOUND


async def test_health_view_requires_auth(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client_no_auth()
    response = await client.get(HEALTH_VIEW_URL)
    assert response.status == HTTPStatus.UNAUTHORIZED


async def test_health_view_reports_an_entry_that_is_not_loaded(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    client = await hass_client()
    response = await client.get(HEALTH_VIEW_URL)
    assert response.status == HTTPStatus.SERVICE_UNAVAILABLE
    body = await response.json()
    assert body["entries"][0]["state"] == "entry_not_loaded"
