"""The remote's address: what a user types becomes the WebSocket URL; its web UI; is it exposed."""

from __future__ import annotations

import ipaddress

import yarl

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
