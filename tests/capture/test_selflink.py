"""Self-link detection and the registry-following set of this integration's entities."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.ha_ingestion.capture.selflink import OwnEntities, remote_is_this_instance
from custom_components.ha_ingestion.const import DOMAIN


async def test_token_issued_here_means_this_instance(hass: HomeAssistant) -> None:
    """Only a token signed by this instance's auth counts; revoked or foreign ones do not."""
    user = await hass.auth.async_create_user("Linker")
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name="link", token_type="long_lived_access_token"
    )
    token = hass.auth.async_create_access_token(refresh)
    assert remote_is_this_instance(hass, token)
    assert not remote_is_this_instance(hass, "good-token")
    # A well-formed JWT signed elsewhere (same claims, another key) is not ours.
    header, claims, _signature = token.split(".")
    assert not remote_is_this_instance(hass, f"{header}.{claims}.c2lnbmVkZWxzZXdoZXJl")
    hass.auth.async_remove_refresh_token(refresh)
    assert not remote_is_this_instance(hass, token)


async def test_own_entities_follow_the_registry(hass: HomeAssistant) -> None:
    """Entities of this integration are tracked as they are added and removed."""
    registry = er.async_get(hass)
    registry.async_get_or_create("sensor", "other", "x1")
    own = OwnEntities(hass)
    own.async_start()
    assert own.entity_ids == set()
    entry = registry.async_get_or_create("sensor", DOMAIN, "u1", suggested_object_id="link_events")
    await hass.async_block_till_done()
    assert own.entity_ids == {entry.entity_id}
    registry.async_remove(entry.entity_id)
    await hass.async_block_till_done()
    assert own.entity_ids == set()
    own.async_stop()
    own.async_stop()  # idempotent
    registry.async_get_or_create("sensor", DOMAIN, "u2")
    await hass.async_block_till_done()
    assert own.entity_ids == set()  # no longer following
