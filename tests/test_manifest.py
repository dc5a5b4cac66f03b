"""manifest.json and hacs.json follow hassfest's and HACS's rules; translations match strings.json."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
import pytest

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / "ha_ingestion"

MANIFEST_REQUIRED = {
    "domain",
    "name",
    "codeowners",
    "config_flow",
    "documentation",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "version",
}
MANIFEST_ALLOWED = MANIFEST_REQUIRED | {
    "after_dependencies",
    "bluetooth",
    "dependencies",
    "dhcp",
    "homekit",
    "loggers",
    "mqtt",
    "quality_scale",
    "single_config_entry",
    "ssdp",
    "usb",
    "zeroconf",
}
HACS_ALLOWED = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_manifest_keys_and_order() -> None:
    manifest = _load(INTEGRATION / "manifest.json")
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"], "domain and name come first"
    assert keys[2:] == sorted(keys[2:]), "the other keys are sorted"
    assert set(manifest) >= MANIFEST_REQUIRED, MANIFEST_REQUIRED - set(manifest)
    assert set(manifest) <= MANIFEST_ALLOWED, set(manifest) - MANIFEST_ALLOWED
    assert "requirements" not in manifest, "we use only what Home Assistant ships"


def test_manifest_values() -> None:
    manifest = _load(INTEGRATION / "manifest.json")
    assert manifest["domain"] == INTEGRATION.name
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] in {"device", "hub", "service"}
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    version = AwesomeVersion(manifest["version"])
    assert version.strategy in {
        AwesomeVersionStrategy.SEMVER,
        AwesomeVersionStrategy.SIMPLEVER,
        AwesomeVersionStrategy.CALVER,
    }


def test_hacs_json() -> None:
    hacs = _load(ROOT / "hacs.json")
    assert set(hacs) <= HACS_ALLOWED, set(hacs) - HACS_ALLOWED
    assert hacs["name"]
    # The declared floor is the release the suite runs on as "floor" (requirements/floor.txt).
    floor_pin = re.search(
        r"^homeassistant==(\d+)\.(\d+)\.\d+$",
        (ROOT / "requirements" / "floor.txt").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert floor_pin is not None
    assert hacs["homeassistant"] == f"{floor_pin[1]}.{floor_pin[2]}.0"


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def test_translations_match_strings() -> None:
    strings = _flatten(_load(INTEGRATION / "strings.json"))
    english = _flatten(_load(INTEGRATION / "translations" / "en.json"))
    assert strings.keys() == english.keys()
    unresolved = [key for key, value in english.items() if "[%key:" in str(value)]
    assert not unresolved, f"translations/en.json must be written out: {unresolved}"


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_no_empty_strings(name: str) -> None:
    flat = _flatten(_load(INTEGRATION / name))
    assert all(isinstance(value, str) and value.strip() for value in flat.values())


QUALITY_RULES = {
    "bronze": "action-setup appropriate-polling brands common-modules config-flow-test-coverage "
    "config-flow dependency-transparency docs-actions docs-high-level-description "
    "docs-installation-instructions docs-removal-instructions entity-event-setup "
    "entity-unique-id has-entity-name runtime-data test-before-configure test-before-setup "
    "unique-config-entry",
    "silver": "action-exceptions config-entry-unloading docs-configuration-parameters "
    "docs-installation-parameters entity-unavailable integration-owner log-when-unavailable "
    "parallel-updates reauthentication-flow test-coverage",
    "gold": "devices diagnostics discovery-update-info discovery docs-data-update docs-examples "
    "docs-known-limitations docs-supported-devices docs-supported-functions "
    "docs-troubleshooting docs-use-cases dynamic-devices entity-category entity-device-class "
    "entity-disabled-by-default entity-translations exception-translations icon-translations "
    "reconfiguration-flow repair-issues stale-devices",
    "platinum": "async-dependency inject-websession strict-typing",
}


def test_quality_scale_is_complete() -> None:
    from homeassistant.util.yaml import load_yaml_dict

    rules = load_yaml_dict(str(INTEGRATION / "quality_scale.yaml"))["rules"]
    expected = {rule for tier in QUALITY_RULES.values() for rule in tier.split()}
    assert set(rules) == expected
    for name, rule in rules.items():
        if rule == "done":
            continue
        assert rule["status"] in {"done", "exempt"}, name
        if rule["status"] == "exempt":
            assert rule.get("comment"), f"{name}: an exemption needs a reason"


def test_brand_images() -> None:
    from PIL import Image

    with Image.open(INTEGRATION / "brand" / "icon.png") as icon:
        assert icon.size == (256, 256)
    with Image.open(INTEGRATION / "brand" / "icon@2x.png") as icon:
        assert icon.size == (512, 512)
    assert (INTEGRATION / "brand" / "logo.png").is_file()
