"""Home Assistant-side helpers: URL normalization, engine configuration, error mapping."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import yarl

from .client import (
    BackoffConfig,
    BreakerConfig,
    ConnectionConfig,
    EngineConfig,
    EntityFilter,
    HaAuthenticationError,
    HaClientError,
    HaForbiddenError,
    HaNotHomeAssistantError,
    HaSSLError,
    HaTimeoutError,
)
from .const import (
    CONF_BASE_DELAY,
    CONF_CONNECT_TIMEOUT,
    CONF_EVENT_TYPES,
    CONF_FAILURE_THRESHOLD,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_TIMEOUT,
    CONF_JITTER,
    CONF_MAX_ATTEMPTS,
    CONF_MAX_DELAY,
    CONF_MULTIPLIER,
    CONF_RECOVERY_TIMEOUT,
    CONF_REJECTED_TOKEN,
    CONF_VERIFY_SSL,
    DEFAULT_OPTIONS,
    DOMAIN,
)

WEBSOCKET_PATH = "/api/websocket"
_LOCAL_SUFFIXES = (".local", ".localhost", ".lan", ".home.arpa", ".internal")
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class InvalidURLError(ValueError):
    """The text is not a usable Home Assistant URL."""


def normalize_url(text: str) -> str:
    """Turn `host:port`, `http(s)://…` or `ws(s)://…` (with or without /api/websocket) into a ws(s) URL.

    >>> normalize_url("homeassistant.local:8123")
    'ws://homeassistant.local:8123/api/websocket'
    """
    text = text.strip()
    if not text:
        raise InvalidURLError("empty")
    if "://" not in text:
        text = f"http://{text}"
    try:
        url = yarl.URL(text)
    except ValueError as err:
        raise InvalidURLError(str(err)) from err
    scheme = _SCHEMES.get(url.scheme.lower())
    if scheme is None or not url.host:
        raise InvalidURLError(text)
    try:
        port = url.port
    except ValueError as err:  # pragma: no cover - yarl rejects bad ports on parse already
        raise InvalidURLError(str(err)) from err
    path = url.path.rstrip("/")
    if path.endswith(WEBSOCKET_PATH):
        path = path[: -len(WEBSOCKET_PATH)]
    built = yarl.URL.build(
        scheme=scheme,
        user=url.user,
        password=url.password,
        host=url.host,
        port=port if port != url.build(scheme=scheme, host=url.host).port else None,
        path=f"{path}{WEBSOCKET_PATH}",
    )
    return str(built)


def configuration_url(ws_url: str) -> str:
    """The remote's web UI for a ws(s) URL, without credentials."""
    url = yarl.URL(ws_url)
    scheme = "https" if url.scheme == "wss" else "http"
    path = url.path[: -len(WEBSOCKET_PATH)] if url.path.endswith(WEBSOCKET_PATH) else url.path
    return str(url.with_user(None).with_scheme(scheme).with_path(path or "/"))


def is_insecure_remote(ws_url: str) -> bool:
    """A token sent over plain ws:// to a host that is neither loopback nor a private address."""
    url = yarl.URL(ws_url)
    if url.scheme != "ws":
        return False
    host = (url.host or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Single-label names (homeassistant, localhost) and local-only domains stay local.
        return "." in host and not host.endswith(_LOCAL_SUFFIXES)
    return not (address.is_loopback or address.is_private or address.is_link_local)


def options_with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """Options merged over the defaults."""
    return {**DEFAULT_OPTIONS, **options}


def build_engine_config(
    data: dict[str, Any], options: dict[str, Any], *, entities: EntityFilter | None = None
) -> EngineConfig:
    """Engine configuration from a config entry's data and options.

    `entities`: mirrored entities' filter (mirror/), for the `subscribe_entities` subscription.
    """
    opts = options_with_defaults(options)
    return EngineConfig(
        connection=ConnectionConfig(
            url=data[CONF_URL],
            token=data[CONF_ACCESS_TOKEN],
            verify_ssl=data.get(CONF_VERIFY_SSL, True),
            heartbeat_interval=float(opts[CONF_HEARTBEAT_INTERVAL]),
            heartbeat_timeout=float(opts[CONF_HEARTBEAT_TIMEOUT]),
            connect_timeout=float(opts[CONF_CONNECT_TIMEOUT]),
            event_types=tuple(opts[CONF_EVENT_TYPES]),
        ),
        backoff=BackoffConfig(
            base=float(opts[CONF_BASE_DELAY]),
            multiplier=float(opts[CONF_MULTIPLIER]),
            max_delay=float(opts[CONF_MAX_DELAY]),
            jitter=bool(opts[CONF_JITTER]),
        ),
        breaker=BreakerConfig(
            failure_threshold=int(opts[CONF_FAILURE_THRESHOLD]),
            recovery_timeout=float(opts[CONF_RECOVERY_TIMEOUT]),
        ),
        max_attempts=int(opts[CONF_MAX_ATTEMPTS]),
        entities=entities,
    )


def token_fingerprint(token: str) -> str:
    """A short one-way fingerprint of a token: enough to recognise it, useless to anyone else."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def token_rejected(data: dict[str, Any]) -> bool:
    """The entry's token is one the remote rejected before."""
    rejected = data.get(CONF_REJECTED_TOKEN)
    return rejected is not None and rejected == token_fingerprint(data[CONF_ACCESS_TOKEN])


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


def set_entry_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    key: str,
    severity: ir.IssueSeverity | None,
    placeholders: dict[str, str] | None = None,
    *,
    fixable: bool = False,
    learn_more_url: str | None = None,
) -> None:
    """Raise (a severity) or clear (None) the repair `key` of one entry.

    Every repair of this integration is one entry's: id `<key>_<entry_id>`, translation key `key`,
    not persistent (raised again while it applies); a fixable one carries the entry id for its flow.
    """
    issue_id = f"{key}_{entry.entry_id}"
    if severity is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=fixable,
        is_persistent=False,
        severity=severity,
        translation_key=key,
        translation_placeholders=placeholders,
        learn_more_url=learn_more_url,
        data={"entry_id": entry.entry_id} if fixable else None,
    )
