"""The engine's configuration (client/) from a config entry's data and options."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL

from .client import (
    BackoffConfig,
    BreakerConfig,
    ConnectionConfig,
    EngineConfig,
    EntityFilter,
    TokenGate,
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
    CONF_VERIFY_SSL,
    DEFAULT_OPTIONS,
)


def options_with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """Options merged over the defaults."""
    return {**DEFAULT_OPTIONS, **options}


def build_engine_config(
    data: dict[str, Any],
    options: dict[str, Any],
    *,
    entities: EntityFilter | None = None,
    token_gate: TokenGate | None = None,
) -> EngineConfig:
    """Engine configuration from a config entry's data and options.

    `entities`: mirrored entities' filter (mirror/), for the `subscribe_entities` subscription.
    `token_gate`: the entry's token gate, shared with every connection made from this config.
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
            token_gate=token_gate,
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
