"""GET /api/ha_ingestion/health."""

from __future__ import annotations

from http import HTTPStatus

from homeassistant.config_entries import ConfigEntryDisabler
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import DOMAIN, HEALTH_VIEW_URL

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
    assert body["links"] == body["connected"] == 1
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


async def test_health_view_for_non_admins_has_no_ids_or_names(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_read_only_access_token: str,
) -> None:
    """A read-only token (an uptime monitor) gets the verdict, not the list of remotes."""
    client = await hass_client(hass_read_only_access_token)

    response = await client.get(HEALTH_VIEW_URL)
    assert response.status == HTTPStatus.OK
    body = await response.json()
    assert body == {"healthy": True, "links": 1, "connected": 1}
    text = await response.text()
    assert init_integration.entry_id not in text
    assert init_integration.title not in text

    response = await client.get(HEALTH_VIEW_URL, params={"entry_id": init_integration.entry_id})
    assert response.status == HTTPStatus.UNAUTHORIZED


async def test_health_view_leaves_out_disabled_entries(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """An entry disabled on purpose does not make the instance unhealthy forever."""
    disabled = MockConfigEntry(
        domain=DOMAIN,
        title="Switched off",
        unique_id="off",
        data={CONF_URL: "ws://192.0.2.1:8123/api/websocket", CONF_ACCESS_TOKEN: "t"},
        disabled_by=ConfigEntryDisabler.USER,
    )
    disabled.add_to_hass(hass)
    client = await hass_client()

    response = await client.get(HEALTH_VIEW_URL)
    assert response.status == HTTPStatus.OK
    body = await response.json()
    assert [link["entry_id"] for link in body["entries"]] == [init_integration.entry_id]

    response = await client.get(HEALTH_VIEW_URL, params={"entry_id": disabled.entry_id})
    assert response.status == HTTPStatus.NOT_FOUND


async def test_health_view_without_links_is_not_healthy(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """Nothing to watch is not "healthy": 503 with a reason."""
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client()

    response = await client.get(HEALTH_VIEW_URL)

    assert response.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert await response.json() == {
        "healthy": False,
        "reason": "no_links",
        "links": 0,
        "connected": 0,
    }
