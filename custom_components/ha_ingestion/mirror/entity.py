"""One mirrored entity: the remote's state and attributes as they are; native per domain.

`MirrorEntity` shows exactly what the remote shows (state and attributes, verbatim), so the
recorder stores it as a native state and the sensor statistics compile from the remote's
`state_class`. The registry customizations apply as for any entity (name, icon, area, device
class, hidden, disabled).

- `NativeMirror`: the base of one class per controllable domain (`LightMirror(NativeMirror,
  LightEntity)` in `light.py` & co.): the domain's typed properties read from the remote's
  attributes (bad values: None, counted, logged once), so Home Assistant's service layer
  validates and converts a call as for a local entity; its methods forward the call to the
  remote entity (`_forward`, `forward`; `control.py`). The domain's state and attribute
  derivation is overridden by the remote's, verbatim.
- `ReadOnlyMirror`: a plain entity for the domains with nothing to control (sensor & co.); what
  the recorder leaves out is the domain's, as for the domain's own entities (`mirror_class`).
  What a remote integration leaves out for its own entities is not told over the link: a
  mirror records it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from enum import Enum, IntFlag
import math
import re
import sys
from typing import Any

from homeassistant.core import Context
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from ..client import RemoteState  # noqa: TID252 - the package's engine
from ..const import DOMAIN  # noqa: TID252 - the package's own constants
from .control import RemoteControl, error
from .names import local_name


class MirrorEntity(Entity):
    """A remote entity shown locally; unavailable while the remote does not tell its state."""

    _attr_should_poll = False
    # Named "<remote device> <remote friendly name>": where it comes from shows in every list.
    _attr_has_entity_name = True

    def __init__(
        self,
        entry_id: str,
        remote_id: str,
        entity_id: str,
        unique_id: str,
        name: str | None = None,
        control: RemoteControl | None = None,
    ) -> None:
        """Nothing is known until the remote tells (`set_remote`); `name`: the last one known.

        `control`: where service calls go (None: read-only).
        """
        self.remote_id = remote_id
        self.entity_id = entity_id  # suggested; the registry keeps the user's choice
        self._attr_unique_id = unique_id
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, entry_id)})
        self._attr_available = False
        self._attr_name = name
        self._remote: RemoteState | None = None
        self._added = False
        self._link_down_context = False  # the next write's context is a link-down one
        self._control = control
        self._bad_seen: set[str] = set()  # attributes found bad in the current remote state
        self._device_name: str | None = None  # its remote device's name (None: instance device)
        self._friendly: str | None = name  # the remote's friendly name, last known

    def set_device(self, identifiers: set[tuple[str, str]], device_name: str | None) -> None:
        """Its device (`devices.py`): used when added; its own name is then the rest of the remote's.

        The entity registry keeps the device of an added mirror (`devices.py` moves it there).
        """
        info = self._attr_device_info
        if (
            info is not None
            and info.get("identifiers") == identifiers
            and device_name == self._device_name
        ):
            return  # each connect tells every mirror its device again: mostly unchanged
        self._attr_device_info = DeviceInfo(identifiers=identifiers)
        self._device_name = device_name
        self._set_name()
        if self._added:
            self.async_write_ha_state()

    def _set_name(self) -> None:
        friendly = self._friendly
        name = None if friendly is None else local_name(friendly, self._device_name)
        if friendly is not None and self._attr_name != name:
            self._attr_name = name

    async def async_added_to_hass(self) -> None:
        """From now on every change is written at once."""
        self._added = True

    async def async_will_remove_from_hass(self) -> None:
        """No more writes."""
        self._added = False

    @property
    def supported_features(self) -> int | None:
        """None: every feature-gated service is refused before it reaches a read-only mirror.

        (The remote's value is shown as an attribute all the same.)
        """
        return None

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
        self._bad_seen.clear()
        available = remote is not None
        if self._attr_available is not available:  # set only when it changes: a cached property
            self._attr_available = available
        if remote is not None:
            # Without a friendly name, the remote object id (not the bare device name).
            name = remote.attributes.get("friendly_name")
            if type(name) is not str:
                name = self.remote_id.partition(".")[2]
            self._friendly = name
            self._set_name()
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


class ReadOnlyMirror(MirrorEntity):
    """The mirror of a domain not controlled from here: every service refused cleanly."""

    # The entity methods that the mirrored domains' services call by name with no feature flag
    # to gate them (`supported_features` stays None here, so every gated service is refused as
    # not supported before it reaches a mirror). tests/mirror/test_domains.py checks every
    # service of every read-only mirrored domain against this, on each release under test.
    refuse = MirrorEntity.async_refuse
    async_turn_on = async_turn_off = async_toggle = refuse  # switch, remote
    async_send_command = async_learn_command = async_delete_command = refuse  # remote
    async_handle_lock_service = async_handle_unlock_service = refuse  # lock
    async_handle_set_hvac_mode_service = refuse  # climate
    async_handle_alarm_disarm = refuse  # alarm_control_panel
    async_handle_select_option = refuse  # select
    async_first = async_last = async_next = async_previous = refuse  # select
    _async_press_action = refuse  # button
    _async_activate = refuse  # scene
    _async_send_message = refuse  # notify
    del refuse


class NativeMirror(MirrorEntity):
    """Base of the native mirrors (`LightMirror(NativeMirror, LightEntity)` & co.).

    The domain's entity class derives its properties from the remote's attributes (read with the
    `_float`, `_enum`, ... readers: a bad value is None, counted, logged once; one line a property
    with `readers.py`), so Home
    Assistant's service layer validates and converts a call as for a local entity; the entity
    methods forward it (`_forward`). What is shown stays the remote's, verbatim: the domain's
    state and attributes are overridden to the remote's (`state`, `state_attributes`,
    `capability_attributes`), and so are the additions of `Entity` that a domain computes
    itself (`entity_picture`, `unit_of_measurement`).
    """

    # The domain's feature flags (`LightEntityFeature`, ...): its service layer tests membership.
    _features: type[IntFlag] | None = None  # None: a domain without features (switch, ...)

    @property
    def supported_features(self) -> Any:
        """The remote's features while control is on (its controls shown here); else none (0).

        None when the remote shows none (e.g. a calendar that cannot create events): the
        attribute is then absent here too, and every feature-gated service refused (the remote's
        entity of the same domain wrote its state with None, so the domain's class takes it).
        While no remote state is known, none (0), as before: a domain's state write may test it.
        """
        if self._remote is not None and "supported_features" not in self._remote.attributes:
            return None
        value: int | None = 0
        if self._control is not None and self._control.enabled:
            value = self._int("supported_features", 0)
        if self._features is None:
            return value  # None: the remote tells none, nor does this mirror
        return self._features(value or 0)

    @property
    def capability_attributes(self) -> dict[str, Any] | None:
        """The remote's values of the domain's capability attributes (also in the registry)."""
        if self._remote is None:
            return None
        try:
            keys = super().capability_attributes
        except Exception:  # noqa: BLE001 - a domain's own derivation: never fail a state write
            return None
        if not keys:
            return None
        attributes = self._remote.attributes
        return {key: attributes[key] for key in keys if key in attributes} or None

    @property
    def state_attributes(self) -> dict[str, Any] | None:
        """None: the remote's attributes are all in `extra_state_attributes`."""
        return None

    @property
    def entity_picture(self) -> str | None:
        """The remote's (a path on the remote: see README, known limitations)."""
        return self._str("entity_picture")

    @property
    def unit_of_measurement(self) -> str | None:
        """The remote's, never converted to this instance's units."""
        return self._str("unit_of_measurement")

    @property
    def device_class(self) -> str | None:
        """The remote's (also the registry's original device class: "Show as" starts from it)."""
        return self._str("device_class")

    # ------------------------------------------------------------------ control

    async def _forward(
        self,
        service: str,
        data: Mapping[str, Any] | None = None,
        *,
        response: bool = False,
        read: bool = False,
    ) -> Any:
        """Call `service` of the domain on the remote entity (the response when asked).

        `read`: a service that only reads (forecasts, events, items, the media library): allowed
        with control off too.
        """
        if self._control is None:
            raise _read_only(self.entity_id)
        # The target is the remote entity's: the local one's (some handlers pass it on) is not.
        data = {key: value for key, value in (data or {}).items() if key not in _TARGET_KEYS}
        return await self._control.call(
            self.entity_id, self.remote_id, service, data, response=response, read=read
        )

    def _background(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """A read over the link after a state change: the entry's task (ended at its unload)."""
        if (entry := self.platform.config_entry) is None:  # pragma: no cover - always one
            coro.close()
            return
        entry.async_create_background_task(self.hass, coro, f"{self.entity_id} {what}")

    async def _refuse_unforwarded(self, what: str) -> Any:
        """Something of the domain that is not forwarded to the remote: a clean, translated error."""
        raise error("remote_not_supported", self.entity_id, what=what)

    # ------------------------------------------------------------------ attribute readers

    def _raw(self, key: str) -> Any:
        return None if self._remote is None else self._remote.attributes.get(key)

    def _bad(self, key: str, value: Any) -> None:
        """A value of `key` that does not fit: counted once per remote state, logged once."""
        if key in self._bad_seen:
            return
        self._bad_seen.add(key)
        if self._control is not None:
            self._control.bad_attributes.report(self.remote_id, key, value)

    def _typed[T](self, key: str, kind: type[T]) -> T | None:
        """A value of exactly `kind` (a bool is no int, an int no float)."""
        value = self._raw(key)
        if value is None or type(value) is kind:
            return value
        self._bad(key, value)
        return None

    def _str(self, key: str) -> str | None:
        return self._typed(key, str)

    def _pattern(self, key: str) -> str | None:
        """A regular expression (one that is none here: None, counted)."""
        value = self._str(key)
        if value is not None:
            try:
                re.compile(value)
            except re.error:
                self._bad(key, value)
                return None
        return value

    def _bool(self, key: str) -> bool | None:
        return self._typed(key, bool)

    def _float(self, key: str, low: float | None = None, high: float | None = None) -> float | None:
        value = self._raw(key)
        if value is None:
            return None
        if (
            type(value) in (int, float)
            and math.isfinite(value)
            and (low is None or value >= low)
            and (high is None or value <= high)
        ):
            return float(value)
        self._bad(key, value)
        return None

    def _int(self, key: str, low: int | None = None, high: int | None = None) -> int | None:
        value = self._raw(key)
        if value is None:
            return None
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is int and (low is None or value >= low) and (high is None or value <= high):
            return value
        self._bad(key, value)
        return None

    def _enum[E: Enum](self, key: str, kind: type[E]) -> E | None:
        value = self._raw(key)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError, TypeError:
            self._bad(key, value)
            return None

    def _state_enum[E: Enum](self, kind: type[E]) -> E | None:
        """The remote's state as a member of `kind` (None: unknown, unavailable or not one)."""
        state = self.state
        try:
            return None if state is None else kind(state)
        except ValueError:
            return None

    def _state_float(self) -> float | None:
        try:
            value = float(self.state)  # type: ignore[arg-type]
        except TypeError, ValueError:
            return None
        return value if math.isfinite(value) else None

    def _list_of[T](self, key: str, convert: Callable[[Any], T]) -> list[T] | None:
        """A list, each item converted (a non-list: None; an item `convert` refuses: left out).

        Counted when bad. `convert` refuses an item with ValueError or TypeError.
        """
        value = self._raw(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self._bad(key, value)
            return None
        items: list[T] = []
        for item in value:
            try:
                items.append(convert(item))
            except ValueError, TypeError:
                self._bad(key, value)
        return items

    def _strings(self, key: str) -> list[str] | None:
        """A list of texts (a non-list: None; a non-text item: left out); counted when bad."""
        return self._list_of(key, _text)

    def _enums[E: Enum](self, key: str, kind: type[E]) -> list[E] | None:
        """A list of members of `kind` (unknown values left out, counted)."""
        return self._list_of(key, kind)

    def _floats(self, key: str, count: int) -> tuple[float, ...] | None:
        """A color or a pair: `count` finite numbers."""
        value = self._raw(key)
        if value is None:
            return None
        if (
            isinstance(value, list | tuple)
            and len(value) == count
            and all(type(item) in (int, float) and math.isfinite(item) for item in value)
        ):
            return tuple(float(item) for item in value)
        self._bad(key, value)
        return None

    def _is_on(self) -> bool | None:
        state = self.state
        return None if state not in ("on", "off") else state == "on"


def _text(item: Any) -> str:
    """`item` if it is a text (a TypeError if not)."""
    if type(item) is not str:
        raise TypeError(item)
    return item


_TARGET_KEYS = frozenset({"entity_id", "device_id", "area_id", "floor_id", "label_id"})


def _read_only(entity_id: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="mirror_read_only",
        translation_placeholders={"entity_id": entity_id},
    )


_CLASSES: dict[str, type[ReadOnlyMirror]] = {}


def mirror_class(domain: str) -> type[ReadOnlyMirror]:
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
        cls = ReadOnlyMirror
        if unrecorded:

            class DomainMirror(ReadOnlyMirror):
                _entity_component_unrecorded_attributes = unrecorded

            DomainMirror.__name__ = DomainMirror.__qualname__ = f"{camel}Mirror"
            cls = DomainMirror
        _CLASSES[domain] = cls
    return cls


def feature_flags(domain: str) -> type[IntFlag] | None:
    """The domain's feature flags (`FanEntityFeature`, ...), as its package exports them.

    Looked up at run time: their module differs between the releases supported. The domain's
    package is imported by then (its platform file imports its entity class from it).
    """
    camel = "".join(part.title() for part in domain.split("_"))
    flags = getattr(
        sys.modules.get(f"homeassistant.components.{domain}"), f"{camel}EntityFeature", None
    )
    return flags if isinstance(flags, type) and issubclass(flags, IntFlag) else None


type Forwarder = Callable[..., Coroutine[Any, Any, None]]


def forward(service: str, *fields: str) -> Forwarder:
    """An entity method that calls `service` on the remote entity with the data it received.

    Positional arguments are named by `fields` (as the domain's service handler passes them);
    keyword arguments keep their names (a service calling a method by name passes its fields so);
    a None is left out (the service's default applies on the remote).
    """

    async def method(self: NativeMirror, *args: Any, **kwargs: Any) -> None:
        data = dict(zip(fields, args, strict=False)) | kwargs
        await self._forward(
            service, {key: value for key, value in data.items() if value is not None}
        )

    method.__name__ = method.__qualname__ = f"forward_{service}"
    method.forwards = service  # type: ignore[attr-defined]  # for tests/mirror/test_domains.py
    return method
