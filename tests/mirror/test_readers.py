"""The typed properties of the native mirrors (mirror/readers.py), on mirror objects alone.

A mirror is built without a link: `set_remote` gives it a remote state, a stub control counts
the bad values (as `RemoteControl.bad_attributes` does).
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.ha_ingestion.alarm_control_panel import AlarmControlPanelMirror
from custom_components.ha_ingestion.client import RemoteState
from custom_components.ha_ingestion.climate import ClimateMirror
from custom_components.ha_ingestion.cover import CoverMirror
from custom_components.ha_ingestion.lock import LockMirror
from custom_components.ha_ingestion.mirror.control import BadAttributes
from custom_components.ha_ingestion.mirror.entity import NativeMirror
from custom_components.ha_ingestion.mirror.readers import Reader, float_or_base
from custom_components.ha_ingestion.number import NumberMirror
from custom_components.ha_ingestion.text import TextMirror
from custom_components.ha_ingestion.update import UpdateMirror
from custom_components.ha_ingestion.water_heater import WaterHeaterMirror


class StubControl:
    """What a mirror's readers use of its control: where bad values are counted."""

    enabled = True

    def __init__(self) -> None:
        self.bad_attributes = BadAttributes("cabin")


def mirror[M: NativeMirror](
    hass: HomeAssistant, cls: type[M], attributes: dict[str, Any], state: str = "on"
) -> tuple[M, StubControl]:
    """A mirror of `cls` showing a remote state with `attributes`; its stub control."""
    control = StubControl()
    domain = cls.__module__.rpartition(".")[2]
    entity = cls("entry", f"{domain}.x", f"{domain}.x", "u", control=control)  # type: ignore[arg-type]
    entity.hass = hass
    entity.set_remote(
        RemoteState(state=state, attributes=attributes, last_changed=0.0, last_updated=0.0)
    )
    return entity, control


async def test_a_number_or_the_domains_default(hass: HomeAssistant) -> None:
    climate, control = mirror(hass, ClimateMirror, {"min_temp": 5, "max_temp": "hot"})
    assert climate.min_temp == 5.0
    assert type(climate.min_temp) is float
    # A bad value: the domain's own default, counted once for this remote state.
    assert climate.max_temp == super(ClimateMirror, climate).max_temp
    assert climate.max_temp == 35
    assert control.bad_attributes.counts == {"climate.max_temp": 1}
    # None told: the domain's default, nothing counted.
    assert climate.min_humidity == 30
    assert climate.max_humidity == 99
    assert control.bad_attributes.counts == {"climate.max_temp": 1}
    number, _ = mirror(hass, NumberMirror, {"max": 10}, state="4")
    assert (number.native_min_value, number.native_max_value) == (0.0, 10.0)
    assert number.native_min_value == super(NumberMirror, number).native_min_value
    text, _ = mirror(hass, TextMirror, {"min": 2}, state="ab")
    assert (text.native_min, text.native_max) == (2, super(TextMirror, text).native_max)


async def test_a_bad_value_is_none_counted_once_per_remote_state(hass: HomeAssistant) -> None:
    climate, control = mirror(
        hass,
        ClimateMirror,
        {"temperature": float("nan"), "fan_modes": ["low", 3], "hvac_modes": ["heat", "warp"]},
    )
    for _ in range(3):
        assert climate.target_temperature is None
        assert climate.fan_modes == ["low"]
        assert climate.hvac_modes == ["heat"]
    assert control.bad_attributes.counts == {
        "climate.temperature": 1,
        "climate.fan_modes": 1,
        "climate.hvac_modes": 1,
    }
    climate.set_remote(
        RemoteState(
            state="heat", attributes={"temperature": "20"}, last_changed=1.0, last_updated=1.0
        )
    )
    assert climate.target_temperature is None
    assert climate.hvac_modes == []  # none told: an empty list, as before
    assert control.bad_attributes.counts["climate.temperature"] == 2


async def test_the_native_names_read_the_same(hass: HomeAssistant) -> None:
    climate, _ = mirror(
        hass,
        ClimateMirror,
        {"current_temperature": 19.5, "temperature": 21, "target_temp_low": 18},
    )
    assert climate.native_current_temperature == climate.current_temperature == 19.5
    assert climate.native_target_temperature == climate.target_temperature == 21.0
    assert climate.native_target_temperature_low == 18.0
    assert climate.native_target_temperature_high is None
    assert climate.native_temperature_unit == hass.config.units.temperature_unit
    heater, _ = mirror(hass, WaterHeaterMirror, {"current_temperature": 50, "temperature": 55})
    assert (heater.native_current_temperature, heater.native_target_temperature) == (50.0, 55.0)
    assert heater.native_temperature_unit == heater.temperature_unit


async def test_defaults_patterns_and_states(hass: HomeAssistant) -> None:
    panel, _ = mirror(hass, AlarmControlPanelMirror, {}, state="disarmed")
    assert panel.code_arm_required is True
    update, _ = mirror(hass, UpdateMirror, {"auto_update": None})
    assert update.auto_update is False
    number, _ = mirror(hass, NumberMirror, {"mode": "dial"}, state="1")
    assert number.mode == "auto"
    lock, control = mirror(hass, LockMirror, {"code_format": "(unclosed"}, state="jammed")
    assert (lock.code_format, lock.is_jammed, lock.is_locked) == (None, True, False)
    assert control.bad_attributes.counts == {"lock.code_format": 1}
    text, _ = mirror(hass, TextMirror, {"pattern": "[a-z]+"}, state="ab")
    assert text.pattern == "[a-z]+"
    cover, _ = mirror(hass, CoverMirror, {}, state="opening")
    assert (cover.is_opening, cover.is_closing) == (True, False)


class Probe(NativeMirror):
    """A class whose parent gives a default under the name the reader is defined with."""

    low = float_or_base("low")
    alias = low


class ProbeParent:
    @property
    def low(self) -> float:
        return -1.0


class ProbeChild(Probe, ProbeParent):
    pass


@pytest.mark.parametrize(("attributes", "value"), [({"low": 2}, 2.0), ({}, -1.0)])
def test_a_reader_is_a_property_and_an_alias_keeps_its_first_name(
    attributes: dict[str, Any], value: float
) -> None:
    assert isinstance(
        Probe.__dict__["low"], property
    )  # (tests/mirror/test_native.py's own_properties)
    assert isinstance(Probe.low, Reader)
    probe = ProbeChild("entry", "x.y", "x.y", "u")
    probe.set_remote(
        RemoteState(state="on", attributes=attributes, last_changed=0.0, last_updated=0.0)
    )
    assert probe.low == probe.alias == value
    with pytest.raises(AttributeError):
        probe.low = 3.0  # type: ignore[misc]
