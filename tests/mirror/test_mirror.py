"""Mirrored entities over real sockets: the fake remote's entities as local, registry-backed ones.

Every test runs the integration in the test `hass` against the in-process fake remote
(`tests/fake_ha.py`, which speaks `subscribe_entities` with Home Assistant's diff format and
filter rules). Every wait is bounded (`wait_for`); no test asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceNotSupported
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.ha_ingestion.capture import recovery as recovery_module
from custom_components.ha_ingestion.client import EntitiesUpdate, LinkState, RemoteState
from custom_components.ha_ingestion.compat import enabled_entities
from custom_components.ha_ingestion.const import (
    CONF_BACKFILL,
    CONF_CONTROL,
    CONF_FAILURE_THRESHOLD,
    CONF_FORWARD_STATE_CHANGES,
    CONF_MIRROR_ENTITIES,
    CONF_MIRROR_EXCLUDE,
    CONF_MIRROR_INCLUDE,
    CONF_MIRROR_PREFIX,
    DOMAIN,
    EVENT_INGESTED,
)
from custom_components.ha_ingestion.diagnostics import async_get_config_entry_diagnostics
from custom_components.ha_ingestion.mirror import (
    EntityMirror,
    choice as choice_module,
    local_entities as local_entities_module,
)
from custom_components.ha_ingestion.slices import SLICE_ITEMS
from tests import fake_ha as fake_module
from tests.capture.test_capture import (
    backfilled,
    changes_of,
    drop_link,
    inside,
    live,
    live_change_before_first_history,
    patch_history,
    restore_link,
)
from tests.conftest import SetUpEntry, entry_device, link_state, linked_entry, wait_for
from tests.fake_ha import FakeConnection, FakeHA

type SetupLink = Callable[..., Awaitable[MockConfigEntry]]

POWER = {
    "unit_of_measurement": "W",
    "device_class": "power",
    "state_class": "measurement",
    "friendly_name": "Heat pump power",
}


@pytest.fixture
def setup_link(fake_ha: FakeHA, set_up_entry: SetUpEntry) -> SetupLink:
    """The integration against the fake remote, mirroring (no backfill unless asked); unloaded
    afterwards."""

    async def _setup(*, connected: bool = True, **options: Any) -> MockConfigEntry:
        entry = linked_entry(
            fake_ha,
            **{
                CONF_FAILURE_THRESHOLD: 1000,
                CONF_BACKFILL: False,
                CONF_MIRROR_ENTITIES: True,
                **options,
            },
        )
        await set_up_entry(entry)
        if connected:
            await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
        return entry

    return _setup


def mirror_of(entry: MockConfigEntry) -> EntityMirror:
    mirror: EntityMirror = entry.runtime_data.mirror
    return mirror


async def remote_with_entities(fake_ha: FakeHA) -> None:
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "1200", POWER)
    await fake_ha.fire_state_changed("binary_sensor.door", "off", {"device_class": "door"})
    await fake_ha.fire_state_changed("switch.pump", "on", {"friendly_name": "Pump"})
    await fake_ha.fire_state_changed("input_boolean.kitchen", "on", {"brightness": 100})
    await fake_ha.fire_state_changed("sensor.secret", "42", {"friendly_name": "Secret"})


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return None if state is None else state.state


async def test_remote_entities_appear_under_their_own_domain(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(
        **{
            CONF_MIRROR_INCLUDE: ["sensor", "binary_sensor", "switch", "input_boolean"],
            CONF_MIRROR_EXCLUDE: ["sensor.secret"],
        }
    )
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    await hass.async_block_till_done()

    power = hass.states.get("sensor.remote_home_heat_pump_power")
    assert power is not None
    assert power.state == "1200"
    # As the remote has them (statistics compile from state_class here too); the friendly name is
    # the remote's, after the remote's device name.
    attributes = dict(power.attributes)
    assert attributes.pop("friendly_name") == f"{fake_ha.location_name} {POWER['friendly_name']}"
    assert attributes == {k: v for k, v in POWER.items() if k != "friendly_name"}
    door = dict(hass.states.get("binary_sensor.remote_home_door").attributes)  # type: ignore[union-attr]
    assert door.pop("friendly_name") == "Remote Home door"  # no name on the remote: its object id
    assert door == {"device_class": "door"}
    registry = er.async_get(hass)
    reg = registry.async_get("sensor.remote_home_heat_pump_power")
    assert reg is not None
    assert reg.unique_id == f"{entry.unique_id}_mirror:sensor.heat_pump_power"
    assert reg.platform == DOMAIN
    assert reg.device_id == entry_device(dr.async_get(hass), entry).id
    # Excluded: never sent by the remote, never here.
    conn = fake_ha.last_connection
    assert conn is not None
    request = next(c for c in conn.commands if c["type"] == "subscribe_entities")
    assert request["exclude"]["entities"] == ["sensor.secret"]
    assert "sensor.secret" not in str(conn.entity_messages)
    assert hass.states.get("sensor.remote_home_secret") is None
    # A domain this integration cannot hold (asked for by the include): a counted skip; its
    # changes stay events.
    mirror = mirror_of(entry)
    assert mirror.local.skip_counts == {"unsupported_domain": 1}
    assert hass.states.get("input_boolean.remote_home_kitchen") is None

    await fake_ha.fire_state_changed("sensor.heat_pump_power", "900", {**POWER, "extra": 1})
    await fake_ha.fire_state_changed("input_boolean.kitchen", "off", {})
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "900")
    await wait_for(lambda: len(events) == 1)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.remote_home_heat_pump_power").attributes["extra"] == 1  # type: ignore[union-attr]
    # Mirrored state changes are local states only, not also ha_ingestion_events.
    assert [e.data["data"]["entity_id"] for e in events] == ["input_boolean.kitchen"]
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["mirror"]["entities"] == 3
    assert diagnostics["mirror"]["available"] == 3
    assert diagnostics["mirror"]["skipped_entities"] == {
        "unsupported_domain": {"input_boolean.kitchen": ""}
    }
    assert diagnostics["snapshot"]["entities"]["confirmed"]


async def test_forwarding_state_changes_on_fires_them_too(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    events = async_capture_events(hass, EVENT_INGESTED)
    await setup_link(**{CONF_FORWARD_STATE_CHANGES: True})
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "1200")
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "5", POWER)
    await wait_for(lambda: len(events) == 1)
    assert state_of(hass, "sensor.remote_home_heat_pump_power") == "5"


async def test_a_lost_link_makes_them_unavailable_and_the_link_back_current(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "1200")
    # No include: only the domains mirrored here are asked for; the light never crosses the wire.
    conn = fake_ha.last_connection
    assert conn is not None
    request = next(c for c in conn.commands if c["type"] == "subscribe_entities")
    assert request["include"]["domains"] == sorted(choice_module.MIRROR_DOMAINS)
    assert "switch" in request["include"]["domains"]
    assert "input_boolean.kitchen" not in str(conn.entity_messages)
    assert mirror_of(entry).local.skip_counts == {}
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(
        lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == STATE_UNAVAILABLE
    )
    assert state_of(hass, "switch.remote_home_pump") == STATE_UNAVAILABLE
    assert er.async_get(hass).async_get("sensor.remote_home_heat_pump_power") is not None
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "700", POWER)  # while down
    fake_ha.refuse = False
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "700")
    assert state_of(hass, "switch.remote_home_pump") == "on"
    # The first message of the new subscription may come before the link reports connected.
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_removed_locally_only_when_the_remote_registry_confirms(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    registry = er.async_get(hass)
    # An integration reloading on the remote: the state goes, the registry entry stays there.
    await fake_ha.remove_state("switch.pump", from_registry=False)
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == STATE_UNAVAILABLE)
    await hass.async_block_till_done()
    assert registry.async_get("switch.remote_home_pump") is not None
    await fake_ha.fire_state_changed("switch.pump", "off", {})
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "off")
    # Deleted on the remote: gone here too.
    await fake_ha.remove_state("binary_sensor.door")
    await wait_for(lambda: registry.async_get("binary_sensor.remote_home_door") is None)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.remote_home_door") is None
    assert mirror_of(entry).local.removed == 1
    # Back later: a new mirror under the same entity id.
    await fake_ha.fire_state_changed("binary_sensor.door", "on", {})
    await wait_for(lambda: state_of(hass, "binary_sensor.remote_home_door") == "on")


async def many_mirrors(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, count: int
) -> tuple[MockConfigEntry, EntityMirror, list[str]]:
    """`count` remote sensors at "0", all mirrored and available, the mirror's worker idle."""
    ids = [f"sensor.s{n}" for n in range(count)]
    for remote_id in ids:
        await fake_ha.fire_state_changed(remote_id, "0", {})
    entry = await setup_link()
    mirror = mirror_of(entry)
    # The first message (itself big) fully applied: its worker may still pause after its last
    # slice with every mirror already available.
    await wait_for(
        lambda: (
            sum(e.available for e in mirror.local.entities.values()) == count
            and not mirror.updates._working
        )
    )
    await hass.async_block_till_done()
    return entry, mirror, ids


async def test_a_big_message_is_applied_in_slices_in_order_and_dropped_with_the_link(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """A message of many entities (a big remote's first one) is applied a slice at a time,
    other tasks running between; a message after it waits for it (order kept); the link lost
    meanwhile drops what still waits (stale), the mirrors go unavailable."""
    count = 3 * SLICE_ITEMS
    entry, mirror, ids = await many_mirrors(hass, fake_ha, setup_link, count)
    stamp = {"last_changed": 1.0, "last_updated": 1.0}

    def update(state: str, changed: list[str]) -> EntitiesUpdate:
        states = {r: RemoteState(state=state, attributes={}, **stamp) for r in ids}
        return EntitiesUpdate(initial=False, changed=tuple(changed), removed=(), states=states)

    def values() -> set[str | None]:
        return {state_of(hass, f"sensor.remote_home_s{n}") for n in range(count)}

    mirror._on_entities(update("1", ids))
    mirror._on_entities(update("2", ids[-1:]))  # small, but after the big one
    assert state_of(hass, "sensor.remote_home_s0") == "1"  # the first slice, at once
    assert state_of(hass, f"sensor.remote_home_s{count - 1}") == "0"  # not yet
    await asyncio.sleep(0)
    assert values() == {"0", "1"}  # one more slice: other tasks ran between
    await wait_for(lambda: not mirror.updates._working)
    assert state_of(hass, f"sensor.remote_home_s{count - 1}") == "2"
    assert values() == {"1", "2"}
    # Lost while a big message waits: nothing of it is applied after.
    mirror._on_entities(update("stale", ids))
    engine = entry.runtime_data.coordinator.engine
    mirror._on_snapshot(replace(engine.snapshot(), state=LinkState.RECONNECTING))
    await wait_for(lambda: not mirror.updates._working)
    await hass.async_block_till_done()
    assert values() == {STATE_UNAVAILABLE}
    assert link_state(entry) is LinkState.CONNECTED


async def test_many_mirrors_go_unavailable_in_slices_and_come_back_after(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """The link lost with many mirrors: they go unavailable a slice at a time (10,000 state
    writes at once block the loop for 290 ms), other tasks running between; the next
    subscription's first message, arriving meanwhile, is applied after them."""
    count = 3 * SLICE_ITEMS
    entry, mirror, ids = await many_mirrors(hass, fake_ha, setup_link, count)

    def values() -> set[str | None]:
        return {state_of(hass, f"sensor.remote_home_s{n}") for n in range(count)}

    snapshot = entry.runtime_data.coordinator.engine.snapshot()
    mirror._on_snapshot(replace(snapshot, state=LinkState.RECONNECTING))
    assert state_of(hass, "sensor.remote_home_s0") == STATE_UNAVAILABLE  # the first slice
    assert state_of(hass, f"sensor.remote_home_s{count - 1}") == "0"  # not yet
    await asyncio.sleep(0)
    assert values() == {"0", STATE_UNAVAILABLE}  # one more slice: other tasks ran between
    mirror._on_snapshot(snapshot)  # back, and its first message comes before the rest is done
    stamp = {"last_changed": 1.0, "last_updated": 1.0}
    states = {r: RemoteState(state="back", attributes={}, **stamp) for r in ids}
    mirror._on_entities(EntitiesUpdate(initial=True, changed=(), removed=(), states=states))
    await wait_for(lambda: not mirror.updates._working)
    await hass.async_block_till_done()
    assert values() == {"back"}


async def test_entity_states_refused_raise_a_repair_until_accepted(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """The remote refuses subscribe_entities (not unknown: no fallback): the link stays up, the
    mirrors unavailable, and a repair says why; accepted on a later connection, it goes."""
    issues = ir.async_get(hass)
    await fake_ha.fire_state_changed("sensor.power", "1", {})
    fake_ha.fail_subscriptions.add("subscribe_entities")
    fake_ha.subscription_error = ("unauthorized", "Unauthorized.")
    entry = await setup_link()
    issue_id = f"mirror_refused_{entry.entry_id}"
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert "Unauthorized" in issue.translation_placeholders["error"]
    assert link_state(entry) is LinkState.CONNECTED
    assert state_of(hass, "sensor.remote_home_power") is None
    fake_ha.fail_subscriptions.clear()
    await entry.runtime_data.coordinator.async_reconnect()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_power") == "1")
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is None)
    # Refused again, then the entry unloaded: no repair left behind.
    fake_ha.fail_subscriptions.add("subscribe_entities")
    await entry.runtime_data.coordinator.async_reconnect()
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    await hass.config_entries.async_unload(entry.entry_id)
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_the_entity_limit_is_a_counted_skip_logged_once(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Home Assistant refuses a config entry's entities beyond its limit (10,000 enabled from
    2026.x; lowered here): the mirrors beyond it are skipped before Home Assistant would refuse
    them, counted, logged once in all; a change of theirs is still forwarded as an event, and
    the mirrors already there go on."""
    monkeypatch.setattr(local_entities_module, "ENTITY_LIMIT", 0)
    registry = er.async_get(hass)
    for n in range(5):
        await fake_ha.fire_state_changed(f"sensor.s{n}", str(n), {})
    entry = await setup_link()
    own = enabled_entities(registry, entry.entry_id)  # this link's own, enabled by default
    await wait_for(lambda: mirror_of(entry).local.skip_counts.get("entity_limit") == 5)
    assert mirror_of(entry).local.entities == {}
    # Room for 3 (disabled mirrors, a higher limit): a skipped one comes with its next change.
    monkeypatch.setattr(local_entities_module, "ENTITY_LIMIT", own + 3)
    # (A new entity waits for the remote's registry to tell it is no mirror: it comes last.)
    for entity_id in ("sensor.s0", "sensor.s1", "sensor.new", "sensor.s2"):
        await fake_ha.fire_state_changed(entity_id, "changed", {})
    await wait_for(lambda: mirror_of(entry).local.skip_counts.get("entity_limit") == 6)
    assert set(mirror_of(entry).local.entities) == {"sensor.s0", "sensor.s1", "sensor.s2"}
    await hass.async_block_till_done()
    assert enabled_entities(registry, entry.entry_id) == own + 3
    assert state_of(hass, "sensor.remote_home_s2") == "changed"
    assert caplog.text.count("limit of") == 1
    assert "create a bug report" not in caplog.text  # Home Assistant never had to refuse one
    events = async_capture_events(hass, EVENT_INGESTED)
    await fake_ha.fire_state_changed("sensor.s3", "still forwarded", {})
    await wait_for(lambda: len(events) == 1)
    assert link_state(entry) is LinkState.CONNECTED


async def test_bad_input_is_a_counted_skip_never_an_overwrite(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, caplog: pytest.LogCaptureFixture
) -> None:
    hass.states.async_set("sensor.remote_home_taken", "local", {"mine": True})
    await fake_ha.fire_state_changed("sensor.taken", "remote", {})
    await fake_ha.fire_state_changed("sensor.huge", "1", {"blob": "x" * 20000})
    await fake_ha.fire_state_changed("sensor." + "a" * 250, "1", {})  # too long with the prefix
    await fake_ha.fire_state_changed("sensor.Bad", "1", {})  # not an entity id here
    await fake_ha.fire_state_changed("sensor.fine", "1", {})
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_fine") == "1")
    await fake_ha.fire_state_changed("sensor.taken", "remote again", {})
    await fake_ha.fire_state_changed("sensor.fine", "2", {"blob": "y" * 20000})
    await fake_ha.fire_state_changed("sensor.fine", "3", {})
    await wait_for(lambda: state_of(hass, "sensor.remote_home_fine") == "3")
    taken = hass.states.get("sensor.remote_home_taken")
    assert taken is not None
    assert (taken.state, dict(taken.attributes)) == ("local", {"mine": True})  # never overwritten
    mirror = mirror_of(entry)
    assert mirror.local.skip_counts == {
        "entity_id_taken": 2,
        "attributes_too_large": 2,
        "invalid_entity_id": 2,
    }
    assert set(mirror.local.skipped["attributes_too_large"]) == {"sensor.huge", "sensor.fine"}
    # Logged once per entity, not per change.
    assert caplog.text.count("Not mirroring sensor.taken") == 1
    assert link_state(entry) is LinkState.CONNECTED


async def test_ids_and_customizations_survive_a_restart_and_the_remote_down(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "1200")
    registry = er.async_get(hass)
    registry.async_update_entity(
        "sensor.remote_home_heat_pump_power", new_entity_id="sensor.hp", name="HP", area_id="attic"
    )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.hp").attributes["friendly_name"].endswith("HP")  # type: ignore[union-attr]

    fake_ha.refuse = True
    await fake_ha.close_all()
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    # Loaded while the remote is down: every mirror exists, unavailable.
    assert state_of(hass, "sensor.hp") == STATE_UNAVAILABLE
    assert state_of(hass, "switch.remote_home_pump") == STATE_UNAVAILABLE
    fake_ha.refuse = False
    await wait_for(lambda: state_of(hass, "sensor.hp") == "1200")
    reg = registry.async_get("sensor.hp")
    assert reg is not None
    assert (reg.name, reg.area_id) == ("HP", "attic")
    assert hass.states.get("sensor.remote_home_heat_pump_power") is None


async def test_options_that_stop_mirroring_an_entity_remove_it_and_keep_the_others(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    registry = er.async_get(hass)
    power = registry.async_get("sensor.remote_home_heat_pump_power")
    assert power is not None

    hass.config_entries.async_update_entry(
        entry,
        options={**entry.options, CONF_MIRROR_INCLUDE: ["sensor"], CONF_MIRROR_PREFIX: "far"},
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "1200")
    assert registry.async_get("switch.remote_home_pump") is None  # no longer included
    kept = registry.async_get("sensor.remote_home_heat_pump_power")
    assert kept is not None
    assert kept.id == power.id  # the same entity, its history continues
    await fake_ha.fire_state_changed("sensor.new_one", "1", {})
    await wait_for(lambda: state_of(hass, "sensor.far_new_one") == "1")  # new prefix: new ones

    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_MIRROR_ENTITIES: False}
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get("sensor.remote_home_heat_pump_power") is None
    conn = fake_ha.last_connection
    assert conn is not None
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    assert not any(c["type"] == "subscribe_entities" for c in fake_ha.connections[-1].commands)


async def test_mirrors_are_read_only_with_control_off(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    await setup_link(**{CONF_CONTROL: False})
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    for service in ("turn_on", "turn_off", "toggle"):
        with pytest.raises(HomeAssistantError, match="read-only"):
            await hass.services.async_call(
                "switch", service, {"entity_id": "switch.remote_home_pump"}, blocking=True
            )
    conn = fake_ha.last_connection
    assert conn is not None
    assert not any(c["type"] == "call_service" for c in conn.commands)


# One entity of some of the other mirrored domains, as their integrations show them.
MORE_DOMAINS: dict[str, tuple[str, dict[str, Any]]] = {
    "cover.garage": (
        "open",
        {
            "current_position": 100,
            "device_class": "garage",
            "friendly_name": "Garage",
            "supported_features": 15,
        },
    ),
    "lock.front": ("locked", {"friendly_name": "Front door", "supported_features": 1}),
    "climate.living": (
        "heat",
        {
            "hvac_modes": ["off", "heat"],
            "temperature": 21.5,
            "current_temperature": 20.0,
            "supported_features": 385,
        },
    ),
    "select.mode": ("eco", {"options": ["eco", "comfort"], "friendly_name": "Mode"}),
    "weather.home": (
        "sunny",
        {
            "temperature": 12.0,
            "temperature_unit": "°C",
            "supported_features": 3,
            "friendly_name": "Home",
        },
    ),
    "button.doorbell": ("2026-01-01T00:00:00+00:00", {"friendly_name": "Doorbell"}),
    "event.doorbell": (
        "unknown",
        {"event_types": ["ring"], "event_type": None, "device_class": "doorbell"},
    ),
    "scene.evening": ("unknown", {"friendly_name": "Evening"}),
}


async def test_mirrors_of_more_domains_show_the_remote_and_refuse_every_service_control_off(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    for remote_id, (state, attributes) in MORE_DOMAINS.items():
        await fake_ha.fire_state_changed(remote_id, state, attributes)
    # No include: every mirrored domain. Control off: every mirror read-only.
    entry = await setup_link(**{CONF_CONTROL: False})
    local = {r: r.replace(".", ".remote_home_", 1) for r in MORE_DOMAINS}
    await wait_for(lambda: all(hass.states.get(e) is not None for e in local.values()))
    await hass.async_block_till_done()
    for remote_id, (state, attributes) in MORE_DOMAINS.items():
        mirrored = hass.states.get(local[remote_id])
        assert mirrored is not None
        assert mirrored.state == state
        shown = dict(mirrored.attributes)
        assert shown.pop("friendly_name").startswith(fake_ha.location_name)
        # Control off: no feature supported here (the frontend shows no control).
        assert shown.pop("supported_features", 0) == 0
        assert shown == {
            k: v for k, v in attributes.items() if k not in ("friendly_name", "supported_features")
        }
    # Feature-gated services: a mirror supports no feature (whatever the remote's attribute
    # says), so Home Assistant refuses them before they reach it.
    gated = [
        ("cover", "open_cover", {}),
        ("cover", "toggle", {}),
        ("climate", "set_temperature", {"temperature": 20}),
        ("lock", "open", {}),
    ]
    for domain, service, data in gated:
        entity_id = next(e for e in local.values() if e.startswith(f"{domain}."))
        with pytest.raises(ServiceNotSupported):
            await hass.services.async_call(
                domain, service, {"entity_id": entity_id, **data}, blocking=True
            )
    with pytest.raises(ServiceNotSupported):
        await hass.services.async_call(
            "weather",
            "get_forecasts",
            {"entity_id": "weather.remote_home_home", "type": "daily"},
            blocking=True,
            return_response=True,
        )
    # Services that call an entity method by name: the mirror's read-only refusal.
    by_name = [
        ("lock", "unlock", {}),
        ("lock", "lock", {}),
        ("climate", "set_hvac_mode", {"hvac_mode": "off"}),
        ("select", "select_option", {"option": "comfort"}),
        ("select", "select_next", {}),
        ("button", "press", {}),
        ("scene", "turn_on", {}),
    ]
    for domain, service, data in by_name:
        entity_id = next(e for e in local.values() if e.startswith(f"{domain}."))
        with pytest.raises(HomeAssistantError, match="read-only") as refused:
            await hass.services.async_call(
                domain, service, {"entity_id": entity_id, **data}, blocking=True
            )
        assert not isinstance(refused.value, ServiceNotSupported)
    assert (
        hass.states.get("button.remote_home_doorbell").state == MORE_DOMAINS["button.doorbell"][0]
    )  # type: ignore[union-attr]
    conn = fake_ha.last_connection
    assert conn is not None
    assert not any(c["type"] == "call_service" for c in conn.commands)
    # The link down: every one unavailable; back: the remote's states again.
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: all(state_of(hass, e) == STATE_UNAVAILABLE for e in local.values()))
    await fake_ha.fire_state_changed("cover.garage", "closed", MORE_DOMAINS["cover.garage"][1])
    fake_ha.refuse = False
    await wait_for(lambda: state_of(hass, "cover.remote_home_garage") == "closed")
    assert state_of(hass, "lock.remote_home_front") == "locked"
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_a_mirrored_weather_forecast_subscription_is_the_remotes(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """The frontend's forecast subscription: the remote's get_forecasts answer, as it is, again
    with each state change of the remote entity."""
    state, attributes = MORE_DOMAINS["weather.home"]
    await fake_ha.fire_state_changed("weather.home", state, attributes)
    forecast = [{"condition": "sunny", "datetime": "2026-12-07T00:00:00+00:00", "temperature": 9}]
    fake_ha.service_responses["weather.home"] = {"forecast": forecast}
    await setup_link()
    await wait_for(lambda: state_of(hass, "weather.remote_home_home") == "sunny")
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "weather/subscribe_forecast",
            "entity_id": "weather.remote_home_home",
            "forecast_type": "daily",
        }
    )
    answer = await client.receive_json()
    assert answer["success"]
    event = await client.receive_json()
    assert event["event"] == {"type": "daily", "forecast": forecast}
    later = [{**forecast[0], "temperature": 4}]
    fake_ha.service_responses["weather.home"] = {"forecast": later}
    await fake_ha.fire_state_changed("weather.home", "cloudy", attributes)
    event = await client.receive_json()
    assert event["event"] == {"type": "daily", "forecast": later}
    assert [c["service_data"] for c in fake_ha.service_calls] == [{"type": "daily"}] * 2


async def test_a_remote_without_subscribe_entities_is_mirrored_from_get_states_and_events(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ha.fail_subscriptions = {"subscribe_entities"}
    fake_ha.subscription_error = ("unknown_command", "Unknown command.")
    await remote_with_entities(fake_ha)
    answer_states = fake_module._HANDLERS["get_states"]

    async def change_first(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        # A change sent before the reply: kept while the states are read, applied after them.
        state = {**fake_ha.states["switch.pump"].as_dict(), "entity_id": "switch.late"}
        await fake_ha.fire_event(
            "state_changed", {"entity_id": "switch.late", "old_state": None, "new_state": state}
        )
        await answer_states(conn, msg_id, msg)

    monkeypatch.setitem(fake_module._HANDLERS, "get_states", change_first)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_late") == "on")
    monkeypatch.undo()
    snapshot = entry.runtime_data.coordinator.engine.snapshot()
    assert snapshot.entities is not None
    assert snapshot.entities.unsupported
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "1200")
    power = hass.states.get("sensor.remote_home_heat_pump_power")
    assert power is not None
    assert power.attributes["state_class"] == "measurement"
    assert hass.states.get("input_boolean.remote_home_kitchen") is None  # filtered here
    # get_states has no filter: input_boolean.kitchen crossed the wire and was dropped here.
    assert mirror_of(entry).local.filtered_here == 1
    # Live: the state_changed events (mirrored ones are not fired again).
    await fake_ha.fire_state_changed("sensor.heat_pump_power", "900", POWER)
    await fake_ha.fire_state_changed("input_boolean.kitchen", "off", {})
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "900")

    def fired() -> list[str]:
        return [e.data["data"]["entity_id"] for e in events]

    await wait_for(lambda: "input_boolean.kitchen" in fired())
    # switch.late's first change came before it was mirrored (a documented edge): an event too.
    assert fired() == ["switch.late", "input_boolean.kitchen"]
    # A change older than what is known never overwrites it.
    mirror = mirror_of(entry)
    old = dict(fake_ha.states["sensor.heat_pump_power"].as_dict())
    mirror.fallback.on_event(
        {
            "event_type": "state_changed",
            "data": {
                "entity_id": "sensor.heat_pump_power",
                "new_state": {**old, "state": "1", "last_updated": "2000-01-01T00:00:00+00:00"},
            },
        }
    )
    mirror.fallback.on_event({"event_type": "state_changed", "data": {"entity_id": 5}})
    mirror.fallback.on_event({"event_type": "call_service", "data": {}})
    mirror.fallback.on_event(
        {"event_type": "state_changed", "data": {"entity_id": "sensor.x", "new_state": 1}}
    )
    assert state_of(hass, "sensor.remote_home_heat_pump_power") == "900"
    # Removed on the remote, confirmed by its registry.
    await fake_ha.remove_state("switch.pump")
    await wait_for(lambda: er.async_get(hass).async_get("switch.remote_home_pump") is None)
    # Link lost and back: read again.
    await fake_ha.close_all(1011)
    await wait_for(
        lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == STATE_UNAVAILABLE
    )
    await wait_for(lambda: state_of(hass, "sensor.remote_home_heat_pump_power") == "900")


async def test_outage_changes_stay_events_and_live_mirrored_ones_are_never_backfilled(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Capture's exactly-once bookkeeping holds for mirrored entities, whose live changes are
    local states, not events: a live change during the recovery is not fired as backfilled."""
    for name in ("COMMIT_WAIT", "RETRY_DELAY", "BACKLOG_POLL"):
        monkeypatch.setattr(recovery_module, name, 0.0)
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_BACKFILL: True})
    await fake_ha.fire_state_changed("sensor.door", "closed")  # live: bookkept, not fired
    await wait_for(lambda: state_of(hass, "sensor.remote_home_door") == "closed")
    lost = await drop_link(fake_ha, entry)
    (missed,) = inside(lost, 1)
    fake_ha.record_state("sensor.door", "open", missed)

    patch_history(monkeypatch, live_change_before_first_history(fake_ha, "sensor.door", "closed"))
    await restore_link(fake_ha, entry, gaps=1)
    await hass.async_block_till_done()
    assert changes_of(backfilled(events), "sensor.door") == [("open", missed.isoformat())]
    assert changes_of(live(events), "sensor.door") == []  # its local state carries it


async def test_edges_of_updates_and_removals(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the wire rarely shows: a removal not confirmed (refused, link down, back meanwhile),
    a state the filter excludes arriving anyway, attributes that cannot be measured, an entity
    missing from a new subscription's first message."""
    await remote_with_entities(fake_ha)
    entry = await setup_link(**{CONF_MIRROR_EXCLUDE: ["sensor.secret"]})
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    mirror = mirror_of(entry)
    registry = er.async_get(hass)
    stamp = {"last_changed": 1.0, "last_updated": 1.0}
    mirror.local.apply("sensor.secret", RemoteState(state="1", attributes={}, **stamp))
    assert mirror.local.filtered_here == 1
    mirror.local.apply("sensor.odd", RemoteState(state="1", attributes={"o": object()}, **stamp))
    # (new: held until the remote's registry says it is no mirror there)
    await wait_for(lambda: mirror.local.skip_counts.get("attributes_too_large") == 1)

    # The remote's registry refuses to tell (e.g. a non-admin token): kept.
    async def refuse(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        await conn._error(msg_id, "unauthorized", "Unauthorized")

    monkeypatch.setitem(fake_module._HANDLERS, "config/entity_registry/get", refuse)
    await mirror.local._confirm_removed("switch.pump")
    # Back before the answer came: kept.
    monkeypatch.undo()
    await fake_ha.remove_state("binary_sensor.door")
    await fake_ha.fire_state_changed("binary_sensor.door", "on", {})
    await wait_for(lambda: state_of(hass, "binary_sensor.remote_home_door") == "on")
    await mirror.local._confirm_removed("binary_sensor.door")
    assert registry.async_get("binary_sensor.remote_home_door") is not None
    # A new subscription whose first message lacks an entity: unavailable, kept.
    mirror._on_entities(EntitiesUpdate(initial=True, changed=(), removed=(), states={}))
    assert state_of(hass, "switch.remote_home_pump") == STATE_UNAVAILABLE
    # The link is down: nothing can be confirmed, nothing is removed.
    fake_ha.refuse = True
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is not LinkState.CONNECTED)
    await mirror.local._confirm_removed("switch.pump")
    assert registry.async_get("switch.remote_home_pump") is not None
    assert mirror.local.removed == 0
    # A removal check still running at unload is cancelled.
    mirror.local.on_removed("switch.pump")
    await mirror.async_stop()


async def test_patterns_edited_by_hand_turn_mirroring_off_not_the_link(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, caplog: pytest.LogCaptureFixture
) -> None:
    await remote_with_entities(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_MIRROR_INCLUDE: ["Not A Pattern"]}
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    assert er.async_get(hass).async_get("switch.remote_home_pump") is not None  # kept
    mirror = mirror_of(entry)
    assert not mirror.enabled
    assert mirror.refused == "invalid_patterns"
    assert "Not mirroring entities of Remote Home" in caplog.text
    assert entry.runtime_data.coordinator.engine.config.entities is None


async def test_a_restored_mirror_keeps_its_last_name_while_unavailable(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    await remote_with_entities(fake_ha)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    fake_ha.refuse = True
    await fake_ha.close_all()
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    pump = hass.states.get("switch.remote_home_pump")
    assert pump is not None
    assert pump.state == STATE_UNAVAILABLE
    assert pump.attributes["friendly_name"] == "Remote Home Pump"
    assert er.async_get(hass).async_get("switch.remote_home_pump").original_name == "Pump"  # type: ignore[union-attr]
