"""What to mirror: whether at all, and which remote entities (decided before the engine exists).

- Which: the entry's `EntityFilter` (sent to the remote, so excluded entities never cross the
  wire; checked again when an update is applied) and a domain this integration can host
  (`MIRROR_DOMAINS`).
- Never a link to this instance itself: it would mirror its own entities into themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.util import slugify

from ..capture.selflink import remote_is_this_instance  # noqa: TID252 - one self-link rule
from ..client import EntityFilter  # noqa: TID252 - the package's engine
from ..const import (  # noqa: TID252 - the package's own constants
    CONF_MIRROR_ENTITIES,
    CONF_MIRROR_EXCLUDE,
    CONF_MIRROR_INCLUDE,
    LOGGER,
)

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252


# Every domain whose entity component hosts other integrations' platform entities, on every
# release supported. A controllable one has a native mirror class in its top-level platform file
# (`light.py` `LightMirror`): every entity service forwards to the remote or is refused cleanly
# (tests/mirror/test_native.py); the others are read-only mirrors whose every entity service
# refuses them (tests/mirror/test_domains.py). Left out (docs/mirroring.md "Which domains, and
# why"): no-platform ones (input_*, automation, script, person, zone, ...), pipelines (tts,
# stt, assist_satellite, conversation, wake_word) and device_tracker (its state is a zone of the
# remote's zones; its component also loads known_devices.yaml in a task of its own).
MIRROR_DOMAINS: tuple[str, ...] = (
    "air_quality",
    "alarm_control_panel",
    "binary_sensor",
    "button",
    "calendar",
    "camera",
    "climate",
    "cover",
    "date",
    "datetime",
    "event",
    "fan",
    "humidifier",
    "image",
    "lawn_mower",
    "light",
    "lock",
    "media_player",
    "notify",
    "number",
    "remote",
    "scene",
    "select",
    "sensor",
    "siren",
    "switch",
    "text",
    "time",
    "todo",
    "update",
    "vacuum",
    "valve",
    "water_heater",
    "weather",
)


def mirror_filter(options: Mapping[str, Any]) -> EntityFilter:
    """What to ask the remote for: the options' patterns; no include = the domains mirrored here.

    Other domains are only asked for when an include names them (then counted as skipped).
    """
    return EntityFilter(
        include=tuple(options[CONF_MIRROR_INCLUDE]) or MIRROR_DOMAINS,
        exclude=tuple(options[CONF_MIRROR_EXCLUDE]),
    )


def default_prefix(title: str) -> str:
    """The entity-id prefix from the remote's name."""
    return slugify(title) or "remote"


@dataclass(frozen=True, kw_only=True)
class MirrorChoice:
    """Whether to mirror, and which entities: decided before the engine exists (it asks for them)."""

    enabled: bool
    refused: str | None
    filter: EntityFilter
    self_link: bool

    @classmethod
    def from_options(
        cls, hass: HomeAssistant, entry: HaIngestionConfigEntry, options: Mapping[str, Any]
    ) -> MirrorChoice:
        """Decide from the entry's options (and whether the remote is this instance)."""
        wanted = bool(options[CONF_MIRROR_ENTITIES])
        self_link = remote_is_this_instance(hass, entry.data[CONF_ACCESS_TOKEN])
        try:
            entity_filter = mirror_filter(options)
        except ValueError as err:  # options edited by hand: the flow never saves such patterns
            LOGGER.warning("Not mirroring entities of %s: %s", entry.title, err)
            return cls(
                enabled=False,
                refused="invalid_patterns",
                filter=EntityFilter(),
                self_link=self_link,
            )
        # A link to this instance itself would mirror its own entities into themselves.
        return cls(
            enabled=wanted and not self_link,
            refused="self_link" if wanted and self_link else None,
            filter=entity_filter,
            self_link=self_link,
        )

    @property
    def entities(self) -> EntityFilter | None:
        """What the engine subscribes to for the mirrors (None: not mirroring)."""
        return self.filter if self.enabled else None
