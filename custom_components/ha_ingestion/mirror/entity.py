"""One mirrored entity: the remote's state and attributes as they are, read-only.

A plain `Entity` under the remote's domain rather than `SensorEntity` & co.: those derive state
and attributes from typed values (and reject, convert or add to them); a mirror must show exactly
what the remote shows, so the recorder stores it as a native state and the sensor statistics
compile from the remote's `state_class`. The registry customizations apply as for any entity
(name, icon, area, device class, hidden, disabled).

What the recorder leaves out is the domain's, as for the domain's own entities: a mirror of a
domain whose entity class keeps capability attributes out of the recorder (climate `hvac_modes`,
select and sensor `options`, event `event_types`, ...) is of a subclass that does the same
(`mirror_class`). What a remote integration leaves out for its own entities is not told over the
link: a mirror records it.
"""

from __future__ import annotations

from collections.abc import Mapping
import sys
from typing import Any

from homeassistant.core import Context
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from ..client import RemoteState  # noqa: TID252 - the package's engine
from ..const import DOMAIN  # noqa: TID252 - the package's own constants


class MirrorEntity(Entity):
    """A remote entity shown locally; unavailable while the remote does not tell its state."""

    _attr_should_poll = False
    # Named "<remote device> <remote friendly name>": where it comes from shows in every list.
    _attr_has_entity_name = True
    # Never the remote's (that one is shown as an attribute): with none supported here, Home
    # Assistant refuses every feature-gated service before it reaches a mirror.
    _attr_supported_features = None

    def __init__(
        self,
        entry_id: str,
        remote_id: str,
        entity_id: str,
        unique_id: str,
        name: str | None = None,
    ) -> None:
        """Nothing is known until the remote tells (`set_remote`); `name`: the last one known."""
        self.remote_id = remote_id
        self.entity_id = entity_id  # suggested; the registry keeps the user's choice
        self._attr_unique_id = unique_id
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, entry_id)})
        self._attr_available = False
        self._attr_name = name
        self._remote: RemoteState | None = None
        self._added = False
        self._link_down_context = False  # the next write's context is a link-down one

    async def async_added_to_hass(self) -> None:
        """From now on every change is written at once."""
        self._added = True

    async def async_will_remove_from_hass(self) -> None:
        """No more writes."""
        self._added = False

    @property
    def state(self) -> str | None:
        """The remote's state text."""
        return None if self._remote is None else self._remote.state

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The remote's attributes (friendly name, unit, state class and device class included).

        The remote state's own mapping, never changed (Home Assistant merges it into a new dict).
        """
        return None if self._remote is None else self._remote.attributes

    def set_remote(self, remote: RemoteState | None, *, link_down: Context | None = None) -> None:
        """The remote's current state (None: unknown now, e.g. the link is down); written at once.

        `link_down`: the state is unknown because the link is down: written with this context
        (the entry's link-down mark), so that once the outage is recovered this `unavailable` row
        is told apart from one the remote really had (`past_states.py`). Any other write gets a
        context of its own, never that one.
        """
        self.mark_link_down(link_down)
        self._remote = remote
        available = remote is not None
        if self._attr_available is not available:  # set only when it changes: a cached property
            self._attr_available = available
        if remote is not None:
            # Without a friendly name, the remote object id (not the bare device name).
            name = remote.attributes.get("friendly_name")
            if type(name) is not str:
                name = self.remote_id.partition(".")[2]
            if self._attr_name != name:
                self._attr_name = name
        if self._added:
            self.async_write_ha_state()

    def mark_link_down(self, link_down: Context | None) -> None:
        """The next write is for the link being down (`link_down`), or is not (None)."""
        if link_down is not None:
            self.async_set_context(link_down)
            self._link_down_context = True
        elif self._link_down_context:
            self.async_set_context(Context())
            self._link_down_context = False

    async def async_refuse(self, *args: Any, **kwargs: Any) -> None:
        """Mirrors are read-only: control the entity on the remote."""
        raise _read_only(self.entity_id)

    # The entity methods that the mirrored domains' services call by name with no feature flag
    # to gate them (`supported_features` stays None here, so every gated service is refused as
    # not supported before it reaches a mirror). tests/mirror/test_domains.py checks every
    # service of every mirrored domain against this, on each release under test.
    async_turn_on = async_turn_off = async_toggle = async_refuse  # switch, remote
    async_send_command = async_learn_command = async_delete_command = async_refuse  # remote
    async_handle_lock_service = async_handle_unlock_service = async_refuse  # lock
    async_handle_set_hvac_mode_service = async_refuse  # climate
    async_handle_alarm_disarm = async_refuse  # alarm_control_panel
    async_handle_select_option = async_refuse  # select
    async_first = async_last = async_next = async_previous = async_refuse  # select
    _async_press_action = async_refuse  # button
    _async_activate = async_refuse  # scene
    _async_send_message = async_refuse  # notify


def _read_only(entity_id: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="mirror_read_only",
        translation_placeholders={"entity_id": entity_id},
    )


_CLASSES: dict[str, type[MirrorEntity]] = {}


def mirror_class(domain: str) -> type[MirrorEntity]:
    """The mirror class for `domain`: its entity class's unrecorded attributes unrecorded here too.

    Read from `<Domain>Entity` of `homeassistant.components.<domain>`, loaded by then (Home
    Assistant sets up a domain before any platform of it), so nothing is imported here.
    """
    if (cls := _CLASSES.get(domain)) is None:
        camel = "".join(part.title() for part in domain.split("_"))
        component = sys.modules.get(f"homeassistant.components.{domain}")
        base = getattr(component, f"{camel}Entity", None)
        unrecorded: frozenset[str] = (
            getattr(base, "_entity_component_unrecorded_attributes", None) or frozenset()
        )
        cls = MirrorEntity
        if unrecorded:

            class DomainMirror(MirrorEntity):
                _entity_component_unrecorded_attributes = unrecorded

            DomainMirror.__name__ = DomainMirror.__qualname__ = f"{camel}Mirror"
            cls = DomainMirror
        _CLASSES[domain] = cls
    return cls
