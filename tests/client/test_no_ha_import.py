"""The engine must stay free of Home Assistant: no module in client/ imports `homeassistant`."""

from __future__ import annotations

import ast
from pathlib import Path

import custom_components.ha_ingestion.client as client_package

CLIENT_DIR = Path(client_package.__file__).parent


def _imported_modules(tree: ast.AST) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules.append(node.args[0].value)
    return modules


def test_client_files_found() -> None:
    names = {p.name for p in CLIENT_DIR.glob("*.py")}
    assert {"protocol.py", "engine.py", "errors.py", "models.py"} <= names


def test_no_homeassistant_import() -> None:
    offenders = []
    for path in sorted(CLIENT_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders.extend(
            f"{path.name}: {module}"
            for module in _imported_modules(tree)
            if module == "homeassistant" or module.startswith("homeassistant.")
        )
    assert offenders == []


def test_no_relative_escape_to_the_integration() -> None:
    # `from .. import x` would reach the HA-bound integration package.
    for path in sorted(CLIENT_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name} imports from outside client/"


def test_detector_works() -> None:
    tree = ast.parse(
        "import homeassistant.core\nfrom homeassistant import const\n"
        "importlib.import_module('homeassistant.util')\n"
    )
    assert _imported_modules(tree) == [
        "homeassistant.core",
        "homeassistant",
        "homeassistant.util",
    ]
