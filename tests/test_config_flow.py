"""Config flow: user, zeroconf, reauth and reconfigure, validated against the fake remote over sockets."""

from __future__ import annotations

from ipaddress import ip_address
import logging
import socket
import time
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntryDisabler,
    ConfigEntryState,
)
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers import entity_registry as er, instance_id
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion import flow_remote
from custom_components.ha_ingestion.client import HaSSLError, LinkState
from custom_components.ha_ingestion.const import (
    CONF_DISCOVERY_URL,
    CONF_REJECTED_TOKEN,
    CONF_REMOTE_USER_ID,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from custom_components.ha_ingestion.token_gate import token_fingerprint, token_rejected

from .conftest import TEST_OPTIONS, link_state, wait_for
from .fake_ha import FakeHA
from .flow_form import as_opened, empty_required, initial_data, serialized

VALIDATE = "custom_components.ha_ingestion.config_flow.async_validate_remote"


# ---------------------------------------------------------------------- helpers


def _shown(result: FlowResult) -> dict[str, Any]:
    """What a form opens with, as the frontend fills it in (a token field starts empty)."""
    return initial_data(serialized(result))


def _fields(result: FlowResult) -> list[str]:
    return [str(key) for key in result["data_schema"].schema]


def _user_input(url: str, token: str, verify_ssl: bool = True) -> dict[str, Any]:
    return {CONF_URL: url, CONF_ACCESS_TOKEN: token, CONF_VERIFY_SSL: verify_ssl}


def _entry_data(fake_ha: FakeHA, verify_ssl: bool = True, **extra: str) -> dict[str, Any]:
    """What a created entry stores for the fake remote."""
    return {
        **_user_input(fake_ha.url, fake_ha.token, verify_ssl),
        CONF_REMOTE_USER_ID: fake_ha.user_id,
        **extra,
    }


@pytest.fixture
def closed_port(fake_ha: FakeHA) -> int:
    """A port on 127.0.0.1 nobody listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _start_user_flow(hass: HomeAssistant) -> FlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result


async def _finish_user_flow(hass: HomeAssistant, flow_id: str, fake_ha: FakeHA) -> FlowResult:
    """Submit the right input in a flow that showed an error: it must create the entry."""
    result = await hass.config_entries.flow.async_configure(
        flow_id, _user_input(f"127.0.0.1:{fake_ha.port}", fake_ha.token)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == fake_ha.location_name
    assert result["data"] == _entry_data(fake_ha)
    assert result["result"].unique_id == fake_ha.user_id
    # The user is told which address the link settled on.
    assert result["description"] == "linked"
    assert result["description_placeholders"] == {
        "name": fake_ha.location_name,
        "url": f"{fake_ha.http_url}/",
        "version": fake_ha.version,
    }
    await hass.async_block_till_done()
    return result


async def _unload_all(hass: HomeAssistant) -> None:
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


# ---------------------------------------------------------------------- user step: form


async def test_user_form_prefills_own_url(hass: HomeAssistant) -> None:
    await async_process_ha_core_config(hass, {"internal_url": "http://192.168.1.20:8123"})

    result = await _start_user_flow(hass)

    assert _fields(result) == [CONF_URL, CONF_ACCESS_TOKEN, CONF_VERIFY_SSL]
    assert _shown(result) == {
        CONF_URL: "http://192.168.1.20:8123",
        CONF_ACCESS_TOKEN: "",
        CONF_VERIFY_SSL: True,
    }


async def test_user_form_url_empty_without_own_url(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "http", {})
    hass.config.api = None  # no HTTP server address known, no internal/external URL, no cloud
    assert hass.config.internal_url is None
    assert hass.config.external_url is None

    result = await _start_user_flow(hass)

    assert _shown(result) == {CONF_URL: "", CONF_ACCESS_TOKEN: "", CONF_VERIFY_SSL: True}
    # The URL is required and empty: the frontend asks for it (and for the token).
    assert empty_required(serialized(result), _shown(result)) == {CONF_URL, CONF_ACCESS_TOKEN}


# ---------------------------------------------------------------------- user step: success


@pytest.mark.parametrize(
    "url_form",
    [
        "127.0.0.1:{port}",
        "http://127.0.0.1:{port}",
        "http://127.0.0.1:{port}/",
        "ws://127.0.0.1:{port}/api/websocket",
        "  ws://127.0.0.1:{port}/api/websocket/  ",
    ],
)
async def test_user_creates_entry(hass: HomeAssistant, fake_ha: FakeHA, url_form: str) -> None:
    fake_ha.location_name = "Remote Home"
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(url_form.format(port=fake_ha.port), fake_ha.token, False)
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Remote Home"
    assert result["data"] == _entry_data(fake_ha, verify_ssl=False)
    entry = result["result"]
    assert entry.unique_id == fake_ha.user_id
    # The flow really authenticated and read the identity, then closed its connection.
    validation = fake_ha.connections[0]
    assert validation.authenticated
    assert [c["type"] for c in validation.commands] == [
        "supported_features",
        "get_config",
        "auth/current_user",
    ]
    await fake_ha.wait_for(lambda: validation.closed)
    # ... and the new entry links to the remote.
    assert entry.state is ConfigEntryState.LOADED
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await _unload_all(hass)


async def test_user_unique_id_falls_back_to_url(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    """A remote that does not tell the user id is identified by its normalized URL."""
    fake_ha.user_id = ""
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(f"127.0.0.1:{fake_ha.port}", fake_ha.token)
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == fake_ha.url
    assert result["result"].data[CONF_REMOTE_USER_ID] == fake_ha.url
    await _unload_all(hass)


# ---------------------------------------------------------------------- user step: errors


@pytest.mark.parametrize("bad_url", ["http://", "ftp://x", "", "   ", "http://host:99999"])
async def test_user_invalid_url_then_success(
    hass: HomeAssistant, fake_ha: FakeHA, bad_url: str
) -> None:
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(bad_url, fake_ha.token, False)
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_URL: "invalid_url"}
    # What the user typed stays in the form; nothing was sent anywhere.
    assert _shown(result) == {CONF_URL: bad_url, CONF_ACCESS_TOKEN: "", CONF_VERIFY_SSL: False}
    # Suggested, never a default: a URL typed empty leaves the required field empty to fill in.
    assert [f for f in serialized(result) if "default" in f] == [
        {"name": CONF_VERIFY_SSL, "required": True, "default": False, "selector": {"boolean": {}}}
    ]
    assert fake_ha.tcp_accept_count == 0

    await _finish_user_flow(hass, result["flow_id"], fake_ha)
    await _unload_all(hass)


async def test_user_invalid_auth_then_success(
    hass: HomeAssistant, fake_ha: FakeHA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_token = "wrong-token-0123456789abcdef-do-not-log"
    url_secret = "url-password-do-not-log"
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _user_input(f"http://user:{url_secret}@127.0.0.1:{fake_ha.port}", wrong_token),
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_ha.auth_invalid_count == 1
    assert fake_ha.auth_ok_count == 0
    assert "HaAuthenticationError" in caplog.text  # the failure is logged ...
    assert wrong_token not in caplog.text  # ... but never the token
    assert url_secret not in caplog.text  # ... nor credentials in the URL

    caplog.clear()
    await _finish_user_flow(hass, result["flow_id"], fake_ha)
    assert fake_ha.token not in caplog.text
    await _unload_all(hass)


async def test_user_cannot_connect_then_success(
    hass: HomeAssistant, fake_ha: FakeHA, closed_port: int
) -> None:
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(f"127.0.0.1:{closed_port}", fake_ha.token)
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert _shown(result)[CONF_URL] == f"127.0.0.1:{closed_port}"

    await _finish_user_flow(hass, result["flow_id"], fake_ha)
    await _unload_all(hass)


async def test_user_not_home_assistant_then_success(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    fake_ha.http_status = 404
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(fake_ha.http_url, fake_ha.token)
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "not_home_assistant"}
    assert fake_ha.http_requests == 1
    assert fake_ha.upgrade_count == 0

    fake_ha.http_status = None
    await _finish_user_flow(hass, result["flow_id"], fake_ha)
    await _unload_all(hass)


async def test_user_timeout_then_success(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    fake_ha.hang_before_upgrade = True
    result = await _start_user_flow(hass)

    with patch.object(flow_remote, "VALIDATION_TIMEOUT", 0.3):
        started = time.monotonic()
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input(fake_ha.url, fake_ha.token)
        )
        elapsed = time.monotonic() - started

        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "timeout"}
        assert fake_ha.http_requests == 1  # the request reached the remote, which hung
        # The patched 0.3 s limit ended it, not the default 10 s one (a timeout never fires
        # early; the bound below leaves a 30-fold margin for a busy machine).
        assert 0.25 <= elapsed < 9.5

        fake_ha.hang_before_upgrade = False
        await _finish_user_flow(hass, result["flow_id"], fake_ha)
    await _unload_all(hass)


async def test_user_ssl_error_then_success(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    result = await _start_user_flow(hass)

    with patch(VALIDATE, side_effect=HaSSLError("certificate verify failed")) as validate:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input("https://ha.example.com", "some-token")
        )
    validate.assert_awaited_once_with(  # a token the user just typed: no gate of an entry
        hass, "wss://ha.example.com/api/websocket", "some-token", True, token_gate=None
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "ssl_error"}

    await _finish_user_flow(hass, result["flow_id"], fake_ha)
    await _unload_all(hass)


async def test_user_unknown_error_then_success(
    hass: HomeAssistant, fake_ha: FakeHA, caplog: pytest.LogCaptureFixture
) -> None:
    result = await _start_user_flow(hass)

    with patch(VALIDATE, side_effect=RuntimeError("boom")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input(fake_ha.url, fake_ha.token)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while validating the remote" in caplog.text

    await _finish_user_flow(hass, result["flow_id"], fake_ha)
    await _unload_all(hass)


# ---------------------------------------------------------------------- already configured


@pytest.mark.parametrize(
    "second_url",
    [
        "ws://127.0.0.1:{port}/api/websocket",
        "127.0.0.1:{port}",
        "http://127.0.0.1:{port}/",
    ],
)
async def test_user_already_configured(
    hass: HomeAssistant, fake_ha: FakeHA, second_url: str
) -> None:
    result = await _start_user_flow(hass)
    first = await _finish_user_flow(hass, result["flow_id"], fake_ha)

    result = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(second_url.format(port=fake_ha.port), fake_ha.token)
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert hass.config_entries.async_entries(DOMAIN) == [first["result"]]
    await _unload_all(hass)


# ---------------------------------------------------------------------- reauth


async def test_reauth_error_then_success(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    old_runtime = entry.runtime_data
    fake_ha.token = "new-token"  # the old token was revoked on the remote

    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"name": entry.title}
    assert _fields(result) == [CONF_ACCESS_TOKEN]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: "still-wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data[CONF_ACCESS_TOKEN] != "new-token"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: "new-token"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_ACCESS_TOKEN] == "new-token"
    assert entry.data[CONF_URL] == fake_ha.url

    # The entry was reloaded and links with the new token.
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not old_runtime
    assert entry.runtime_data.coordinator.engine.config.connection.token == "new-token"
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_reauth_after_rejected_token_at_setup(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The realistic path: a revoked token at setup; the entry loads failed, reauth starts."""
    entry = mock_config_entry
    fake_ha.token = "rotated-token"
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert link_state(entry) is LinkState.FAILED

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_REAUTH
    assert flows[0]["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_ACCESS_TOKEN: "rotated-token"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert "rejected_token" not in entry.data  # the new token worked: the old one is forgotten
    await _unload_all(hass)


async def test_reauth_wrong_account(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    old_token = entry.data[CONF_ACCESS_TOKEN]
    fake_ha.user_id = "0123456789abcdef0123456789abcdef"  # the token belongs to another user
    fake_ha.token = "token-of-another-user"

    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: "token-of-another-user"}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert entry.data[CONF_ACCESS_TOKEN] == old_token
    assert entry.unique_id != fake_ha.user_id


# ---------------------------------------------------------------------- reconfigure


async def test_reconfigure_form_and_success(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    old_runtime = entry.runtime_data

    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"name": entry.title}
    assert _shown(result) == {CONF_URL: fake_ha.url, CONF_VERIFY_SSL: True}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"http://127.0.0.1:{fake_ha.port}/", CONF_VERIFY_SSL: False}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {
        CONF_URL: fake_ha.url,  # stored normalized
        CONF_ACCESS_TOKEN: fake_ha.token,
        CONF_VERIFY_SSL: False,
    }

    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not old_runtime
    assert entry.runtime_data.coordinator.engine.config.connection.verify_ssl is False
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_reconfigure_errors_then_success(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA, closed_port: int
) -> None:
    entry = init_integration
    result = await entry.start_reconfigure_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "ftp://x", CONF_VERIFY_SSL: False}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {CONF_URL: "invalid_url"}
    assert _shown(result) == {CONF_URL: "ftp://x", CONF_VERIFY_SSL: False}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"127.0.0.1:{closed_port}", CONF_VERIFY_SSL: True}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_URL] == fake_ha.url

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"127.0.0.1:{fake_ha.port}", CONF_VERIFY_SSL: True}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == fake_ha.url
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)


async def test_reconfigure_different_instance(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    entry = init_integration
    old_data = dict(entry.data)
    fake_ha.user_id = "fedcba9876543210fedcba9876543210"  # now another Home Assistant answers

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"127.0.0.1:{fake_ha.port}", CONF_VERIFY_SSL: False}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "different_instance"
    assert dict(entry.data) == old_data


async def test_reconfigure_after_the_links_rejection_sends_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The entry's token was rejected: reconfigure does not send it (reauth first)."""
    entry = init_integration
    fake_ha.token = "rotated-token"
    await fake_ha.close_all()
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    upgrades = fake_ha.upgrade_count
    old_data = dict(entry.data)

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"127.0.0.1:{fake_ha.port}", CONF_VERIFY_SSL: True}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_ha.upgrade_count == upgrades  # not even a connection
    assert fake_ha.auth_invalid_count == 1
    assert dict(entry.data) == old_data


async def test_reconfigure_of_an_unloaded_entry_with_a_rejected_token(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=fake_ha.user_id,
        data={**_entry_data(fake_ha), CONF_REJECTED_TOKEN: token_fingerprint(fake_ha.token)},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: fake_ha.url, CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_ha.upgrade_count == 0


async def test_reconfigure_check_meets_the_rejection(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The check is rejected (the link still up): neither it nor the link sends it again."""
    entry = init_integration
    fake_ha.token = "rotated-token"
    result = await entry.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: fake_ha.url, CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_ha.auth_invalid_count == 1
    assert token_rejected(dict(entry.data))
    upgrades = fake_ha.upgrade_count
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: fake_ha.url, CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_ha.upgrade_count == upgrades
    hass.config_entries.flow.async_abort(flow_id)  # the user closes the form

    await fake_ha.close_all()  # the remote ends the link too
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    await hass.async_block_till_done()
    assert fake_ha.auth_invalid_count == 1
    assert fake_ha.upgrade_count == upgrades
    # Home Assistant starts no reauth while a reconfigure flow is open: now it is offered.
    assert any(entry.async_get_active_flows(hass, {SOURCE_REAUTH}))


async def test_reauth_with_the_rejected_token_working_again(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """The user gives the same token (its user was active again): it is the user's to try."""
    entry = mock_config_entry
    token = entry.data[CONF_ACCESS_TOKEN]
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_REJECTED_TOKEN: token_fingerprint(token)}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert link_state(entry) is LinkState.FAILED
    assert fake_ha.upgrade_count == 0
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_ACCESS_TOKEN: token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert CONF_REJECTED_TOKEN not in entry.data
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    assert fake_ha.auth_invalid_count == 0
    await _unload_all(hass)


# ---------------------------------------------------------------------- bare host: 8123, then 80


def test_candidate_urls() -> None:
    assert flow_remote.candidate_urls("homeassistant.local") == [
        "ws://homeassistant.local:8123/api/websocket",
        "ws://homeassistant.local/api/websocket",
    ]
    assert flow_remote.candidate_urls(" 192.168.1.5/ ") == [
        "ws://192.168.1.5:8123/api/websocket",
        "ws://192.168.1.5/api/websocket",
    ]
    # A port or a scheme is what the user asked for: exactly that address.
    assert flow_remote.candidate_urls("homeassistant.local:80") == [
        "ws://homeassistant.local/api/websocket"
    ]
    assert flow_remote.candidate_urls("http://homeassistant.local") == [
        "ws://homeassistant.local/api/websocket"
    ]
    assert flow_remote.candidate_urls("https://ha.example.com") == [
        "wss://ha.example.com/api/websocket"
    ]


@pytest.fixture
async def other_ha(socket_enabled: None) -> Any:
    """A second fake Home Assistant (another port of the same host)."""
    server = FakeHA(location_name="Other Home", user_id="other-user")
    await server.start()
    yield server
    await server.stop()


async def test_bare_host_falls_back_to_second_port(
    hass: HomeAssistant, fake_ha: FakeHA, closed_port: int
) -> None:
    """Nothing listens on the first port (a Home Assistant OS on port 80): the second is used."""
    result = await _start_user_flow(hass)

    with patch.object(flow_remote, "BARE_HOST_PORTS", (closed_port, fake_ha.port)):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input("127.0.0.1", fake_ha.token)
        )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == fake_ha.url
    assert result["description_placeholders"]["url"] == f"{fake_ha.http_url}/"
    await _unload_all(hass)


async def test_bare_host_prefers_first_port(
    hass: HomeAssistant, fake_ha: FakeHA, other_ha: FakeHA
) -> None:
    """Both ports answer: the first (8123, Home Assistant's own) wins, the second is not tried."""
    result = await _start_user_flow(hass)

    with patch.object(flow_remote, "BARE_HOST_PORTS", (fake_ha.port, other_ha.port)):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input("127.0.0.1", fake_ha.token)
        )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == fake_ha.url
    assert other_ha.tcp_accept_count == 0
    await _unload_all(hass)


async def test_bare_host_rejected_token_is_not_sent_again(
    hass: HomeAssistant, fake_ha: FakeHA, other_ha: FakeHA
) -> None:
    """A Home Assistant on the first port rejects the token: the search ends there."""
    result = await _start_user_flow(hass)

    with patch.object(flow_remote, "BARE_HOST_PORTS", (fake_ha.port, other_ha.port)):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input("127.0.0.1", "wrong-token")
        )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_ha.auth_invalid_count == 1
    assert other_ha.tcp_accept_count == 0


async def test_bare_host_reports_the_most_telling_error(
    hass: HomeAssistant, fake_ha: FakeHA, closed_port: int
) -> None:
    """Nothing on 8123, a web server that is not Home Assistant on 80: say the latter."""
    fake_ha.http_status = 404
    result = await _start_user_flow(hass)

    with patch.object(flow_remote, "BARE_HOST_PORTS", (closed_port, fake_ha.port)):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input("127.0.0.1", fake_ha.token)
        )
        assert result["errors"] == {"base": "not_home_assistant"}

        # Nothing answers on either port.
        await fake_ha.go_down()
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input("127.0.0.1", fake_ha.token)
        )
        assert result["errors"] == {"base": "cannot_connect"}
    assert fake_ha.auth_ok_count == 0


# ---------------------------------------------------------------------- self-link


async def test_self_link_is_identified_by_own_uuid(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    """The token's user exists here: the remote is this instance, identified by its uuid."""
    user = await hass.auth.async_create_user("Link")
    fake_ha.user_id = user.id
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(fake_ha.url, fake_ha.token)
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == await instance_id.async_get(hass)
    assert result["result"].data[CONF_REMOTE_USER_ID] == user.id
    await _unload_all(hass)


# ---------------------------------------------------------------------- zeroconf discovery

REMOTE_UUID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _announcement(
    port: int, uuid: str = REMOTE_UUID, address: str = "127.0.0.1", **properties: str
) -> ZeroconfServiceInfo:
    """What Home Assistant's zeroconf announces (components/zeroconf: local service info)."""
    host = f"[{address}]" if ":" in address else address
    return ZeroconfServiceInfo(
        ip_address=ip_address(address),
        ip_addresses=[ip_address(address)],
        port=port,
        hostname=f"{uuid}.local.",
        type="_home-assistant._tcp.local.",
        name="Remote Home._home-assistant._tcp.local.",
        properties={
            "location_name": "Remote Home",
            "uuid": uuid,
            "version": "2026.10.4",
            "external_url": "",
            "internal_url": f"http://{host}:{port}",
            "base_url": f"http://{host}:{port}",
            **properties,
        },
    )


async def _discover(hass: HomeAssistant, info: ZeroconfServiceInfo) -> FlowResult:
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=info
    )


def test_discovered_url() -> None:
    assert flow_remote.discovered_url(_announcement(8123, address="192.168.1.5")) == (
        "ws://192.168.1.5:8123/api/websocket"
    )
    assert flow_remote.discovered_url(_announcement(8123, address="fd00::5")) == (
        "ws://[fd00::5]:8123/api/websocket"
    )
    # TLS: the certificate is for the name in the internal URL, not for the address.
    assert flow_remote.discovered_url(
        _announcement(8123, internal_url="https://ha.home.example:8123")
    ) == ("wss://ha.home.example:8123/api/websocket")


def test_announced_addresses() -> None:
    info = _announcement(
        8123,
        address="192.168.1.5",
        internal_url="http://homeassistant.local:8123",
        external_url="https://HA.example.com",
        base_url="not a url ftp://",
    )
    assert flow_remote.announced_addresses(info) == {
        ("192.168.1.5", 8123),
        ("homeassistant.local", 8123),
        ("ha.example.com", 443),
    }


async def test_zeroconf_offers_instance_and_asks_only_for_token(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="elsewhere-user",
        data=_user_input("wss://elsewhere.example.com/api/websocket", "t"),
        disabled_by=ConfigEntryDisabler.USER,
    )
    other.add_to_hass(hass)  # another remote (disabled): neither matched nor in the way
    result = await _discover(hass, _announcement(fake_ha.port))

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert _fields(result) == [CONF_ACCESS_TOKEN]
    assert result["description_placeholders"] == {
        "name": "Remote Home",
        "version": "2026.10.4",
        "url": f"{fake_ha.http_url}/",
    }
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"] == {"name": "Remote Home"}
    assert flow["context"]["unique_id"] == REMOTE_UUID
    assert fake_ha.tcp_accept_count == 0  # nothing is sent before the user gives a token

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: "wrong-token"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: fake_ha.token}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == fake_ha.location_name
    entry = result["result"]
    assert entry.unique_id == REMOTE_UUID
    assert dict(entry.data) == _entry_data(fake_ha, **{CONF_DISCOVERY_URL: fake_ha.url})
    assert result["description"] == "linked"
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)

    # Announced again (every start of either side): nothing new is offered.
    result = await _discover(hass, _announcement(fake_ha.port))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    await _unload_all(hass)


async def test_zeroconf_ignores_own_instance(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    own = await instance_id.async_get(hass)

    result = await _discover(hass, _announcement(fake_ha.port, uuid=own))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "own_instance"
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_zeroconf_without_uuid(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    result = await _discover(hass, _announcement(fake_ha.port, uuid=""))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_home_assistant"


async def test_zeroconf_follows_a_moved_instance(
    hass: HomeAssistant, fake_ha: FakeHA, closed_port: int
) -> None:
    """discovery-update-info: the entry still uses the address discovery gave it; it moved."""
    old_url = f"ws://127.0.0.1:{closed_port}/api/websocket"
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Remote Home",
        unique_id=REMOTE_UUID,
        data={
            **_entry_data(fake_ha),
            CONF_URL: old_url,
            CONF_DISCOVERY_URL: old_url,
        },
        options=dict(TEST_OPTIONS),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert link_state(entry) is not LinkState.CONNECTED

    result = await _discover(hass, _announcement(fake_ha.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == fake_ha.url
    assert entry.data[CONF_DISCOVERY_URL] == fake_ha.url
    await hass.async_block_till_done()
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await _unload_all(hass)


async def test_zeroconf_keeps_an_address_the_user_chose(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """An entry reached at another address (reconfigured by the user) is left alone."""
    data = {
        **_entry_data(fake_ha),
        CONF_URL: "wss://ha.example.com/api/websocket",
        CONF_DISCOVERY_URL: "ws://192.168.1.5:8123/api/websocket",
    }
    entry = MockConfigEntry(domain=DOMAIN, unique_id=REMOTE_UUID, data=data)
    entry.add_to_hass(hass)

    result = await _discover(hass, _announcement(fake_ha.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert dict(entry.data) == data


async def test_zeroconf_adopts_an_entry_added_by_hand(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    """Same host and port as a hand-made entry: that entry is this instance; its unique id
    becomes the uuid, its entities keep their entity ids, reauth still checks the same user."""
    entry = init_integration
    registry = er.async_get(hass)
    # An entity whose unique id is not built on the entry's is left as it is.
    foreign = registry.async_get_or_create("sensor", DOMAIN, "foreign", config_entry=entry)
    before = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert all(uid.startswith(f"{fake_ha.user_id}_") for uid in before.values() if uid != "foreign")

    result = await _discover(hass, _announcement(fake_ha.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.unique_id == REMOTE_UUID
    assert entry.data[CONF_REMOTE_USER_ID] == fake_ha.user_id
    assert entry.data[CONF_DISCOVERY_URL] == fake_ha.url  # reached at the announced address
    await hass.async_block_till_done()
    after = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert after == {
        entity_id: f"{REMOTE_UUID}_{uid.removeprefix(f'{fake_ha.user_id}_')}"
        if entity_id != foreign.entity_id
        else "foreign"
        for entity_id, uid in before.items()
    }
    assert entry.state is ConfigEntryState.LOADED
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    assert hass.states.get("binary_sensor.remote_home_connected").state == "on"

    # The identity check of reauth now uses the stored user id.
    fake_ha.user_id = "another-user"
    fake_ha.token = "token-of-another-user"
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: "token-of-another-user"}
    )
    assert result["reason"] == "wrong_account"


async def test_zeroconf_adopts_by_announced_url(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    """Matched through the announced external URL: adopted, but the URL does not follow
    the local address (the user chose the external one)."""
    data = {
        CONF_URL: "wss://ha.example.com/api/websocket",
        CONF_ACCESS_TOKEN: "t",
        CONF_VERIFY_SSL: True,
    }
    entry = MockConfigEntry(domain=DOMAIN, unique_id="remote-user-9", data=data)
    entry.add_to_hass(hass)

    result = await _discover(
        hass, _announcement(fake_ha.port, external_url="https://ha.example.com")
    )

    assert result["reason"] == "already_configured"
    assert entry.unique_id == REMOTE_UUID
    assert dict(entry.data) == {**data, CONF_REMOTE_USER_ID: "remote-user-9"}


async def test_zeroconf_same_remote_already_linked_elsewhere(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """Linked by hand through an address discovery does not announce: the token tells."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=fake_ha.user_id,
        data={**_user_input(f"ws://localhost:{fake_ha.port}/api/websocket", fake_ha.token)},
    )
    entry.add_to_hass(hass)

    result = await _discover(hass, _announcement(fake_ha.port))
    assert result["step_id"] == "zeroconf_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ACCESS_TOKEN: fake_ha.token}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_user_refuses_remote_linked_through_discovery(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """The same remote and user, now known by its uuid, cannot be added again by hand."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=REMOTE_UUID, data=_entry_data(fake_ha))
    entry.add_to_hass(hass)
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(f"127.0.0.1:{fake_ha.port}", fake_ha.token)
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("credentials", ["", "user:secret@"])
async def test_user_flow_takes_the_uuid_of_a_pending_discovery(
    hass: HomeAssistant, fake_ha: FakeHA, credentials: str
) -> None:
    """Added by hand while discovery offers the same address: identified by the uuid at once,
    and the discovery offer goes away. It follows moves only if it uses the offered URL as it
    is (not with credentials of its own)."""
    offered = await _discover(hass, _announcement(fake_ha.port))
    assert offered["step_id"] == "zeroconf_confirm"
    flow = hass.config_entries.flow.async_get(offered["flow_id"])
    assert flow["context"]["configuration_url"] == f"{fake_ha.http_url}/"

    result = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _user_input(f"http://{credentials}127.0.0.1:{fake_ha.port}", fake_ha.token),
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == REMOTE_UUID
    assert (entry.data.get(CONF_DISCOVERY_URL) == fake_ha.url) is (not credentials)
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    await _unload_all(hass)


async def test_user_flow_at_another_address_than_a_pending_discovery(
    hass: HomeAssistant, fake_ha: FakeHA
) -> None:
    """Discovery offers another address: the hand-made link keeps the user id identity; a
    discovery at an https internal URL follows nothing the user typed either."""
    await _discover(
        hass, _announcement(fake_ha.port, address="192.168.1.5", internal_url="https://ha.lan:1")
    )
    result = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(f"127.0.0.1:{fake_ha.port}", fake_ha.token)
    )
    await hass.async_block_till_done()

    assert result["result"].unique_id == fake_ha.user_id
    assert CONF_DISCOVERY_URL not in result["result"].data
    await _unload_all(hass)


async def test_manifest_zeroconf_matcher_reaches_home_assistant(hass: HomeAssistant) -> None:
    """Home Assistant's loader hands `_home-assistant._tcp.local.` announcements to this flow."""
    from homeassistant.loader import async_get_zeroconf

    matchers = await async_get_zeroconf(hass)

    assert {"domain": DOMAIN} in matchers["_home-assistant._tcp.local."]


# ---------------------------------------------------------------------- forms submitted as they open


async def test_user_form_submits_as_it_opens(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    """The user types only what the form leaves empty (the token); the rest is as shown."""
    await async_process_ha_core_config(hass, {"internal_url": fake_ha.http_url})
    result = await _start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], as_opened(result, **{CONF_ACCESS_TOKEN: fake_ha.token})
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == _entry_data(fake_ha)
    await hass.async_block_till_done()
    await _unload_all(hass)


async def test_zeroconf_form_submits_as_it_opens(hass: HomeAssistant, fake_ha: FakeHA) -> None:
    result = await _discover(hass, _announcement(fake_ha.port))
    assert result["step_id"] == "zeroconf_confirm"
    assert empty_required(serialized(result), _shown(result)) == {CONF_ACCESS_TOKEN}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], as_opened(result, **{CONF_ACCESS_TOKEN: fake_ha.token})
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await _unload_all(hass)


async def test_reauth_form_submits_as_it_opens(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_ha: FakeHA
) -> None:
    fake_ha.token = "new-token"
    result = await init_integration.start_reauth_flow(hass)
    assert empty_required(serialized(result), _shown(result)) == {CONF_ACCESS_TOKEN}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], as_opened(result, **{CONF_ACCESS_TOKEN: "new-token"})
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()


async def test_reconfigure_form_submits_as_it_opens(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    data = dict(entry.data)
    result = await entry.start_reconfigure_flow(hass)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], as_opened(result))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.data) == data
    await hass.async_block_till_done()
