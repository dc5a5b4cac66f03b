"""The typed properties of the native mirrors, one line each: `min_temp = float_or_base("min_temp")`.

A domain class (`climate.py` & co.) names the remote attribute a property reads, and its shape;
the value is read with `NativeMirror`'s readers (`_float`, `_str`, ...: a bad value is None,
counted once per remote state, logged once), so every domain that reads the same shape reads it
the same way. A `Reader` is a `property`: Home Assistant and the tests see one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Any, Self, overload

from homeassistant.util import dt as dt_util

from .entity import NativeMirror


class Reader[T](property):
    """A read-only property of a native mirror: `read(mirror)`.

    `base`: where `read` gives None (the remote tells none, or a bad value), the domain class's
    own value instead (its default: `super().<name>` of the class it is defined in).
    """

    def __init__(self, read: Callable[[NativeMirror], T | None], *, base: bool = False) -> None:
        """`read`: the mirror's value (None: none)."""
        self._owner: type | None = None
        self._name = ""

        def get(mirror: NativeMirror) -> T | None:
            value = read(mirror)
            if value is None and base:
                default: T = getattr(super(self._owner, mirror), self._name)
                return default
            return value

        super().__init__(get)

    def __set_name__(self, owner: type, name: str) -> None:
        """The class and name it is defined under (an alias, as `native_*`, keeps the first)."""
        if self._owner is None:
            self._owner, self._name = owner, name

    @overload
    def __get__(self, instance: None, owner: type | None = None, /) -> Self: ...
    @overload
    def __get__(self, instance: Any, owner: type | None = None, /) -> T: ...
    def __get__(self, instance: Any, owner: type | None = None, /) -> Any:
        """The value read (on the class: the property)."""
        return super().__get__(instance, owner)


def str_attr(key: str) -> Reader[str | None]:
    """The remote's text."""
    return Reader(lambda self: self._str(key))


def bool_attr(key: str) -> Reader[bool | None]:
    """The remote's true or false."""
    return Reader(lambda self: self._bool(key))


def bool_attr_or(key: str, default: bool) -> Reader[bool]:
    """The remote's true or false; `default` when it tells none."""
    return Reader(lambda self: default if (value := self._bool(key)) is None else value)


def float_attr(
    key: str, low: float | None = None, high: float | None = None
) -> Reader[float | None]:
    """The remote's number, finite, within `low`..`high`."""
    return Reader(lambda self: self._float(key, low, high))


def float_or_base(key: str, low: float | None = None, high: float | None = None) -> Reader[float]:
    """The remote's number; the domain's default when it tells none."""
    return Reader(lambda self: self._float(key, low, high), base=True)


def int_attr(key: str, low: int | None = None, high: int | None = None) -> Reader[int | None]:
    """The remote's whole number, within `low`..`high`."""
    return Reader(lambda self: self._int(key, low, high))


def int_or_base(key: str, low: int | None = None, high: int | None = None) -> Reader[int]:
    """The remote's whole number; the domain's default when it tells none."""
    return Reader(lambda self: self._int(key, low, high), base=True)


def str_list_attr(key: str) -> Reader[list[str] | None]:
    """The remote's list of texts (modes, sources, options, ...)."""
    return Reader(lambda self: self._strings(key))


def str_list_or_empty(key: str) -> Reader[list[str]]:
    """The remote's list of texts; an empty one when it tells none."""
    return Reader(lambda self: self._strings(key) or [])


def enum_attr[E: Enum](key: str, kind: type[E]) -> Reader[E | None]:
    """The remote's value as a member of `kind`."""
    return Reader(lambda self: self._enum(key, kind))


def enum_attr_or[E: Enum](key: str, kind: type[E], default: E) -> Reader[E]:
    """The remote's value as a member of `kind`; `default` when it tells none."""
    return Reader(lambda self: self._enum(key, kind) or default)


def enum_list_or_empty[E: Enum](key: str, kind: type[E]) -> Reader[list[E]]:
    """The remote's list of members of `kind`; an empty one when it tells none."""
    return Reader(lambda self: self._enums(key, kind) or [])


def pattern_attr(key: str) -> Reader[str | None]:
    """The remote's regular expression (one that is none here: None, counted)."""
    return Reader(lambda self: self._pattern(key))


def on_off_state() -> Reader[bool | None]:
    """From the remote's state: on or off (None: neither)."""
    return Reader(lambda self: self._is_on())


def state_is(state: str) -> Reader[bool]:
    """From the remote's state: whether it is `state`."""
    return Reader(lambda self: self.state == state)


def local_temperature_unit() -> Reader[str]:
    """This instance's unit: Home Assistant converts nothing on the way to the remote.

    (The temperatures are the remote's numbers as it shows them.)
    """
    return Reader(lambda self: self.hass.config.units.temperature_unit)


class TemperatureReaders:
    """A mixin (before `NativeMirror`): the temperatures of climate and water heater mirrors.

    The remote's numbers as it shows them, in this instance's unit: nothing is converted.
    """

    temperature_unit = local_temperature_unit()
    current_temperature = float_attr("current_temperature")
    target_temperature = float_attr("temperature")
    min_temp = float_or_base("min_temp")
    max_temp = float_or_base("max_temp")

    # Home Assistant 2026.11 reads these under native_ names (the old ones report a deprecation
    # there, from a class that provides only them): both are provided, each release reads the
    # one it knows. The unit is this instance's own, so nothing is converted either way.
    native_temperature_unit = temperature_unit
    native_current_temperature = current_temperature
    native_target_temperature = target_temperature


class HumidityReaders:
    """A mixin (before `NativeMirror`): the humidities of climate and humidifier mirrors."""

    current_humidity = float_attr("current_humidity")
    target_humidity = float_attr("humidity")
    min_humidity = float_or_base("min_humidity", 0, 100)
    max_humidity = float_or_base("max_humidity", 0, 100)


def remote_moment(value: Any) -> date | datetime | None:
    """A date or a moment as a remote's service answer tells it (ISO text); anything else None.

    A calendar event's start and end, a to-do item's due: a date-time is given in this
    instance's time zone, a date stays a date.
    """
    if not isinstance(value, str):
        return None
    try:
        if "T" in value or " " in value:
            moment = dt_util.parse_datetime(value)
            return None if moment is None else dt_util.as_local(moment)
        return date.fromisoformat(value)
    except ValueError:
        return None
