"""HA Ingestion: a resilient, observable link to another Home Assistant."""

from __future__ import annotations

import asyncio
import contextlib

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .capture import EventCapture
from .capture.capture import ISSUE_BACKFILL
from .capture.checkpoint import Checkpoint
from .client import ErrorCategory, LinkSnapshot, LinkState, Supervisor
from .const import DOMAIN
from .coordinator import HaIngestionCoordinator
from .data import HaIngestionConfigEntry, HaIngestionRuntimeData
from .health import HealthView
from .helpers import build_supervisor_config, is_insecure_remote, options_with_defaults

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

# Setup waits this long for the first attempt, so a rejected token starts reauth at once;
# a remote that is down or slow never holds up Home Assistant's start.
FIRST_ATTEMPT_WAIT = 5.0
ISSUE_INSECURE = "insecure_connection"
_ATTEMPT_DONE = frozenset({LinkState.CONNECTED, LinkState.FAILED, LinkState.RECONNECTING})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the health view once for all entries."""
    hass.http.register_view(HealthView())
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> bool:
    """Start the link; entities exist (and report it) even while the remote is down."""
    config = build_supervisor_config(dict(entry.data), dict(entry.options))
    supervisor = Supervisor(async_get_clientsession(hass), config)
    coordinator = HaIngestionCoordinator(hass, entry, supervisor)
    capture = EventCapture(hass, entry, coordinator, options_with_defaults(dict(entry.options)))
    entry.runtime_data = HaIngestionRuntimeData(coordinator=coordinator, capture=capture)

    first_outcome = asyncio.Event()

    def _first(snapshot: LinkSnapshot) -> None:
        if snapshot.state in _ATTEMPT_DONE:
            first_outcome.set()

    remove_first = supervisor.add_listener(_first)
    await capture.async_start()  # capture: restores its checkpoint first
    await coordinator.async_start()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_ATTEMPT_WAIT):
            await first_outcome.wait()
    remove_first()
    snapshot = supervisor.snapshot()
    if (
        snapshot.state is LinkState.FAILED
        and snapshot.last_error is not None
        and snapshot.last_error.category is ErrorCategory.AUTHENTICATION
    ):
        await coordinator.async_stop()
        await capture.async_stop()
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="auth_failed",
            translation_placeholders={"name": entry.title},
        )

    _update_insecure_issue(hass, entry)

    async def _on_stop(_event: Event) -> None:
        await coordinator.async_stop()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_stop))
    options_at_setup = dict(entry.options)

    async def _options_updated(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> None:
        """Options saved: apply them by reloading (no Home Assistant restart).

        Data updates (reauth, reconfigure) reload through their own flow; do not reload twice.
        """
        if dict(entry.options) != options_at_setup:
            await hass.config_entries.async_reload(entry.entry_id)

    entry.async_on_unload(entry.add_update_listener(_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> bool:
    """Stop the link and unload the platforms."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.capture.async_stop()  # capture: writes its checkpoint
        await entry.runtime_data.coordinator.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> None:
    """Remove the entry's repair issues."""
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_INSECURE}_{entry.entry_id}")
    ir.async_delete_issue(hass, DOMAIN, f"link_failed_{entry.entry_id}")
    # capture: the entry's checkpoint and backfill repair go with it
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_BACKFILL}_{entry.entry_id}")
    await Checkpoint(hass, entry.entry_id).async_remove()


def _update_insecure_issue(hass: HomeAssistant, entry: HaIngestionConfigEntry) -> None:
    issue_id = f"{ISSUE_INSECURE}_{entry.entry_id}"
    if not is_insecure_remote(entry.data["url"]):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_INSECURE,
        translation_placeholders={"name": entry.title},
        learn_more_url="https://www.home-assistant.io/integrations/http/#ssl_certificate",
    )
