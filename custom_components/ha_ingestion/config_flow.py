"""Config flow: link a remote Home Assistant; reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
import logging
import re
from typing import Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers import entity_registry as er, instance_id
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
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util import slugify
import yarl

from .capture.selflink import remote_is_this_instance
from .client import (
    ConnectionConfig,
    EntityFilter,
    ErrorCategory,
    HaClientError,
    HaSubscriptionError,
    HaWebSocketSession,
    LinkState,
    RemoteInfo,
    sanitize,
)
from .compat import vol
from .const import (
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_BASE_DELAY,
    CONF_CONNECT_TIMEOUT,
    CONF_DISCOVERY_URL,
    CONF_EVENT_TYPES,
    CONF_FAILURE_THRESHOLD,
    CONF_FORWARD_EVENTS,
    CONF_FORWARD_STATE_CHANGES,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    CONF_JITTER,
    CONF_MAX_ATTEMPTS,
    CONF_MAX_DELAY,
    CONF_MIRROR_ENTITIES,
    CONF_MIRROR_EXCLUDE,
    CONF_MIRROR_INCLUDE,
    CONF_MIRROR_PREFIX,
    CONF_MULTIPLIER,
    CONF_RECOVERY_TIMEOUT,
    CONF_REMOTE_USER_ID,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from .helpers import (
    InvalidURLError,
    configuration_url,
    error_key,
    normalize_url,
    options_with_defaults,
    token_rejected,
)
from .mirror import MIRROR_DOMAINS
from .mirror.mirror import default_prefix, mirror_filter

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


async def async_refused_event_types(
    hass: HomeAssistant, data: Mapping[str, Any], event_types: list[str]
) -> list[str]:
    """Subscribe to each event type with an entry's token, then unsubscribe; return the refused.

    One short connection of its own (the running link is not touched); raises `HaClientError`
    when the remote cannot be asked.
    """
    session = HaWebSocketSession(
        async_get_clientsession(hass),
        ConnectionConfig(
            url=data[CONF_URL],
            token=data[CONF_ACCESS_TOKEN],
            verify_ssl=data.get(CONF_VERIFY_SSL, True),
            connect_timeout=VALIDATION_TIMEOUT,
            command_timeout=VALIDATION_TIMEOUT,
        ),
    )
    refused: list[str] = []
    try:
        await session.connect()
        for event_type in event_types:
            try:
                subscription = await session.subscribe_events(event_type)
            except HaSubscriptionError:
                refused.append(event_type)
                continue
            await session.command({"type": "unsubscribe_events", "subscription": subscription})
    finally:
        await session.close()
    return refused


def _own_url(hass: HomeAssistant) -> str:
    try:
        return get_url(hass, prefer_external=False, allow_cloud=False)
    except NoURLAvailableError:
        return ""


def _remote_id(remote: RemoteInfo, url: str) -> str:
    """The token owner's user id is a uuid of that instance; the URL when the remote hides it."""
    return remote.user_id or url


def _entry_remote_id(entry: ConfigEntry) -> str | None:
    """Who an entry's token belongs to (entries made before discovery stored it as unique id)."""
    stored: str | None = entry.data.get(CONF_REMOTE_USER_ID)
    return stored or entry.unique_id


# A bare host (no scheme, no port) is tried on Home Assistant's own port first, then on 80
# (Home Assistant OS from 2026.8). The token is only sent after the server greeted with
# auth_required, so trying a port where something else answers never hands it out.
BARE_HOST_PORTS = (8123, 80)
# Errors after which the next candidate port is tried; any other answer came from a Home
# Assistant (rejected token, TLS) and ends the search: the token is not sent twice.
_TRY_NEXT_PORT = frozenset({"cannot_connect", "timeout", "not_home_assistant"})


def candidate_urls(text: str) -> list[str]:
    """The WebSocket URLs to try, in order, for what the user typed."""
    url = normalize_url(text)
    stripped = text.strip()
    if "://" in stripped or yarl.URL(f"http://{stripped}").explicit_port is not None:
        return [url]
    return [normalize_url(str(yarl.URL(url).with_port(port))) for port in BARE_HOST_PORTS]


def discovered_url(info: ZeroconfServiceInfo) -> str:
    """The address to link a discovered Home Assistant at.

    The announcement's own address and port, over http; an https internal URL is used as it is,
    since a certificate is issued for a name, not for the address.
    """
    internal = str(info.properties.get("internal_url") or "")
    if internal.startswith("https://"):
        return normalize_url(internal)
    host = f"[{info.host}]" if info.ip_address.version == 6 else info.host
    return normalize_url(f"http://{host}:{info.port or 8123}")


def _host_port(url: str) -> tuple[str, int | None] | None:
    try:
        parsed = yarl.URL(normalize_url(url))
    except InvalidURLError:
        return None
    return (parsed.host or "").lower(), parsed.port


def announced_addresses(info: ZeroconfServiceInfo) -> set[tuple[str, int | None]]:
    """Every (host, port) the announcement says the instance answers at."""
    addresses: set[tuple[str, int | None]] = {
        (address.lower(), info.port) for address in info.addresses
    }
    for key in ("internal_url", "external_url", "base_url"):
        if (value := info.properties.get(key)) and (pair := _host_port(str(value))):
            addresses.add(pair)
    return addresses


class HaIngestionConfigFlow(ConfigFlow, domain=DOMAIN):
    """Link to a remote Home Assistant."""

    VERSION = 1

    _discovery: dict[str, str]

    async def _async_try(
        self, url_text: str, token: str, verify_ssl: bool, errors: dict[str, str]
    ) -> tuple[str, RemoteInfo] | None:
        """Normalize and test; fill `errors` (field-level for the URL) on failure.

        A bare host is tried on each of BARE_HOST_PORTS until one answers as Home Assistant; the
        error shown when none does is the most telling one (not "cannot connect" when a port
        answered at all).
        """
        try:
            candidates = candidate_urls(url_text)
        except InvalidURLError:
            errors[CONF_URL] = "invalid_url"
            return None
        failures: list[str] = []
        for url in candidates:
            try:
                remote = await async_validate_remote(self.hass, url, token, verify_ssl)
            except HaClientError as err:
                failures.append(error_key(err))
                _LOGGER.debug("Validation of %s failed: %s", sanitize(url), type(err).__name__)
                if failures[-1] in _TRY_NEXT_PORT:
                    continue
                break
            except Exception:
                _LOGGER.exception("Unexpected error while validating the remote")
                failures.append("unknown")
                break
            else:
                return url, remote
        errors["base"] = next((key for key in failures if key != "cannot_connect"), failures[0])
        return None

    async def _async_unique_id_for(self, remote: RemoteInfo, url: str) -> str:
        """This instance's uuid for a self-link (the token's user exists here), else the remote id.

        User ids are random uuids per instance, so a user of this instance is this instance.
        """
        if remote.user_id and await self.hass.auth.async_get_user(remote.user_id) is not None:
            return await instance_id.async_get(self.hass)
        return _remote_id(remote, url)

    def _pending_discovery(self, url: str) -> tuple[str, str] | None:
        """(uuid, discovered URL) of a discovery flow in progress for the instance at `url`.

        Matched on host and port of the address discovery offers (its configuration URL).
        """
        address = _host_port(url)
        for flow in self._async_in_progress(include_uninitialized=True):
            context = flow["context"]
            offered = context.get("configuration_url")
            unique_id = context.get("unique_id")
            if offered and unique_id and _host_port(offered) == address:
                return unique_id, normalize_url(offered)
        return None

    def _abort_if_remote_linked(self, remote: RemoteInfo, url: str) -> None:
        """Abort when an entry already links this remote through the same user's token."""
        remote_id = _remote_id(remote, url)
        for entry in self._async_current_entries(include_ignore=False):
            if _entry_remote_id(entry) == remote_id:
                raise AbortFlow("already_configured")

    def _create_link(
        self, url: str, remote: RemoteInfo, token: str, verify_ssl: bool, **extra: str
    ) -> ConfigFlowResult:
        """Create the entry; its description tells the address the link settled on."""
        return self.async_create_entry(
            title=remote.location_name,
            data={
                CONF_URL: url,
                CONF_ACCESS_TOKEN: token,
                CONF_VERIFY_SSL: verify_ssl,
                CONF_REMOTE_USER_ID: _remote_id(remote, url),
                **extra,
            },
            description="linked",
            description_placeholders={
                "name": remote.location_name,
                "url": configuration_url(url),
                "version": remote.version,
            },
        )

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
                extra: dict[str, str] = {}
                if (pending := self._pending_discovery(url)) is not None:
                    # The instance is being offered by discovery right now: take its uuid (the
                    # discovery flow ends when this entry is created).
                    uuid, discovered = pending
                    await self.async_set_unique_id(uuid, raise_on_progress=False)
                    if discovered == url:
                        extra[CONF_DISCOVERY_URL] = url
                else:
                    await self.async_set_unique_id(await self._async_unique_id_for(remote, url))
                self._abort_if_unique_id_configured()
                self._abort_if_remote_linked(remote, url)
                return self._create_link(
                    url, remote, user_input[CONF_ACCESS_TOKEN], user_input[CONF_VERIFY_SSL], **extra
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

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """A Home Assistant announced itself (`_home-assistant._tcp.local.`).

        Its instance uuid is the unique id. An entry for it follows a moved address when it still
        uses the one discovery gave it; an entry added by hand for the same address (host and
        port, or one of its announced URLs) is adopted: its unique id becomes the uuid.
        """
        properties = discovery_info.properties
        uuid = str(properties.get("uuid") or "")
        if not uuid:
            return self.async_abort(reason="not_home_assistant")
        if uuid == await instance_id.async_get(self.hass):
            return self.async_abort(reason="own_instance")
        url = discovered_url(discovery_info)
        await self.async_set_unique_id(uuid)
        if entry := self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, uuid):
            updates: dict[str, Any] | None = None
            if entry.data.get(CONF_DISCOVERY_URL) == entry.data.get(CONF_URL) != url:
                updates = {CONF_URL: url, CONF_DISCOVERY_URL: url}
            self._abort_if_unique_id_configured(updates=updates)
        addresses = announced_addresses(discovery_info)
        for entry in self._async_current_entries(include_ignore=False):
            if entry.unique_id != uuid and _host_port(entry.data[CONF_URL]) in addresses:
                self._adopt(entry, uuid, url)
                return self.async_abort(reason="already_configured")
        self._discovery = {
            CONF_URL: url,
            "name": str(properties.get("location_name") or "Home Assistant"),
            "version": str(properties.get("version") or ""),
        }
        self.context["title_placeholders"] = {"name": self._discovery["name"]}
        # Shown with the discovered instance; a link added by hand meanwhile at this address
        # takes this flow's uuid.
        self.context["configuration_url"] = configuration_url(url)
        return await self.async_step_zeroconf_confirm()

    @callback
    def _adopt(self, entry: ConfigEntry, uuid: str, url: str) -> None:
        """A hand-made entry turned out to be a discovered instance: identify it by its uuid.

        Entity unique ids are built on the entry's unique id; they move with it, so the
        entities keep their ids and history.
        """
        old = entry.unique_id or entry.entry_id
        registry = er.async_get(self.hass)
        for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
            if registered.unique_id.startswith(f"{old}_"):
                registry.async_update_entity(
                    registered.entity_id,
                    new_unique_id=f"{uuid}_{registered.unique_id[len(old) + 1 :]}",
                )
        data = {**entry.data, CONF_REMOTE_USER_ID: _entry_remote_id(entry)}
        if _host_port(entry.data[CONF_URL]) == _host_port(url):
            data[CONF_DISCOVERY_URL] = url  # reached at the announced address: follow it
        self.hass.config_entries.async_update_entry(entry, unique_id=uuid, data=data)
        if entry.state is ConfigEntryState.LOADED:
            self.hass.config_entries.async_schedule_reload(entry.entry_id)

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the discovered instance; ask only for a token."""
        discovery = self._discovery
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_try(
                discovery[CONF_URL], user_input[CONF_ACCESS_TOKEN], True, errors
            )
            if result is not None:
                url, remote = result
                self._abort_if_remote_linked(remote, url)
                return self._create_link(
                    url, remote, user_input[CONF_ACCESS_TOKEN], True, **{CONF_DISCOVERY_URL: url}
                )
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_ACCESS_TOKEN): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    )
                }
            ),
            description_placeholders={
                "name": discovery["name"],
                "version": discovery["version"],
                "url": configuration_url(discovery[CONF_URL]),
            },
            errors=errors,
        )

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
                if _remote_id(remote, url) != _entry_remote_id(entry):
                    return self.async_abort(reason="wrong_account")
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
                if _remote_id(remote, url) != _entry_remote_id(entry):
                    return self.async_abort(reason="different_instance")
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
    CONF_MIRROR_ENTITIES: BooleanSelector(),
    CONF_MIRROR_INCLUDE: SelectSelector(
        SelectSelectorConfig(options=list(MIRROR_DOMAINS), multiple=True, custom_value=True)
    ),
    CONF_MIRROR_EXCLUDE: SelectSelector(
        SelectSelectorConfig(options=list(MIRROR_DOMAINS), multiple=True, custom_value=True)
    ),
    CONF_MIRROR_PREFIX: TextSelector(),
    CONF_FORWARD_STATE_CHANGES: BooleanSelector(),
}
INTEGER_OPTIONS = {CONF_MAX_ATTEMPTS, CONF_FAILURE_THRESHOLD}
PATTERN_OPTIONS = (CONF_MIRROR_INCLUDE, CONF_MIRROR_EXCLUDE)


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
    filters: dict[str, EntityFilter] = {}
    for key in PATTERN_OPTIONS:
        try:
            filters[key] = EntityFilter(include=tuple(options[key]))
        except ValueError:
            errors[key] = "invalid_patterns"
    if (
        len(filters) == len(PATTERN_OPTIONS)
        and options[CONF_MIRROR_ENTITIES]
        and mirror_filter(options).server_filter() is None
    ):
        errors[CONF_MIRROR_INCLUDE] = "mirror_nothing_matches"
    prefix = options[CONF_MIRROR_PREFIX]
    if prefix and slugify(prefix) != prefix:
        errors[CONF_MIRROR_PREFIX] = "invalid_prefix"
    return errors


class HaIngestionOptionsFlow(OptionsFlowWithReload):
    """Tune the link; saving changed options reloads the entry (Home Assistant does it for us)."""

    # Options the user submitted again after the remote could not be asked: saved unchecked.
    _unchecked: dict[str, Any] | None = None

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option; the event types are checked against the remote."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            options: dict[str, Any] = {
                key: int(value) if key in INTEGER_OPTIONS else value
                for key, value in user_input.items()
            }
            for key in (CONF_EVENT_TYPES, *PATTERN_OPTIONS):
                options[key] = list(dict.fromkeys(t.strip() for t in options[key]))
            options[CONF_MIRROR_PREFIX] = options[CONF_MIRROR_PREFIX].strip()
            errors = validate_options(options)
            if options[CONF_MIRROR_ENTITIES] and self._self_link:
                errors[CONF_MIRROR_ENTITIES] = "mirror_self_link"
            if not errors and options != self._unchecked:
                errors = await self._async_check_event_types(options, placeholders)
            if not errors:
                return self.async_create_entry(data=options)
            if errors.get("base") in _UNCHECKED_SAVE_ALLOWED:
                self._unchecked = options
        current = user_input or options_with_defaults(dict(self.config_entry.options))
        if user_input is None and self._self_link:
            current[CONF_MIRROR_ENTITIES] = False  # refused for a link to this instance
        placeholders.setdefault("prefix", default_prefix(self.config_entry.title))
        schema = vol.Schema(
            {
                vol.Required(key, default=current[key]): selector
                for key, selector in OPTION_FIELDS.items()
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    @property
    def _self_link(self) -> bool:
        """This entry links this very instance (its token was issued here)."""
        return remote_is_this_instance(self.hass, self.config_entry.data[CONF_ACCESS_TOKEN])

    async def _async_check_event_types(
        self, options: dict[str, Any], placeholders: dict[str, str]
    ) -> dict[str, str]:
        """Ask the remote whether this entry's token may subscribe to each chosen type.

        A remote that cannot be asked (down, or it already rejected the token, which is not sent
        again) does not block saving: the options matter most during an outage, and the link
        reports a refused subscription at runtime anyway. Submitting again saves unchecked.
        """
        entry = self.config_entry
        if _token_rejected(self.hass, entry):
            return {"base": "check_token_rejected"}
        try:
            refused = await async_refused_event_types(
                self.hass, entry.data, options[CONF_EVENT_TYPES]
            )
        except HaClientError as err:
            _LOGGER.debug("Event types of %s not checked: %s", entry.title, type(err).__name__)
            placeholders["error"] = sanitize(str(err))
            if error_key(err) == "invalid_auth":
                return {"base": "check_token_rejected"}
            return {"base": "check_unreachable"}
        if refused:
            placeholders["refused"] = ", ".join(refused)
            return {CONF_EVENT_TYPES: "event_types_refused"}
        return {}


_UNCHECKED_SAVE_ALLOWED = frozenset({"check_unreachable", "check_token_rejected"})


def _token_rejected(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """The remote already rejected this entry's token (sending it again risks a ban).

    Known durably (the rejection is remembered in the entry), from a re-authentication in progress,
    or from the running link.
    """
    if token_rejected(dict(entry.data)) or any(entry.async_get_active_flows(hass, {SOURCE_REAUTH})):
        return True
    runtime = getattr(entry, "runtime_data", None)
    if runtime is None:
        return False
    snapshot = runtime.coordinator.supervisor.snapshot()
    error = snapshot.last_error
    return (
        snapshot.state is LinkState.FAILED
        and error is not None
        and error.category is ErrorCategory.AUTHENTICATION
    )
