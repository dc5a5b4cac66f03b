"""The read-only mirrored domains: every entity service of each refuses a mirror cleanly.

The native domains (a mirror of the domain's entity class, control forwarded) are checked service
by service in tests/mirror/test_native.py. A read-only mirror is a plain `Entity` (no typed properties, `supported_features` None). Home Assistant's
`entity_service_call` raises `ServiceNotSupported` for such an entity before calling anything when
the service is gated by `required_features`; a service that calls an entity method by name reaches
`MirrorEntity.async_refuse` (the translated read-only error) when `ReadOnlyMirror` defines that name
as it. Anything else (a handler function that reads typed properties) would raise AttributeError
on a mirror: such a domain must not be mirrored. Introspected on the release under test, so a new
or changed service on a new release fails here first.
"""

from __future__ import annotations

import functools
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import service as service_helper
from homeassistant.helpers.entity import Entity
from homeassistant.setup import async_setup_component
import pytest

from custom_components.ha_ingestion.client import RemoteState
from custom_components.ha_ingestion.mirror import MIRROR_DOMAINS
from custom_components.ha_ingestion.mirror.entity import MirrorEntity, ReadOnlyMirror
from tests.mirror.test_native import NATIVE

# Services of a mirrored domain that are no entity services (they never call an entity of the
# domain's component), each with what it does instead; any other is checked as an entity service.
NOT_ENTITY_SERVICES: dict[tuple[str, str], str] = {
    # The `homeassistant` scene platform's own: apply and create take entity states, delete
    # looks only in that platform's entities (a mirror: "not a scene created by scene.create").
    ("scene", "apply"): "applies the given states through their domains' services",
    ("scene", "create"): "creates a scene of the homeassistant platform",
    ("scene", "delete"): "removes a scene of the homeassistant platform only",
    ("scene", "reload"): "reloads the homeassistant platform's scenes",
    ("notify", "persistent_notification"): "creates a persistent notification",
}

_ENTITY_SERVICE_CALLS = tuple(
    getattr(service_helper, name)
    for name in ("entity_service_call", "batched_entity_service_call")
    if hasattr(service_helper, name)
)


def refused_by_name(method: str) -> bool:
    """`MirrorEntity` answers a call of `method` with its one read-only refusal."""
    return getattr(ReadOnlyMirror, method, None) is MirrorEntity.async_refuse


async def unrefused_services(hass: HomeAssistant, domain: str) -> dict[str, str]:
    """The domain's services that would reach a mirror unrefused: name -> what they call."""
    assert await async_setup_component(hass, domain, {})
    await hass.async_block_till_done()
    found: dict[str, str] = {}
    for name, service in hass.services.async_services_internal().get(domain, {}).items():
        if (domain, name) in NOT_ENTITY_SERVICES:
            continue
        target: Any = service.job.target
        if not isinstance(target, functools.partial) or target.func not in _ENTITY_SERVICE_CALLS:
            found[name] = f"not an entity service: {target!r}"
            continue
        if target.keywords.get("required_features") is not None:
            continue  # ServiceNotSupported: a mirror's supported_features is None
        func = target.args[2]  # (hass, entities, func): both helpers' positional order
        if isinstance(func, str):
            if not refused_by_name(func):
                found[name] = f"entity method {func}"
        else:
            found[name] = f"function {getattr(func, 'target', func)!r}"
    return found


READ_ONLY = [domain for domain in MIRROR_DOMAINS if domain not in NATIVE]


def test_every_mirrored_domain_is_native_or_read_only() -> None:
    """Native ones: every service forwards or is refused (tests/mirror/test_native.py)."""
    assert set(NATIVE) <= set(MIRROR_DOMAINS)
    assert READ_ONLY == ["air_quality", "binary_sensor", "event", "sensor"]


@pytest.mark.parametrize("domain", READ_ONLY)
async def test_every_service_of_a_read_only_domain_refuses_a_mirror(
    hass: HomeAssistant, domain: str
) -> None:
    assert await unrefused_services(hass, domain) == {}


def test_the_refusals_override_nothing_of_entity() -> None:
    names = [
        name for name, value in vars(ReadOnlyMirror).items() if value is MirrorEntity.async_refuse
    ]
    assert "async_turn_on" in names
    assert not [name for name in names if hasattr(Entity, name)]


def test_a_mirror_supports_no_feature_whatever_the_remote_shows() -> None:
    mirror = ReadOnlyMirror("entry", "sensor.power", "sensor.remote_power", "u_mirror:sensor.power")
    mirror.set_remote(
        RemoteState(
            state="1", attributes={"supported_features": 15}, last_changed=0, last_updated=0
        )
    )
    assert mirror.supported_features is None
    assert mirror.extra_state_attributes == {"supported_features": 15}
