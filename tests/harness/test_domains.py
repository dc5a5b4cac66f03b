"""The every-domain remote's configuration and control cases (no Home Assistant started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.domains import (
    CONTROL_CASES,
    EVERY_DOMAIN_NAME,
    ControlCase,
    EveryDomainRemote,
)
from tests.harness.remote import DEMO_YAML, RemoteHass

pytestmark = pytest.mark.usefixtures("socket_enabled")  # a free port is looked for


def _state(state: str, **attributes: Any) -> dict[str, Any]:
    return {"state": state, "attributes": attributes}


def test_demo_flag_adds_the_demo_integration(tmp_path: Path) -> None:
    plain = RemoteHass(tmp_path / "plain")
    plain.write_config()
    demo = RemoteHass(tmp_path / "demo", demo=True)
    demo.write_config()
    assert DEMO_YAML not in (plain.config_dir / "configuration.yaml").read_text()
    assert DEMO_YAML in (demo.config_dir / "configuration.yaml").read_text()


def test_every_domain_remote_config(tmp_path: Path) -> None:
    remote = EveryDomainRemote(tmp_path, extra_yaml="e2e_extra:\n")
    remote.write_config()
    config = (tmp_path / "configuration.yaml").read_text()
    assert remote.name == EVERY_DOMAIN_NAME
    assert remote.demo
    for key in ("demo:", "kitchen_sink:", "config:", "scene:", "e2e_extra:"):
        assert f"\n{key}\n" in config, key


def test_control_case_holds_on_state_attributes_and_alternatives() -> None:
    light = ControlCase(
        entity_id="light.x", service="turn_on", expect={"state": "on", "brightness": 9}
    )
    assert light.domain == "light"
    assert light.holds(_state("on", brightness=9))
    assert not light.holds(_state("on", brightness=8))
    assert not light.holds(_state("off", brightness=9))
    assert not light.holds(None)
    alarm = ControlCase(
        entity_id="alarm_control_panel.x",
        service="alarm_arm_away",
        expect={"state": frozenset({"arming", "armed_away"})},
    )
    assert alarm.holds(_state("arming"))
    assert alarm.holds(_state("armed_away"))
    assert not alarm.holds(_state("disarmed"))


def test_one_control_case_per_domain() -> None:
    domains = [case.domain for case in CONTROL_CASES]
    assert len(domains) == len(set(domains))
    assert {"light", "media_player", "vacuum", "number", "todo"} <= set(domains)
    assert all(case.service.split("_")[0] for case in CONTROL_CASES)
