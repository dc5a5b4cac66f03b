"""Config flow: link a remote Home Assistant; reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
import logging
import re
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .client import ConnectionConfig, HaClientError, HaWebSocketSession, RemoteInfo, sanitize
from .compat import vol
from .const import (
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_BASE_DELAY,
    CONF_CONNECT_TIMEOUT,
    CONF_EVENT_TYPES,
    CONF_FAILURE_THRESHOLD,
    CONF_FORWARD_EVENTS,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    CONF_JITTER,
    CONF_MAX_ATTEMPTS,
    CONF_MAX_DELAY,
    CONF_MULTIPLIER,
    CONF_RECOVERY_TIMEOUT,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from .helpers import InvalidURLError, error_key, normalize_url, options_with_defaults

_LOGGER = logging.getLogger(__name__)

VALIDATION_TIMEOUT = 10.0
EVENT_TYPE_PATTERN = re.compile(r"^[a-zA-Z0-9_.:-]{1,64}$")
COMMON_EVENT_TYPES = [
    "state_changed",
    "call_service",
    "automation_triggered",
    "script_started",
    "logbook_entry",
    "homeassistant_start",
    "homeassistant_stop",
]


async def async_validate_remote(
    hass: HomeAssistant, url: str, token: str, verify_ssl: bool
) -> RemoteInfo:
    """Really connect: authenticate and read the remote's identity, then close."""
    session = HaWebSocketSession(
        async_get_clientsession(hass),
        ConnectionConfig(
            url=url,
            token=token,
            verify_ssl=verify_ssl,
            connect_timeout=VALIDATION_TIMEOUT,
            command_timeout=VALIDATION_TIMEOUT,
        ),
    )
    try:
        return await session.connect()
    finally:
        await session.close()


def _own_url(hass: HomeAssistant) -> str:
    try:
        return get_url(hass, prefer_external=False, allow_cloud=False)
    except NoURLAvailableError:
        return ""


def _unique_id(remote: RemoteInfo, url: str) -> str:
    """The token owner's user id is a uuid of that instance; the URL when the remote hides it."""
    return remote.user_id or url


class HaIngestionConfigFlow(ConfigFlow, domain=DOMAIN):
    """Link to a remote Home Assistant."""

    VERSION = 1

    async def _async_try(
        self, url_text: str, token: str, verify_ssl: bool, errors: dict[str, str]
    ) -> tuple[str, RemoteInfo] | None:
        """Normalize and test; fill `errors` (field-level for the URL) on failure."""
        try:
            url = normalize_url(url_text)
        except InvalidURLError:
            errors[CONF_URL] = "invalid_url"
            return None
        try:
            remote = await async_validate_remote(self.hass, url, token, verify_ssl)
        except HaClientError as err:
            errors["base"] = error_key(err)
            _LOGGER.debug("Validation of %s failed: %s", sanitize(url), type(err).__name__)
            return None
        except Exception:
            _LOGGER.exception("Unexpected error while validating the remote")
            errors["base"] = "unknown"
            return None
        return url, remote

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the remote's URL and a long-lived access token; test them for real."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_try(
                user_input[CONF_URL],
                user_input[CONF_ACCESS_TOKEN],
                user_input[CONF_VERIFY_SSL],
                errors,
            )
            if result is not None:
                url, remote = result
                await self.async_set_unique_id(_unique_id(remote, url))
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=remote.location_name,
                    data={
                        CONF_URL: url,
                        CONF_ACCESS_TOKEN: user_input[CONF_ACCESS_TOKEN],
                        CONF_VERIFY_SSL: user_input[CONF_VERIFY_SSL],
                    },
                )
        defaults = user_input or {CONF_URL: _own_url(self.hass), CONF_VERIFY_SSL: True}
        schema = vol.Schema(
            {
                vol.Required(CONF_URL, default=defaults.get(CONF_URL, "")): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.URL)
                ),
                vol.Required(CONF_ACCESS_TOKEN): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.PASSWORD)
                ),
                vol.Required(
                    CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True)
                ): BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The remote rejected the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_try(
                entry.data[CONF_URL],
                user_input[CONF_ACCESS_TOKEN],
                entry.data.get(CONF_VERIFY_SSL, True),
                errors,
            )
            if result is not None:
                url, remote = result
                await self.async_set_unique_id(_unique_id(remote, url))
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_ACCESS_TOKEN: user_input[CONF_ACCESS_TOKEN]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_ACCESS_TOKEN): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    )
                }
            ),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the URL or TLS verification of an existing link (same remote only)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_try(
                user_input[CONF_URL],
                entry.data[CONF_ACCESS_TOKEN],
                user_input[CONF_VERIFY_SSL],
                errors,
            )
            if result is not None:
                url, remote = result
                await self.async_set_unique_id(_unique_id(remote, url))
                self._abort_if_unique_id_mismatch(reason="different_instance")
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={CONF_URL: url, CONF_VERIFY_SSL: user_input[CONF_VERIFY_SSL]},
                )
        current = user_input or entry.data
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_URL, default=current[CONF_URL]): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.URL)
                    ),
                    vol.Required(
                        CONF_VERIFY_SSL, default=current.get(CONF_VERIFY_SSL, True)
                    ): BooleanSelector(),
                }
            ),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> HaIngestionOptionsFlow:
        """Options: every resilience and capture parameter."""
        return HaIngestionOptionsFlow()


def _number(minimum: float, maximum: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=minimum, max=maximum, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


OPTION_FIELDS: dict[str, Any] = {
    CONF_EVENT_TYPES: SelectSelector(
        SelectSelectorConfig(options=COMMON_EVENT_TYPES, multiple=True, custom_value=True)
    ),
    CONF_BASE_DELAY: _number(0.1, 3600, 0.1, "s"),
    CONF_MAX_DELAY: _number(1, 86400, 1, "s"),
    CONF_MULTIPLIER: _number(1, 10, 0.1),
    CONF_JITTER: BooleanSelector(),
    CONF_MAX_ATTEMPTS: _number(0, 100000, 1),
    CONF_FAILURE_THRESHOLD: _number(1, 1000, 1),
    CONF_RECOVERY_TIMEOUT: _number(1, 86400, 1, "s"),
    CONF_HEARTBEAT_INTERVAL: _number(1, 3600, 1, "s"),
    CONF_HEARTBEAT_TIMEOUT: _number(1, 600, 1, "s"),
    CONF_CONNECT_TIMEOUT: _number(1, 300, 1, "s"),
    CONF_FORWARD_EVENTS: BooleanSelector(),
    CONF_BACKFILL: BooleanSelector(),
    CONF_BACKFILL_MAX_WINDOW: _number(0.1, 168, 0.1, "h"),
}
INTEGER_OPTIONS = {CONF_MAX_ATTEMPTS, CONF_FAILURE_THRESHOLD}


def validate_options(options: dict[str, Any]) -> dict[str, str]:
    """Field-level errors for a set of options."""
    errors: dict[str, str] = {}
    event_types = options[CONF_EVENT_TYPES]
    if not event_types or not all(EVENT_TYPE_PATTERN.match(t) for t in event_types):
        errors[CONF_EVENT_TYPES] = "invalid_event_types"
    if options[CONF_BASE_DELAY] > options[CONF_MAX_DELAY]:
        errors[CONF_BASE_DELAY] = "base_greater_than_max"
    if options[CONF_HEARTBEAT_TIMEOUT] >= options[CONF_HEARTBEAT_INTERVAL] * 10:
        errors[CONF_HEARTBEAT_TIMEOUT] = "heartbeat_timeout_too_long"
    return errors


class HaIngestionOptionsFlow(OptionsFlowWithReload):
    """Tune the link; saving changed options reloads the entry (Home Assistant does it for us)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options: dict[str, Any] = {
                key: int(value) if key in INTEGER_OPTIONS else value
                for key, value in user_input.items()
            }
            event_types: list[str] = options[CONF_EVENT_TYPES]
            options[CONF_EVENT_TYPES] = list(dict.fromkeys(t.strip() for t in event_types))
            errors = validate_options(options)
            if not errors:
                return self.async_create_entry(data=options)
        current = user_input or options_with_defaults(dict(self.config_entry.options))
        schema = vol.Schema(
            {
                vol.Required(key, default=current[key]): selector
                for key, selector in OPTION_FIELDS.items()
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)
