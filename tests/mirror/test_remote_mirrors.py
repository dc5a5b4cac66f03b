"""A link both ways: the remote's own mirrors are never mirrored back, their events never captured.

Over the in-process fake remote (`tests/fake_ha.py`), whose registry display list names each
entity's platform (`server.platforms`: "ha_ingestion" is a mirror made there).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.ha_ingestion.capture import recovery as recovery_module
from custom_components.ha_ingestion.const import (
    CONF_BACKFILL,
    CONF_EVENT_TYPES,
    CONF_REMOTE_USER_ID,
    DOMAIN,
    EVENT_INGESTED,
)
from custom_components.ha_ingestion.diagnostics import async_get_config_entry_diagnostics
from custom_components.ha_ingestion.mirror import (
    local_entities as local_entities_module,
    mirror as mirror_module,
    remote_mirrors as remote_mirrors_module,
    updates as updates_module,
)
from tests import fake_ha as fake_module
from tests.capture.test_capture import (
    backfilled,
    changes_of,
    drop_link,
    inside,
    restore_link,
)
from tests.conftest import wait_for
from tests.fake_ha import FakeConnection, FakeHA
from tests.mirror.test_mirror import SetupLink, mirror_of, setup_link, state_of

__all__ = ["setup_link"]

LIST = "config/entity_registry/list_for_display"


def entity_ids(events: list[Any]) -> list[str]:
    return [e.data["data"].get("entity_id") for e in events]


async def test_a_remote_mirror_is_never_mirrored_back_nor_captured(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """At connect and later: an entity registered on the remote with platform ha_ingestion is
    skipped (`remote_mirror`), before any local entity is made; its changes are no events; the
    remote's real entities are mirrored as before."""
    fake_ha.platforms["light.home_porch"] = DOMAIN  # the remote's mirror of ours
    await fake_ha.fire_state_changed("light.home_porch", "on", {})
    await fake_ha.fire_state_changed("switch.pump", "on", {})
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    mirror = mirror_of(entry)
    await wait_for(lambda: mirror.local.skip_counts.get("remote_mirror", 0) >= 1)
    # A new mirror there, while linked (a new link on the remote), and changes of both.
    fake_ha.platforms["sensor.cabin_power"] = DOMAIN
    await fake_ha.fire_state_changed("sensor.cabin_power", "12", {})
    await fake_ha.fire_state_changed("light.home_porch", "off", {})
    await fake_ha.fire_state_changed("sensor.real", "1", {})
    await wait_for(lambda: state_of(hass, "sensor.remote_home_real") == "1")
    await wait_for(lambda: "sensor.cabin_power" in mirror.remote_mirrors.entity_ids)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    assert registry.async_get("light.remote_home_home_porch") is None
    assert registry.async_get("sensor.remote_home_cabin_power") is None
    assert set(mirror.local.entities) == {"switch.pump", "sensor.real"}
    assert set(mirror.local.skipped["remote_mirror"]) == {"light.home_porch", "sensor.cabin_power"}
    # No event of a remote mirror (sensor.cabin_power's first change came before the read).
    assert "light.home_porch" not in entity_ids(events)
    assert "sensor.cabin_power" not in entity_ids(events)
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["mirror"]["remote_mirrors"]["recognised"] == 2
    assert diagnostics["mirror"]["skipped"]["remote_mirror"] >= 2
    assert diagnostics["capture"]["echo_skipped"] >= 1


async def test_a_mirror_of_a_mirror_made_before_is_removed(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """A mirror of a remote mirror (made by a version without the check) goes at the next read."""
    await fake_ha.fire_state_changed("light.home_porch", "on", {})
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "light.remote_home_home_porch") == "on")
    fake_ha.platforms["light.home_porch"] = DOMAIN
    await fake_ha.fire_state_changed("sensor.new", "1", {})  # unknown: the registry is read
    await wait_for(lambda: er.async_get(hass).async_get("light.remote_home_home_porch") is None)
    assert "light.home_porch" not in mirror_of(entry).local.entities


async def test_events_that_would_echo_are_never_captured(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """ha_ingestion_event of the remote (captured there already) and the remote's call_service
    events made by this link's token user (our forwarded calls) are skipped; a call_service of
    another user is captured."""
    entry = await setup_link(
        **{CONF_EVENT_TYPES: ["state_changed", "call_service", EVENT_INGESTED]}
    )
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_REMOTE_USER_ID: "link-user"}
    )
    # (the live path reads it at setup: set it there as a reload would)
    entry.runtime_data.capture.live.remote_user_id = "link-user"
    events = async_capture_events(hass, EVENT_INGESTED)
    await fake_ha.fire_event(EVENT_INGESTED, {"event_type": "state_changed", "data": {}})
    ours = {"id": "c1", "parent_id": None, "user_id": "link-user"}
    theirs = {"id": "c2", "parent_id": None, "user_id": "someone"}
    call = {"domain": "light", "service": "turn_on", "service_data": {}}
    await fake_ha.fire_event("call_service", call, context=ours)
    await fake_ha.fire_event("call_service", call, context=theirs)
    await fake_ha.fire_event("call_service", call, context=None)
    await wait_for(lambda: len(events) == 2)
    await hass.async_block_till_done()
    assert [e.data["event_type"] for e in events] == ["call_service", "call_service"]
    assert entry.runtime_data.capture.live.echo_skipped == 2


async def test_a_registry_that_cannot_be_read_mirrors_nothing_new_until_it_can(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unclassified entities are held (never a mirror of a mirror by mistake), counted and
    logged once; retried; mirrored once the registry answers. The link stays up."""

    async def refuse(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        await conn._error(msg_id, "unknown_error", "Boom")

    monkeypatch.setattr(remote_mirrors_module, "RETRY_DELAY", 0.05)
    monkeypatch.setitem(fake_module._HANDLERS, LIST, refuse)
    await fake_ha.fire_state_changed("switch.pump", "on", {})
    entry = await setup_link()
    mirror = mirror_of(entry)
    await wait_for(lambda: mirror.remote_mirrors.failures >= 2)  # retried
    assert mirror.local.entities == {}
    assert "switch.pump" in mirror.local.unclassified
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["mirror"]["remote_mirrors"]["waiting"] == 1
    assert diagnostics["mirror"]["remote_mirrors"]["last_error"]
    assert caplog.text.count("Cannot read the entity registry") == 1
    monkeypatch.undo()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")
    assert mirror.remote_mirrors.last_error is None
    assert mirror.local.unclassified == {}


async def test_a_bad_registry_reply_is_a_failure(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def odd(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        await conn._result(msg_id, {"entities": [1, {"ei": 2}, {"ei": "switch.pump"}]})

    monkeypatch.setitem(fake_module._HANDLERS, LIST, odd)
    await fake_ha.fire_state_changed("switch.pump", "on", {})
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "switch.remote_home_pump") == "on")  # odd rows skipped

    async def bad(conn: FakeConnection, msg_id: int, msg: dict[str, Any]) -> None:
        await conn._result(msg_id, ["not", "an", "object"])

    monkeypatch.setitem(fake_module._HANDLERS, LIST, bad)
    await fake_ha.fire_state_changed("switch.other", "on", {})
    mirror = mirror_of(entry)
    await wait_for(lambda: mirror.remote_mirrors.last_error == "unexpected reply")
    assert "switch.other" in mirror.local.unclassified


async def test_recovered_changes_of_a_remote_mirror_are_no_events(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an outage the remote's mirrors are not asked for, nor fired as backfilled."""
    for name in ("COMMIT_WAIT", "RETRY_DELAY", "BACKLOG_POLL"):
        monkeypatch.setattr(recovery_module, name, 0.0)
    fake_ha.platforms["input_boolean.home_x"] = DOMAIN
    fake_ha.registry.update({"input_boolean.home_x", "input_boolean.real"})
    events = async_capture_events(hass, EVENT_INGESTED)
    entry = await setup_link(**{CONF_BACKFILL: True})
    lost = await drop_link(fake_ha, entry)
    (missed,) = inside(lost, 1)
    fake_ha.record_state("input_boolean.home_x", "on", missed)
    fake_ha.record_state("input_boolean.real", "on", missed)
    await restore_link(fake_ha, entry, gaps=1)
    await hass.async_block_till_done()
    assert changes_of(backfilled(events), "input_boolean.real") == [("on", missed.isoformat())]
    assert changes_of(backfilled(events), "input_boolean.home_x") == []


async def test_an_unregistered_entity_keeps_its_verdict_across_a_reconnect(
    hass: HomeAssistant, fake_ha: FakeHA, setup_link: SetupLink
) -> None:
    """No read lists an entity without a registry entry: its verdict (no mirror) stands after
    the next connect's read, so its changes are never held again for a second read."""
    await fake_ha.fire_state_changed("sensor.scripted", "1", {})
    fake_ha.registry.discard("sensor.scripted")  # a state set by a script: unregistered
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_scripted") == "1")
    remote_mirrors = mirror_of(entry).remote_mirrors
    assert "sensor.scripted" in remote_mirrors.not_mirrors
    reads = remote_mirrors.reads
    await fake_ha.close_all()
    await wait_for(lambda: remote_mirrors.reads > reads)
    assert "sensor.scripted" in remote_mirrors.not_mirrors
    assert remote_mirrors.classify("sensor.scripted") is False


async def test_held_states_are_released_in_slices_and_a_newer_state_wins(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first link holds every state until the registry is read (thousands on a big remote):
    then they are applied in slices; a newer state applied meanwhile is not overwritten."""
    for n in range(30):
        await fake_ha.fire_state_changed(f"sensor.held_{n}", "old", {})
    pauses: list[int] = []
    newer: list[str] = []
    local: list[Any] = []

    class SmallSlices(updates_module.Slices):
        def __init__(self) -> None:
            super().__init__(items=5)

        async def pause(self) -> None:
            releasing = local[0].releasing if local else {}
            if releasing:
                pauses.append(len(releasing))
                if not newer:  # a newer state of a held entity, applied between two slices
                    newer.append(next(reversed(releasing)))
                    local[0].apply(newer[0], replace(releasing[newer[0]], state="new"))
            await super().pause()

    monkeypatch.setattr(updates_module, "Slices", SmallSlices)
    monkeypatch.setattr(updates_module, "SLICE_ITEMS", 5)
    monkeypatch.setattr(
        mirror_module.EntityMirror,
        "async_start",
        lambda self, start=mirror_module.EntityMirror.async_start: (
            local.append(self.local),
            start(self),
        )[1],
    )
    entry = await setup_link()
    mirror = mirror_of(entry)
    await wait_for(lambda: len(mirror.local.entities) == 30 and not mirror.local.releasing)
    await hass.async_block_till_done()
    # Held first (the registry is read after the connect), then released a slice at a time.
    assert len(pauses) >= 2
    assert pauses[0] >= 10
    assert newer
    assert state_of(hass, f"sensor.remote_home_{newer[0].partition('.')[2]}") == "new"
    assert all(
        state_of(hass, f"sensor.remote_home_held_{n}") == "old"
        for n in range(30)
        if f"sensor.held_{n}" != newer[0]
    )


async def test_a_registered_mirror_whose_state_waits_for_the_registry_is_there_at_once(
    hass: HomeAssistant,
    fake_ha: FakeHA,
    setup_link: SetupLink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At a start the link may tell a registered mirror's state before the remote's registry is
    read: the mirror is added at once, `unavailable` with the link-down mark (mended once the
    outage is recovered), not left out until the read (Home Assistant's start would write
    `unavailable` for it with a context no mend recognises)."""
    await fake_ha.fire_state_changed("sensor.scripted", "1", {})
    fake_ha.registry.discard("sensor.scripted")  # unregistered there: held at each start
    entry = await setup_link()
    await wait_for(lambda: state_of(hass, "sensor.remote_home_scripted") == "1")
    monkeypatch.setattr(remote_mirrors_module.RemoteMirrors, "classify", lambda *_: None)
    seen: list[tuple[bool, bool]] = []  # (state told before the platform, mirror added by it)
    add_platform = local_entities_module.LocalMirrors.add_platform

    def spy(local: Any, domain: str, *args: Any) -> None:
        told = "sensor.scripted" in local.remote_states()
        add_platform(local, domain, *args)
        if domain == "sensor":
            seen.append((told, "sensor.scripted" in local.entities))

    monkeypatch.setattr(local_entities_module.LocalMirrors, "add_platform", spy)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert seen == [(True, True)]
    local = mirror_of(entry).local
    assert "sensor.scripted" in local.unclassified  # its state still held
    state = hass.states.get("sensor.remote_home_scripted")
    assert state is not None
    assert state.state == "unavailable"
    assert state.context.id.endswith(local.link_down_mark)
