"""Reaching a remote for the flows: the addresses to try or follow, and short checking connections.

Shared by the config flow (validate a link) and the options flow (check event types); neither
touches the running link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import yarl

from .client import (
    ConnectionConfig,
    HaAuthenticationError,
    HaClientError,
    HaForbiddenError,
    HaNotHomeAssistantError,
    HaSSLError,
    HaSubscriptionError,
    HaTimeoutError,
    HaWebSocketSession,
    RemoteInfo,
    TokenGate,
)
from .const import CONF_VERIFY_SSL
from .remote_url import InvalidURLError, normalize_url

VALIDATION_TIMEOUT = 10.0

# A bare host (no scheme, no port) is tried on Home Assistant's own port first, then on 80
# (Home Assistant OS from 2026.8). The token is only sent after the server greeted with
# auth_required, so trying a port where something else answers never hands it out.
BARE_HOST_PORTS = (8123, 80)
# Errors after which the next candidate port is tried; any other answer came from a Home
# Assistant (rejected token, TLS) and ends the search: the token is not sent twice.
TRY_NEXT_PORT = frozenset({"cannot_connect", "timeout", "not_home_assistant"})


def error_key(err: HaClientError) -> str:
    """The translation key (config flow error) for an engine error."""
    if isinstance(err, HaAuthenticationError):
        return "invalid_auth"
    if isinstance(err, HaForbiddenError):
        return "forbidden"
    if isinstance(err, HaSSLError):
        return "ssl_error"
    if isinstance(err, HaNotHomeAssistantError):
        return "not_home_assistant"
    if isinstance(err, HaTimeoutError):
        return "timeout"
    return "cannot_connect"


def _checking_session(
    hass: HomeAssistant, url: str, token: str, verify_ssl: bool, token_gate: TokenGate | None
) -> HaWebSocketSession:
    return HaWebSocketSession(
        async_get_clientsession(hass),
        ConnectionConfig(
            url=url,
            token=token,
            verify_ssl=verify_ssl,
            connect_timeout=VALIDATION_TIMEOUT,
            command_timeout=VALIDATION_TIMEOUT,
            token_gate=token_gate,
        ),
    )


async def async_validate_remote(
    hass: HomeAssistant,
    url: str,
    token: str,
    verify_ssl: bool,
    *,
    token_gate: TokenGate | None = None,
) -> RemoteInfo:
    """Really connect: authenticate and read the remote's identity, then close.

    `token_gate`: an entry's gate when the token is the entry's (not one the user just typed).
    """
    session = _checking_session(hass, url, token, verify_ssl, token_gate)
    try:
        return await session.connect()
    finally:
        await session.close()


async def async_refused_event_types(
    hass: HomeAssistant, data: Mapping[str, Any], event_types: list[str], token_gate: TokenGate
) -> list[str]:
    """Subscribe to each event type with an entry's token, then unsubscribe; return the refused.

    One short connection of its own (the running link is not touched) through the entry's token
    gate; raises `HaClientError` when the remote cannot be asked.
    """
    session = _checking_session(
        hass, data[CONF_URL], data[CONF_ACCESS_TOKEN], data.get(CONF_VERIFY_SSL, True), token_gate
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


def host_port(url: str) -> tuple[str, int | None] | None:
    """(host, port) of a URL, to compare addresses; None for what is not a URL."""
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
        if (value := info.properties.get(key)) and (pair := host_port(str(value))):
            addresses.add(pair)
    return addresses
