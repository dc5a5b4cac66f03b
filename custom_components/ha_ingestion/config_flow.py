"""Config flow: link a remote Home Assistant; discovery, reauth and reconfigure.

The options flow is in options_flow.py; reaching a remote (addresses, checks) in flow_remote.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers import entity_registry as er, instance_id
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.selector import (
    BooleanSelector,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .client import HaClientError, RemoteInfo, TokenGate, sanitize
from .compat import vol
from .const import (
    CONF_DISCOVERY_URL,
    CONF_REJECTED_TOKEN,
    CONF_REMOTE_USER_ID,
    CONF_VERIFY_SSL,
    DOMAIN,
    LOGGER,
)
from .flow_remote import (
    TRY_NEXT_PORT,
    announced_addresses,
    async_validate_remote,
    candidate_urls,
    discovered_url,
    error_key,
    host_port,
)
from .options_flow import HaIngestionOptionsFlow
from .remote_url import InvalidURLError, configuration_url, normalize_url
from .token_gate import entry_token_gate


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


class HaIngestionConfigFlow(ConfigFlow, domain=DOMAIN):
    """Link to a remote Home Assistant."""

    VERSION = 1

    _discovery: dict[str, str]

    async def _async_try(
        self,
        url_text: str,
        token: str,
        verify_ssl: bool,
        errors: dict[str, str],
        token_gate: TokenGate | None = None,
    ) -> tuple[str, RemoteInfo] | None:
        """Normalize and test; fill `errors` (field-level for the URL) on failure.

        A bare host is tried on each of flow_remote.BARE_HOST_PORTS until one answers as Home Assistant; the
        error shown when none does is the most telling one (not "cannot connect" when a port
        answered at all). `token_gate`: the entry's, when the token is the entry's own.
        """
        try:
            candidates = candidate_urls(url_text)
        except InvalidURLError:
            errors[CONF_URL] = "invalid_url"
            return None
        failures: list[str] = []
        for url in candidates:
            try:
                remote = await async_validate_remote(
                    self.hass, url, token, verify_ssl, token_gate=token_gate
                )
            except HaClientError as err:
                failures.append(error_key(err))
                LOGGER.debug("Validation of %s failed: %s", sanitize(url), type(err).__name__)
                if failures[-1] in TRY_NEXT_PORT:
                    continue
                break
            except Exception:
                LOGGER.exception("Unexpected error while validating the remote")
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
        address = host_port(url)
        for flow in self._async_in_progress(include_uninitialized=True):
            context = flow["context"]
            offered = context.get("configuration_url")
            unique_id = context.get("unique_id")
            if offered and unique_id and host_port(offered) == address:
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
                # Suggested, not a default: without an own URL the field is empty and must be
                # filled in (an empty default would make the backend take a left-out URL as "").
                vol.Required(
                    CONF_URL, description={"suggested_value": defaults[CONF_URL]}
                ): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
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
            if entry.unique_id != uuid and host_port(entry.data[CONF_URL]) in addresses:
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
        if host_port(entry.data[CONF_URL]) == host_port(url):
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
                # The token given works now: no remembered rejection holds it back (even if it
                # is the one rejected before, e.g. its user was deactivated and is active again).
                data = {k: v for k, v in entry.data.items() if k != CONF_REJECTED_TOKEN}
                return self.async_update_reload_and_abort(
                    entry, data={**data, CONF_ACCESS_TOKEN: user_input[CONF_ACCESS_TOKEN]}
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
        """Change the URL or TLS verification of an existing link (same remote only).

        The check re-uses the entry's token, so it goes through the entry's token gate: a token
        the remote rejected is not sent (`invalid_auth`: re-authenticate first), and a rejection
        met here is the link's too. Conservative on purpose: a rejection at a new address may
        come from another instance, but resending the token to the entry's remote may be the
        failed login that bans it; reauth takes the same token again if it still works.
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_try(
                user_input[CONF_URL],
                entry.data[CONF_ACCESS_TOKEN],
                user_input[CONF_VERIFY_SSL],
                errors,
                entry_token_gate(self.hass, entry),
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
                    # Suggested, as in the user step: a URL typed empty is not kept as default.
                    vol.Required(
                        CONF_URL, description={"suggested_value": current[CONF_URL]}
                    ): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
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
