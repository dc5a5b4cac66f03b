"""Options flow: the sectioned form, its checks (against the fake remote over sockets), saving.

The entry's options stay flat; the form's input is sectioned (`sectioned` builds it from flat
options).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import (
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
    CONF_REJECTED_TOKEN,
    DEFAULT_OPTIONS,
    DOMAIN,
)
from custom_components.ha_ingestion.engine_config import options_with_defaults
from custom_components.ha_ingestion.mirror import MIRROR_DOMAINS
from custom_components.ha_ingestion.options_flow import (
    EMPTY_MEANS_DEFAULT,
    OPTION_FIELDS,
    SECTION_CAPTURE,
    SECTION_CONNECTION,
    SECTION_MIRRORING,
    SECTION_RECONNECT,
    SECTIONS,
    flat_input,
    section_errors,
    sectioned,
    validate_options,
)
from custom_components.ha_ingestion.token_gate import token_fingerprint, token_rejected

from .conftest import TEST_OPTIONS, link_state, linked_entry, wait_for
from .fake_ha import FakeHA
from .flow_form import as_opened, initial_data, serialized

# ---------------------------------------------------------------------- helpers


def _shown(result: FlowResult) -> dict[str, Any]:
    """The flat options the form shows (as the frontend fills it in)."""
    data = initial_data(serialized(result))
    return {key: value for name in SECTIONS for key, value in data[name].items()}


async def _configure(
    hass: HomeAssistant, result: FlowResult, options: dict[str, Any]
) -> FlowResult:
    """Submit flat options through the sectioned form."""
    return await hass.config_entries.options.async_configure(result["flow_id"], sectioned(options))


async def _options_form(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    return await hass.config_entries.options.async_init(entry.entry_id)


def _valid_options(result: FlowResult, **changes: Any) -> dict[str, Any]:
    # The fixture's fast retry delays are below the form's minimums: start from valid values.
    return {**_shown(result), CONF_BASE_DELAY: 0.1, CONF_MAX_DELAY: 1.0, **changes}


def _unloaded_entry(
    hass: HomeAssistant, fake_ha: FakeHA, options: dict[str, Any]
) -> MockConfigEntry:
    """An entry of the fake remote, not set up (its options are checked with its token)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=fake_ha.location_name,
        unique_id=fake_ha.user_id,
        data={CONF_URL: fake_ha.url, CONF_ACCESS_TOKEN: fake_ha.token},
        options=options,
    )
    entry.add_to_hass(hass)
    return entry


async def _unload_all(hass: HomeAssistant) -> None:
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


# ---------------------------------------------------------------------- the form


async def test_options_form_shows_current_values(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(init_integration.entry_id)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert result["errors"] == {}
    assert _shown(result) == {**DEFAULT_OPTIONS, **TEST_OPTIONS}


async def test_options_form_sections(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Every option in exactly one section; the tuning knobs collapsed; only fields whose empty
    value means the default are optional."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)

    fields = serialized(result)
    assert [(f["name"], f["type"], f["required"], f["expanded"]) for f in fields] == [
        (SECTION_CAPTURE, "expandable", True, True),
        (SECTION_MIRRORING, "expandable", True, True),
        (SECTION_CONNECTION, "expandable", True, False),
        (SECTION_RECONNECT, "expandable", True, False),
    ]
    inner = {f["name"]: [(g["name"], g["required"]) for g in f["schema"]] for f in fields}
    assert inner == {
        name: [(key, key not in EMPTY_MEANS_DEFAULT) for key in keys]
        for name, keys in SECTIONS.items()
    }
    assert sorted(key for keys in SECTIONS.values() for key in keys) == sorted(OPTION_FIELDS)
    assert set(EMPTY_MEANS_DEFAULT) == {
        CONF_MIRROR_INCLUDE,
        CONF_MIRROR_EXCLUDE,
        CONF_MIRROR_PREFIX,
    }


async def test_options_form_defaults_for_entry_without_options(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    entry = _unloaded_entry(hass, fake_ha, {})

    result = await hass.config_entries.options.async_init(entry.entry_id)

    assert _shown(result) == DEFAULT_OPTIONS
    # Not loaded: the event types are still checked with the entry's token, then saved.
    result = await hass.config_entries.options.async_configure(result["flow_id"], as_opened(result))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert fake_ha.connections[0].subscriptions == ["state_changed"]
    assert dict(entry.options) == DEFAULT_OPTIONS
    await _unload_all(hass)


CUSTOM_OPTIONS: dict[str, Any] = {
    CONF_EVENT_TYPES: ["state_changed", "call_service"],
    CONF_BASE_DELAY: 0.5,
    CONF_MAX_DELAY: 30.0,
    CONF_MAX_ATTEMPTS: 7,
    CONF_MIRROR_INCLUDE: ["sensor", "switch.pump"],
    CONF_MIRROR_EXCLUDE: ["sensor.secret_*"],
    CONF_MIRROR_PREFIX: "far",
    CONF_FORWARD_STATE_CHANGES: True,
}


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {CONF_MIRROR_PREFIX: ""},
        {CONF_MIRROR_ENTITIES: False, CONF_MIRROR_PREFIX: "", CONF_MIRROR_INCLUDE: []},
        CUSTOM_OPTIONS,
    ],
    ids=["no_options", "empty_prefix", "mirroring_off", "custom"],
)
async def test_options_form_submits_as_it_opens(
    hass: HomeAssistant, fake_ha: FakeHA, stored: dict[str, Any]
) -> None:
    """Saving the form exactly as it opens (the frontend's defaults and suggested values, empty
    optional fields left out) works and keeps the options as they were."""
    entry = _unloaded_entry(hass, fake_ha, stored)
    result = await hass.config_entries.options.async_init(entry.entry_id)

    result = await hass.config_entries.options.async_configure(result["flow_id"], as_opened(result))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert dict(entry.options) == options_with_defaults(stored)
    await _unload_all(hass)


@pytest.mark.parametrize("left_out", [True, False], ids=["left_out", "sent_empty"])
async def test_options_cleared_optional_fields_mean_the_default(
    hass: HomeAssistant, fake_ha: FakeHA, left_out: bool
) -> None:
    """Cleared prefix and patterns: left out (as the frontend sends an empty optional field) or
    sent empty, they are saved empty, which means the default; nothing old comes back."""
    entry = _unloaded_entry(hass, fake_ha, CUSTOM_OPTIONS)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    user_input = sectioned(_shown(result))
    for key, empty in EMPTY_MEANS_DEFAULT.items():
        if left_out:
            del user_input[SECTION_MIRRORING][key]
        else:
            user_input[SECTION_MIRRORING][key] = empty

    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert dict(entry.options) == {
        **options_with_defaults(CUSTOM_OPTIONS),
        CONF_MIRROR_INCLUDE: [],
        CONF_MIRROR_EXCLUDE: [],
        CONF_MIRROR_PREFIX: "",
    }
    await _unload_all(hass)


def test_flat_options_and_sections_round_trip() -> None:
    options = options_with_defaults(CUSTOM_OPTIONS)
    assert flat_input(sectioned(options)) == options
    assert sectioned({CONF_MIRROR_PREFIX: "far", "unknown": 1}) == {
        SECTION_CAPTURE: {},
        SECTION_MIRRORING: {CONF_MIRROR_PREFIX: "far"},
        SECTION_CONNECTION: {},
        SECTION_RECONNECT: {},
    }


def test_section_errors() -> None:
    """Shown at the section of the field (the frontend shows no error inside a section): one per
    section, its first field's in the form's order."""
    assert section_errors({}) == {}
    assert section_errors(
        {
            "base": "check_unreachable",
            CONF_MIRROR_PREFIX: "invalid_prefix",
            CONF_MIRROR_EXCLUDE: "invalid_patterns",
            CONF_BASE_DELAY: "base_greater_than_max",
        }
    ) == {
        "base": "check_unreachable",
        SECTION_MIRRORING: "invalid_patterns",
        SECTION_RECONNECT: "base_greater_than_max",
    }


NEW_OPTIONS: dict[str, Any] = {
    CONF_EVENT_TYPES: ["state_changed", " call_service ", "state_changed", "call_service"],
    CONF_BASE_DELAY: 0.5,
    CONF_MAX_DELAY: 30,
    CONF_MULTIPLIER: 1.5,
    CONF_JITTER: False,
    CONF_MAX_ATTEMPTS: 7.0,
    CONF_FAILURE_THRESHOLD: 3.0,
    CONF_RECOVERY_TIMEOUT: 20,
    CONF_HEARTBEAT_INTERVAL: 15,
    CONF_HEARTBEAT_TIMEOUT: 5,
    CONF_CONNECT_TIMEOUT: 8,
    CONF_FORWARD_EVENTS: False,
    CONF_BACKFILL: False,
    CONF_BACKFILL_MAX_WINDOW: 2.5,
    CONF_MIRROR_ENTITIES: True,
    CONF_MIRROR_INCLUDE: [" sensor ", "switch.pump", "sensor"],
    CONF_MIRROR_EXCLUDE: ["sensor.secret_*"],
    CONF_MIRROR_PREFIX: " far ",
    CONF_CONTROL: False,
    CONF_FORWARD_STATE_CHANGES: True,
}


async def test_options_saved_and_applied(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    old_runtime = entry.runtime_data
    fake_ha.expected_subscriptions = 2
    connections_before = len(fake_ha.connections)

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await _configure(hass, result, NEW_OPTIONS)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    expected = {
        **NEW_OPTIONS,
        CONF_EVENT_TYPES: ["state_changed", "call_service"],  # stripped, de-duplicated
        CONF_MAX_ATTEMPTS: 7,
        CONF_FAILURE_THRESHOLD: 3,
        CONF_MIRROR_INCLUDE: ["sensor", "switch.pump"],  # stripped, de-duplicated
        CONF_MIRROR_PREFIX: "far",
    }
    assert result["data"] == expected
    assert dict(entry.options) == expected
    assert type(entry.options[CONF_MAX_ATTEMPTS]) is int
    assert type(entry.options[CONF_FAILURE_THRESHOLD]) is int

    # Saving reloads the entry, whose link now runs with the new options.
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not old_runtime
    config = entry.runtime_data.coordinator.engine.config
    assert config.connection.heartbeat_interval == 15.0
    assert config.connection.heartbeat_timeout == 5.0
    assert config.connection.connect_timeout == 8.0
    assert config.connection.event_types == ("state_changed", "call_service")
    assert config.backoff.base == 0.5
    assert config.backoff.max_delay == 30.0
    assert config.backoff.multiplier == 1.5
    assert config.backoff.jitter is False
    assert config.breaker.failure_threshold == 3
    assert config.breaker.recovery_timeout == 20.0
    assert config.max_attempts == 7
    assert config.entities is not None
    assert config.entities.include == ("sensor", "switch.pump")
    assert config.entities.exclude == ("sensor.secret_*",)
    assert entry.runtime_data.mirror.prefix == "far"
    assert entry.runtime_data.capture.live.not_forwarded is None  # state changes still fired
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    # One connection checked the event types (subscribed, unsubscribed, closed) ...
    check = fake_ha.connections[connections_before]
    assert [c["type"] for c in check.commands][-4:] == [
        "subscribe_events",
        "unsubscribe_events",
        "subscribe_events",
        "unsubscribe_events",
    ]
    assert check.sub_ids == {}
    await fake_ha.wait_for(lambda: check.closed)
    # ... then the reloaded link subscribed to both.
    await fake_ha.wait_for(lambda: len(fake_ha.ready_connections) > connections_before + 1)
    assert fake_ha.ready_connections[-1].subscriptions == ["state_changed", "call_service"]


@pytest.mark.parametrize(
    ("bad", "errors"),
    [
        ({CONF_BASE_DELAY: 100, CONF_MAX_DELAY: 10}, {SECTION_RECONNECT: "base_greater_than_max"}),
        ({CONF_EVENT_TYPES: []}, {SECTION_CAPTURE: "invalid_event_types"}),
        (
            {CONF_EVENT_TYPES: ["state_changed", "bad type!"]},
            {SECTION_CAPTURE: "invalid_event_types"},
        ),
        ({CONF_EVENT_TYPES: ["   "]}, {SECTION_CAPTURE: "invalid_event_types"}),
        ({CONF_EVENT_TYPES: ["x" * 65]}, {SECTION_CAPTURE: "invalid_event_types"}),
        (
            {CONF_HEARTBEAT_INTERVAL: 2, CONF_HEARTBEAT_TIMEOUT: 20},
            {SECTION_CONNECTION: "heartbeat_timeout_too_long"},
        ),
        (
            {
                CONF_EVENT_TYPES: [],
                CONF_BASE_DELAY: 61,
                CONF_MAX_DELAY: 60,
                CONF_HEARTBEAT_INTERVAL: 1,
                CONF_HEARTBEAT_TIMEOUT: 10,
            },
            {
                SECTION_CAPTURE: "invalid_event_types",
                SECTION_RECONNECT: "base_greater_than_max",
                SECTION_CONNECTION: "heartbeat_timeout_too_long",
            },
        ),
    ],
)
async def test_options_errors_then_success(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    bad: dict[str, Any],
    errors: dict[str, str],
) -> None:
    entry = init_integration
    old_runtime = entry.runtime_data
    result = await hass.config_entries.options.async_init(entry.entry_id)
    # The fixture's fast retry delays are below the form's minimums: start from valid values.
    valid = {**_shown(result), CONF_BASE_DELAY: 0.1, CONF_MAX_DELAY: 1.0}

    result = await _configure(hass, result, {**valid, **bad})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert result["errors"] == errors
    assert dict(entry.options) == TEST_OPTIONS  # nothing saved
    shown = _shown(result)  # the form keeps what was typed
    for key, value in bad.items():
        assert shown[key] == value

    result = await _configure(hass, result, valid)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert dict(entry.options) == valid
    await hass.async_block_till_done()
    assert entry.runtime_data is not old_runtime
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_options_saved_unchanged_keep_the_link(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Saving the form with nothing changed does not restart the link (OptionsFlowWithReload)."""
    entry = init_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    valid = {**_shown(result), CONF_BASE_DELAY: 0.1, CONF_MAX_DELAY: 1.0}
    result = await _configure(hass, result, valid)
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    runtime = entry.runtime_data

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await _configure(hass, result, valid)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.runtime_data is runtime
    assert link_state(entry) is LinkState.CONNECTED


def test_validate_options_boundaries() -> None:
    good = options_with_defaults({})
    assert validate_options(good) == {}
    assert validate_options({**good, CONF_BASE_DELAY: 60.0, CONF_MAX_DELAY: 60.0}) == {}
    assert validate_options({**good, CONF_HEARTBEAT_INTERVAL: 1, CONF_HEARTBEAT_TIMEOUT: 9.9}) == {}
    assert validate_options({**good, CONF_EVENT_TYPES: ["a" * 64, "a.b:c-d_e"]}) == {}


# ---------------------------------------------------------------------- options: event types checked


async def test_options_refused_event_type_is_a_field_error(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """A type the token may not use (non-admin + call_service) is named in a field error."""
    entry = init_integration
    fake_ha.fail_subscriptions = {"call_service"}
    result = await _options_form(hass, entry)
    before = len(fake_ha.connections)

    chosen = ["state_changed", "call_service", "automation_triggered"]
    result = await _configure(hass, result, _valid_options(result, **{CONF_EVENT_TYPES: chosen}))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {SECTION_CAPTURE: "event_types_refused"}
    assert result["description_placeholders"] == {
        "refused": "call_service",
        "prefix": "remote_home",
    }
    assert dict(entry.options) == TEST_OPTIONS
    check = fake_ha.connections[before]
    assert check.subscriptions == ["state_changed", "automation_triggered"]
    assert check.sub_ids == {}  # every confirmed subscription was ended again
    await fake_ha.wait_for(lambda: check.closed)
    assert link_state(entry) is LinkState.CONNECTED  # the running link was not touched

    # Submitting the same again checks again (no way around a refusal the remote gave).
    result = await _configure(hass, result, _valid_options(result, **{CONF_EVENT_TYPES: chosen}))
    assert result["errors"] == {SECTION_CAPTURE: "event_types_refused"}

    result = await _configure(
        hass, result, _valid_options(result, **{CONF_EVENT_TYPES: ["state_changed"]})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_options_unreachable_remote_can_still_be_saved(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """During an outage the retry options matter most: a clear error, then save on resubmit."""
    entry = init_integration
    await fake_ha.go_down()
    result = await _options_form(hass, entry)
    wanted = _valid_options(result, **{CONF_HEARTBEAT_INTERVAL: 20})

    result = await _configure(hass, result, wanted)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "check_unreachable"}
    assert "nothing listening" in result["description_placeholders"]["error"]
    assert dict(entry.options) == TEST_OPTIONS

    # Changed values are checked again ...
    changed = {**wanted, CONF_HEARTBEAT_INTERVAL: 25}
    result = await _configure(hass, result, changed)
    assert result["errors"] == {"base": "check_unreachable"}

    # ... the same values submitted again are saved unchecked.
    result = await _configure(hass, result, changed)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_HEARTBEAT_INTERVAL] == 25
    await hass.async_block_till_done()
    await fake_ha.go_up()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_options_check_with_a_rejected_token(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The check itself meets a revoked token: said so, never sent again, saved on resubmit."""
    entry = init_integration
    fake_ha.token = "rotated-token"
    result = await _options_form(hass, entry)
    wanted = _valid_options(result)

    result = await _configure(hass, result, wanted)
    assert result["errors"] == {"base": "check_token_rejected"}
    assert fake_ha.auth_invalid_count == 1

    # The check's rejection is the link's: remembered, reauth offered.
    assert token_rejected(dict(entry.data))
    assert any(entry.async_get_active_flows(hass, {SOURCE_REAUTH}))

    result = await _configure(hass, result, wanted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert fake_ha.auth_invalid_count == 1
    await hass.async_block_till_done()  # the reload: its link does not send the token either
    await fake_ha.close_all()  # the remote ends the old link too
    assert entry.state is ConfigEntryState.LOADED
    assert link_state(entry) is LinkState.FAILED
    await hass.async_block_till_done()
    assert fake_ha.auth_invalid_count == 1
    assert fake_ha.auth_messages == 2  # the link's first (accepted), the check's


async def test_options_link_already_rejected_the_token(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The link knows the token was rejected: the check does not send it once more."""
    entry = mock_config_entry
    fake_ha.token = "rotated-token"
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    rejections = fake_ha.auth_invalid_count
    assert rejections == 1

    assert any(entry.async_get_active_flows(hass, {SOURCE_REAUTH}))

    result = await _options_form(hass, entry)
    result = await _configure(hass, result, _valid_options(result))

    assert result["errors"] == {"base": "check_token_rejected"}
    assert fake_ha.auth_invalid_count == rejections
    await _unload_all(hass)


async def test_options_running_link_rejected_the_token(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The token was revoked while linked: the link failed; the check does not send it."""
    entry = init_integration
    fake_ha.token = "rotated-token"
    await fake_ha.close_all(1000)
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    for flow in entry.async_get_active_flows(hass, {SOURCE_REAUTH}):
        hass.config_entries.flow.async_abort(flow["flow_id"])  # dismissed by the user
    rejections = fake_ha.auth_invalid_count

    result = await _options_form(hass, entry)
    result = await _configure(hass, result, _valid_options(result))

    assert result["errors"] == {"base": "check_token_rejected"}
    assert fake_ha.auth_invalid_count == rejections


async def test_options_check_and_link_at_once_send_a_revoked_token_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The check waits for the link's authentication in flight; its rejection ends both."""
    entry = init_integration
    result = await _options_form(hass, entry)
    wanted = _valid_options(result)
    sent = fake_ha.auth_messages
    fake_ha.auth_answer_delay = 0.3
    fake_ha.token = "rotated-token"
    await fake_ha.close_all(1000)
    await wait_for(lambda: fake_ha.auth_messages == sent + 1)  # the link's `auth` is out

    result = await _configure(hass, result, wanted)

    assert result["errors"] == {"base": "check_token_rejected"}
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    assert fake_ha.auth_messages == sent + 1
    assert fake_ha.auth_invalid_count == 1


async def test_options_of_an_unloaded_entry_with_a_rejected_token(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """Not loaded, its token remembered as rejected: the check sends nothing."""
    entry = _unloaded_entry(hass, fake_ha, dict(TEST_OPTIONS))
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_REJECTED_TOKEN: token_fingerprint(fake_ha.token)}
    )
    result = await _options_form(hass, entry)
    result = await _configure(hass, result, _valid_options(result))
    assert result["errors"] == {"base": "check_token_rejected"}
    assert fake_ha.upgrade_count == 0


async def test_options_of_an_unloaded_entry_remember_a_rejection(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """Not loaded, the check meets a rejection: remembered, so its setup does not send it."""
    entry = _unloaded_entry(hass, fake_ha, dict(TEST_OPTIONS))
    fake_ha.token = "rotated-token"
    result = await _options_form(hass, entry)
    result = await _configure(hass, result, _valid_options(result))
    assert result["errors"] == {"base": "check_token_rejected"}
    assert token_rejected(dict(entry.data))
    assert fake_ha.auth_invalid_count == 1
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert link_state(entry) is LinkState.FAILED
    assert fake_ha.auth_invalid_count == 1
    await _unload_all(hass)


# ---------------------------------------------------------------------- mirror options


@pytest.mark.parametrize(
    ("bad", "errors"),
    [
        ({CONF_MIRROR_INCLUDE: ["Sensor"]}, {SECTION_MIRRORING: "invalid_patterns"}),
        ({CONF_MIRROR_EXCLUDE: ["sensor.a b"]}, {SECTION_MIRRORING: "invalid_patterns"}),
        (
            {CONF_MIRROR_INCLUDE: ["sensor.a"], CONF_MIRROR_EXCLUDE: ["sensor"]},
            {SECTION_MIRRORING: "mirror_nothing_matches"},
        ),
        (
            {CONF_MIRROR_EXCLUDE: list(MIRROR_DOMAINS)},
            {SECTION_MIRRORING: "mirror_nothing_matches"},
        ),
        ({CONF_MIRROR_PREFIX: "Far Away"}, {SECTION_MIRRORING: "invalid_prefix"}),
        ({CONF_MIRROR_PREFIX: "far__away"}, {SECTION_MIRRORING: "invalid_prefix"}),
    ],
)
async def test_mirror_options_are_validated(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    bad: dict[str, Any],
    errors: dict[str, str],
) -> None:
    result = await _options_form(hass, init_integration)
    result = await _configure(
        hass, result, _valid_options(result, **{CONF_MIRROR_ENTITIES: True, **bad})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert dict(init_integration.options) == TEST_OPTIONS


def test_nothing_matches_only_matters_while_mirroring() -> None:
    options = {
        **options_with_defaults({}),
        CONF_MIRROR_ENTITIES: False,
        CONF_MIRROR_INCLUDE: ["sensor.a"],
        CONF_MIRROR_EXCLUDE: ["sensor"],
    }
    assert validate_options(options) == {}


async def test_mirroring_is_refused_for_a_link_to_this_instance(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    user = await hass.auth.async_create_user("Self link")
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name="self", token_type="long_lived_access_token"
    )
    fake_ha.token = hass.auth.async_create_access_token(refresh)
    entry = linked_entry(fake_ha, **{CONF_MIRROR_ENTITIES: True})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    mirror = entry.runtime_data.mirror
    assert not mirror.enabled  # the saved option cannot turn it on
    assert mirror.refused == "self_link"
    assert entry.runtime_data.coordinator.engine.config.entities is None

    result = await _options_form(hass, entry)
    assert _shown(result)[CONF_MIRROR_ENTITIES] is False  # shown off
    result = await _configure(hass, result, _valid_options(result, **{CONF_MIRROR_ENTITIES: True}))
    assert result["errors"] == {SECTION_MIRRORING: "mirror_self_link"}
    result = await _configure(hass, result, _valid_options(result, **{CONF_MIRROR_ENTITIES: False}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_MIRROR_ENTITIES] is False
    assert entry.options[CONF_FORWARD_STATE_CHANGES] is False
    await _unload_all(hass)


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_sections_are_translated(name: str) -> None:
    """Each section is named and described, and labels and describes exactly its own fields."""
    path = Path(__file__).parent.parent / "custom_components" / DOMAIN / name
    step = json.loads(path.read_text(encoding="utf-8"))["options"]["step"]["init"]
    assert "data" not in step  # every field is in a section
    assert list(step["sections"]) == list(SECTIONS)
    for section_name, keys in SECTIONS.items():
        texts = step["sections"][section_name]
        assert texts["name"]
        assert texts["description"]
        assert list(texts["data"]) == list(keys)
        assert list(texts["data_description"]) == list(keys)
    assert "empty" in step["sections"][SECTION_MIRRORING]["data_description"][CONF_MIRROR_PREFIX]
