"""HA Ingestion: a resilient, observable link to another Home Assistant."""

from __future__ import annotations

import asyncio
import contextlib
from time import time as wall_time  # not `import time`: `time` is also our platform module

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.typing import ConfigType

from .capture import ISSUE_BACKFILL, EventCapture
from .capture.checkpoint import Checkpoint
from .client import HaAuthenticationError, LinkEngine, LinkSnapshot, LinkState
from .client.token_gate import REJECTED_BEFORE
from .const import DOMAIN
from .coordinator import HaIngestionCoordinator
from .data import HaIngestionConfigEntry, HaIngestionRuntimeData
from .engine_config import build_engine_config, options_with_defaults
from .health import HealthView
from .issues import set_entry_issue
from .mirror import EntityMirror, MirrorChoice
from .remote_url import is_insecure_remote
from .token_gate import new_token_gate

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

# Setup waits this long for the first attempt, so a rejected token starts reauth before setup
# returns; a remote that is down or slow never holds up Home Assistant's start.
FIRST_ATTEMPT_WAIT = 5.0
ISSUE_INSECURE = "insecure_connection"
_ATTEMPT_DONE = frozenset({LinkState.CONNECTED, LinkState.FAILED, LinkState.RECONNECTING})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the health view once for all entries."""
    hass.http.register_view(HealthView())
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> bool:
    """Start the link; entities exist (and report it) even while the remote is down."""
    options = options_with_defaults(dict(entry.options))
    # Which entities to mirror is decided first: the engine subscribes to them.
    choice = MirrorChoice.from_options(hass, entry, options)
    # One gate for the entry's token, shared by every connection that sends it (the link, the
    # backfill's history session through the engine's connection config, the flows' checks).
    gate = new_token_gate(dict(entry.data))
    config = build_engine_config(
        dict(entry.data), dict(entry.options), entities=choice.entities, token_gate=gate
    )
    engine = LinkEngine(async_get_clientsession(hass), config)
    mirror = EntityMirror(hass, entry, options, engine, choice)
    capture = EventCapture(
        hass,
        entry,
        engine,
        options,
        # mirror: a mirrored entity's changes are its local states, not also events
        not_forwarded=(
            mirror.is_mirrored if mirror.enabled and not mirror.forward_state_changes else None
        ),
        # mirror: the long-term statistics of mirrored sensors for every closed gap
        on_gap_closed=mirror.gap_statistics.async_gap_closed if mirror.enabled else None,
        # mirror: every mirrored entity is recovered after an outage, on the remote's registry
        # or not
        held=mirror.held_remote_ids if mirror.enabled else None,
        # mirror: their recovered changes become the mirrors' recorded history (stored once;
        # also as events with *Also fire state changes*)
        past=mirror.history if mirror.enabled else None,
        fire_past=mirror.forward_state_changes,
        # mirror: the remote's own mirrors (a link both ways) are never captured
        remote_mirrors=mirror.remote_mirrors.entity_ids,
    )
    coordinator = HaIngestionCoordinator(hass, entry, engine, capture, gate)
    if gate.closed:
        # Sending it again would be one more failed login on the remote (towards an IP ban):
        # the entry loads, its entities say failed/authentication, and reauth is offered.
        engine.set_failed(HaAuthenticationError(REJECTED_BEFORE))
    entry.runtime_data = HaIngestionRuntimeData(
        engine=engine, capture=capture, mirror=mirror, coordinator=coordinator, token_gate=gate
    )

    first_outcome = asyncio.Event()

    def _first(snapshot: LinkSnapshot) -> None:
        if snapshot.state in _ATTEMPT_DONE:
            first_outcome.set()

    remove_first = engine.add_listener(_first)
    _first(engine.snapshot())  # failed already (a rejected token): nothing to wait for
    await capture.async_start()  # capture: restores its checkpoint first
    mirror.async_start()
    await coordinator.async_start()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_ATTEMPT_WAIT):
            await first_outcome.wait()
    remove_first()

    _update_insecure_issue(hass, entry)

    async def _on_stop(_event: Event) -> None:
        await coordinator.async_stop()

    # Not `async_listen_once`: after Home Assistant's stop fired it, unloading the entry would remove
    # a listener that is already gone (logged as an error). Options changes reload through
    # OptionsFlowWithReload; reauth and reconfigure through their own flows.
    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _on_stop))
    # The link's own platforms and those of the registered mirrors (there at once, unavailable
    # until told); a mirrored domain not among them is loaded when a mirror of it appears.
    platforms = mirror.platforms.at_setup({*PLATFORMS, *mirror.setup_domains()})
    await hass.config_entries.async_forward_entry_setups(entry, platforms)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> bool:
    """Stop the link and unload the platforms."""
    began = wall_time()
    # Exactly those loaded, late ones too (a late load holds the setup lock, as unload does: it
    # has finished or not started).
    unloaded = await hass.config_entries.async_unload_platforms(
        entry, sorted(entry.runtime_data.mirror.platforms.loaded)
    )
    if unloaded:
        # mirror: Home Assistant wrote `unavailable` for each removed mirror meanwhile
        entry.runtime_data.mirror.note_unloaded(began)
        await entry.runtime_data.mirror.async_stop()
        await entry.runtime_data.capture.async_stop()  # capture: writes its checkpoint
        await entry.runtime_data.coordinator.async_stop()
        # A span capture could not recover stays reported across a reload; not once disabled.
        _delete_issues(
            hass, entry, frozenset() if entry.disabled_by else frozenset({ISSUE_BACKFILL})
        )
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> None:
    """Remove the entry's repair issues."""
    _delete_issues(hass, entry)
    # capture: the entry's checkpoint goes with it
    await Checkpoint(hass, entry.entry_id).async_remove()


def _delete_issues(
    hass: HomeAssistant, entry: HaIngestionConfigEntry, keep: frozenset[str] = frozenset()
) -> None:
    """Every repair issue of this entry (ids end in `_<entry_id>`), but those in `keep`.

    An unloaded link (disabled, removed, or reloading) has nothing left to repair; a reload's
    setup raises again whatever still applies.
    """
    suffix = f"_{entry.entry_id}"
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue_id.endswith(suffix) and issue_id[: -len(suffix)] not in keep:
            ir.async_delete_issue(hass, DOMAIN, issue_id)


def _update_insecure_issue(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> None:
    set_entry_issue(
        hass,
        entry,
        ISSUE_INSECURE,
        ir.IssueSeverity.WARNING if is_insecure_remote(entry.data["url"]) else None,
        {"name": entry.title},
        learn_more_url="https://www.home-assistant.io/integrations/http/#ssl_certificate",
    )


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HaIngestionConfigEntry, device: DeviceEntry
) -> bool:
    """The user may delete a remote's device here once the remote no longer has it.

    Never the instance device (the link's own entities), nor a device the remote still lists.
    """
    return entry.runtime_data.mirror.devices.can_remove(device)
