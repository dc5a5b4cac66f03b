"""Options flow: every resilience, capture and mirroring parameter, in sections of one form.

The form groups the fields in sections; the entry's options stay flat (what the rest of the
integration reads): sectioned input is flattened before it is checked and saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy
import re
from typing import Any, Final

from homeassistant.config_entries import SOURCE_REAUTH, ConfigFlowResult, OptionsFlowWithReload
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
)
from homeassistant.util import slugify

from .capture.selflink import remote_is_this_instance
from .client import EntityFilter, HaClientError, sanitize
from .compat import vol
from .const import (
    CONF_BACKFILL,
    CONF_BACKFILL_MAX_WINDOW,
    CONF_BASE_DELAY,
    CONF_CONNECT_TIMEOUT,
    CONF_CONTROL,
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
    LOGGER,
)
from .engine_config import options_with_defaults
from .flow_remote import async_refused_event_types, error_key
from .mirror import MIRROR_DOMAINS, default_prefix, mirror_filter
from .token_gate import entry_token_gate

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
    CONF_CONTROL: BooleanSelector(),
    CONF_FORWARD_STATE_CHANGES: BooleanSelector(),
}
INTEGER_OPTIONS = {CONF_MAX_ATTEMPTS, CONF_FAILURE_THRESHOLD}
PATTERN_OPTIONS = (CONF_MIRROR_INCLUDE, CONF_MIRROR_EXCLUDE)
# Fields that may be left empty, which means their default ("" = the prefix from the remote's
# name, no include = every mirrored domain, no exclude = nothing excluded). They are optional
# with the current value suggested: the frontend leaves an empty optional field out, and a
# default would bring the old value back when the user clears one.
EMPTY_MEANS_DEFAULT: Final[dict[str, Any]] = {
    CONF_MIRROR_INCLUDE: [],
    CONF_MIRROR_EXCLUDE: [],
    CONF_MIRROR_PREFIX: "",
}

SECTION_CAPTURE: Final = "capture"
SECTION_MIRRORING: Final = "mirroring"
SECTION_CONNECTION: Final = "connection"
SECTION_RECONNECT: Final = "reconnect"
# The form's sections, in order, with their fields; the tuning knobs start collapsed.
SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    SECTION_CAPTURE: (
        CONF_EVENT_TYPES,
        CONF_FORWARD_EVENTS,
        CONF_BACKFILL,
        CONF_BACKFILL_MAX_WINDOW,
    ),
    SECTION_MIRRORING: (
        CONF_MIRROR_ENTITIES,
        CONF_MIRROR_INCLUDE,
        CONF_MIRROR_EXCLUDE,
        CONF_MIRROR_PREFIX,
        CONF_CONTROL,
        CONF_FORWARD_STATE_CHANGES,
    ),
    SECTION_CONNECTION: (CONF_HEARTBEAT_INTERVAL, CONF_HEARTBEAT_TIMEOUT, CONF_CONNECT_TIMEOUT),
    SECTION_RECONNECT: (
        CONF_BASE_DELAY,
        CONF_MAX_DELAY,
        CONF_MULTIPLIER,
        CONF_JITTER,
        CONF_MAX_ATTEMPTS,
        CONF_FAILURE_THRESHOLD,
        CONF_RECOVERY_TIMEOUT,
    ),
}
COLLAPSED_SECTIONS: Final = frozenset({SECTION_CONNECTION, SECTION_RECONNECT})
FIELD_SECTION: Final[dict[str, str]] = {
    key: name for name, keys in SECTIONS.items() for key in keys
}


def options_schema(current: Mapping[str, Any]) -> vol.Schema:
    """The sectioned form, showing the flat options `current` (every option present)."""

    def marker(key: str) -> vol.Marker:
        if key in EMPTY_MEANS_DEFAULT:
            return vol.Optional(key, description={"suggested_value": current[key]})
        return vol.Required(key, default=current[key])

    return vol.Schema(
        {
            vol.Required(name): section(
                vol.Schema({marker(key): OPTION_FIELDS[key] for key in keys}),
                {"collapsed": name in COLLAPSED_SECTIONS},
            )
            for name, keys in SECTIONS.items()
        }
    )


def sectioned(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Flat options as the form's input: each option in its section (unknown keys dropped)."""
    return {
        name: {key: options[key] for key in keys if key in options}
        for name, keys in SECTIONS.items()
    }


def flat_input(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The form's sectioned input as flat options; an optional field left out or empty is empty."""
    flat: dict[str, Any] = {}
    for name, keys in SECTIONS.items():
        values: Mapping[str, Any] = user_input[name]
        for key in keys:
            value = values.get(key)
            if key in EMPTY_MEANS_DEFAULT and not value:
                value = copy(EMPTY_MEANS_DEFAULT[key])
            flat[key] = value
    return flat


def section_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Field errors keyed by their section, where the frontend shows them; "base" stays.

    One per section: the error of its first field in the form's order.
    """
    shown = {"base": errors["base"]} if "base" in errors else {}
    for key, name in FIELD_SECTION.items():
        if key in errors:
            shown.setdefault(name, errors[key])
    return shown


def normalize_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Flat input as stored: whole counts as int, lists stripped and de-duplicated, prefix stripped."""
    options: dict[str, Any] = {
        key: int(value) if key in INTEGER_OPTIONS else value for key, value in raw.items()
    }
    for key in (CONF_EVENT_TYPES, *PATTERN_OPTIONS):
        options[key] = list(dict.fromkeys(t.strip() for t in options[key]))
    options[CONF_MIRROR_PREFIX] = options[CONF_MIRROR_PREFIX].strip()
    return options


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
            current = flat_input(user_input)  # shown again as typed when there are errors
            options = normalize_options(current)
            field_errors = validate_options(options)
            if options[CONF_MIRROR_ENTITIES] and self._self_link:
                field_errors[CONF_MIRROR_ENTITIES] = "mirror_self_link"
            if not field_errors and options != self._unchecked:
                field_errors = await self._async_check_event_types(options, placeholders)
            if not field_errors:
                return self.async_create_entry(data=options)
            if field_errors.get("base") in _UNCHECKED_SAVE_ALLOWED:
                self._unchecked = options
            errors = section_errors(field_errors)
        else:
            current = options_with_defaults(dict(self.config_entry.options))
            if self._self_link:
                current[CONF_MIRROR_ENTITIES] = False  # refused for a link to this instance
        placeholders.setdefault("prefix", default_prefix(self.config_entry.title))
        return self.async_show_form(
            step_id="init",
            data_schema=options_schema(current),
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

        The check goes through the entry's token gate (token_gate.py): a rejection any
        connection met (or meets meanwhile) means no `auth` is sent; one the check meets is
        remembered. A re-authentication in progress means the same.
        """
        entry = self.config_entry
        gate = entry_token_gate(self.hass, entry)
        if gate.closed or any(entry.async_get_active_flows(self.hass, {SOURCE_REAUTH})):
            return {"base": "check_token_rejected"}
        try:
            refused = await async_refused_event_types(
                self.hass, entry.data, options[CONF_EVENT_TYPES], gate
            )
        except HaClientError as err:
            LOGGER.debug("Event types of %s not checked: %s", entry.title, type(err).__name__)
            placeholders["error"] = sanitize(str(err))
            if error_key(err) == "invalid_auth":
                return {"base": "check_token_rejected"}
            return {"base": "check_unreachable"}
        if refused:
            placeholders["refused"] = ", ".join(refused)
            return {CONF_EVENT_TYPES: "event_types_refused"}
        return {}


_UNCHECKED_SAVE_ALLOWED = frozenset({"check_unreachable", "check_token_rejected"})
