"""Constants for ha_ingestion."""

from __future__ import annotations

import logging
from typing import Final

from .client.models import DEFAULT_EVENT_TYPES

DOMAIN: Final = "ha_ingestion"
# The integration's one logger; the engine (client/) logs under its own modules' names below it.
LOGGER: Final = logging.getLogger(__package__)

CONF_VERIFY_SSL: Final = "verify_ssl"
# Entry data: fingerprint of a token the remote rejected (never sent again).
CONF_REJECTED_TOKEN: Final = "rejected_token"  # noqa: S105 - a key, not a secret
# Entry data beside url/token/verify_ssl: the token owner's user id on the remote (checks that
# reauth and reconfigure reach the same remote once the unique id is the instance uuid) and the
# URL zeroconf last reported for it (an entry still using that URL follows the remote's moves).
CONF_REMOTE_USER_ID: Final = "remote_user_id"
CONF_DISCOVERY_URL: Final = "discovery_url"

# Options (the options flow edits every one of these).
CONF_EVENT_TYPES: Final = "event_types"
CONF_BASE_DELAY: Final = "base_delay"
CONF_MAX_DELAY: Final = "max_delay"
CONF_MULTIPLIER: Final = "multiplier"
CONF_JITTER: Final = "jitter"
CONF_MAX_ATTEMPTS: Final = "max_attempts"
CONF_FAILURE_THRESHOLD: Final = "failure_threshold"
CONF_RECOVERY_TIMEOUT: Final = "recovery_timeout"
CONF_HEARTBEAT_INTERVAL: Final = "heartbeat_interval"
CONF_HEARTBEAT_TIMEOUT: Final = "heartbeat_timeout"
CONF_CONNECT_TIMEOUT: Final = "connect_timeout"
CONF_FORWARD_EVENTS: Final = "forward_events"
CONF_BACKFILL: Final = "backfill"
CONF_BACKFILL_MAX_WINDOW: Final = "backfill_max_window"
# Mirrored entities (mirror/): on/off, include/exclude patterns (domains, entity ids, globs;
# exclude wins), the entity-id prefix ("" = from the remote's name) and whether state changes
# of mirrored entities are still fired as ha_ingestion_event too.
CONF_MIRROR_ENTITIES: Final = "mirror_entities"
CONF_MIRROR_INCLUDE: Final = "mirror_include"
CONF_MIRROR_EXCLUDE: Final = "mirror_exclude"
CONF_MIRROR_PREFIX: Final = "mirror_prefix"
CONF_FORWARD_STATE_CHANGES: Final = "forward_state_changes"
# Service calls on mirrors forwarded to the remote entity (off: mirrors are read-only).
CONF_CONTROL: Final = "control"

DEFAULT_OPTIONS: Final[dict[str, object]] = {
    CONF_EVENT_TYPES: list(DEFAULT_EVENT_TYPES),  # the engine's default, stored as a list
    CONF_BASE_DELAY: 1.0,
    CONF_MAX_DELAY: 60.0,
    CONF_MULTIPLIER: 2.0,
    CONF_JITTER: True,
    CONF_MAX_ATTEMPTS: 0,
    CONF_FAILURE_THRESHOLD: 5,
    CONF_RECOVERY_TIMEOUT: 60.0,
    CONF_HEARTBEAT_INTERVAL: 30.0,
    CONF_HEARTBEAT_TIMEOUT: 10.0,
    CONF_CONNECT_TIMEOUT: 20.0,
    CONF_FORWARD_EVENTS: True,
    CONF_BACKFILL: True,
    CONF_BACKFILL_MAX_WINDOW: 24.0,
    CONF_MIRROR_ENTITIES: True,
    CONF_MIRROR_INCLUDE: [],
    CONF_MIRROR_EXCLUDE: [],
    CONF_MIRROR_PREFIX: "",
    CONF_CONTROL: True,
    CONF_FORWARD_STATE_CHANGES: False,
}

# Local bus event carrying every captured remote event.
EVENT_INGESTED: Final = "ha_ingestion_event"

# Counters that move with every event are written at most this often (seconds).
THROTTLE_SECONDS: Final = 1.0

HEALTH_VIEW_URL: Final = "/api/ha_ingestion/health"
