"""A flow form as the frontend sees, fills in and submits it (shared by the flow tests).

The schema is serialized as Home Assistant sends it to the frontend; the initial data follows the
frontend's rules (suggested value, else default; a section holds its fields' data; a required field
without either starts empty), and so does the submission: it is refused while a required field is
empty, and empty optional fields are left out.
"""

from __future__ import annotations

from typing import Any

from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import config_validation as cv

# Home Assistant serializes schemas with probatio from 2026.9, with voluptuous_serialize before.
try:
    from probatio import (
        to_field_list as _to_fields,  # type: ignore[import-not-found, unused-ignore]
    )
except ImportError:  # Home Assistant before 2026.9
    from voluptuous_serialize import convert as _to_fields  # type: ignore[no-redef, unused-ignore]

_EMPTY = ("", None)


def serialized(result: FlowResult) -> list[dict[str, Any]]:
    """The form's fields as the frontend receives them."""
    fields: list[dict[str, Any]] = _to_fields(
        result["data_schema"], custom_serializer=cv.custom_serializer
    )
    return fields


def _empty_value(field: dict[str, Any]) -> Any:
    """What the frontend starts a required field without suggestion or default with."""
    selector = field.get("selector", {})
    if field.get("type") == "boolean" or "boolean" in selector:
        return False
    if "number" in selector:
        return selector["number"].get("min", 0)
    if "select" in selector and selector["select"].get("multiple"):
        return []
    return ""


def initial_data(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The data the form opens with."""
    data: dict[str, Any] = {}
    for field in fields:
        name = field["name"]
        suggested = (field.get("description") or {}).get("suggested_value")
        if suggested is not None:
            data[name] = suggested
        elif "default" in field:
            data[name] = field["default"]
        elif field.get("type") == "expandable":
            inner = initial_data(field["schema"])
            if field.get("required") or inner:
                data[name] = inner
        elif field.get("required"):
            data[name] = _empty_value(field)
    return data


def empty_required(fields: list[dict[str, Any]], data: dict[str, Any], path: str = "") -> set[str]:
    """Required fields left empty: the frontend refuses to submit ("Not all required fields are
    filled in")."""
    empty: set[str] = set()
    for field in fields:
        name = field["name"]
        value = data.get(name)
        if field.get("type") == "expandable" and isinstance(value, dict):
            empty |= empty_required(field["schema"], value, f"{path}{name}.")
        elif field.get("required") and value in _EMPTY:
            empty.add(f"{path}{name}")
    return empty


def _without_empty_optionals(fields: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    sent: dict[str, Any] = {}
    for field in fields:
        name = field["name"]
        if name not in data:
            continue
        value = data[name]
        if field.get("type") == "expandable" and isinstance(value, dict):
            sent[name] = _without_empty_optionals(field["schema"], value)
        elif field.get("required") or value not in _EMPTY:
            sent[name] = value
    return sent


def as_opened(result: FlowResult, **typed: Any) -> dict[str, Any]:
    """What submitting the form sends when the user only types `typed` (top-level fields).

    Fails like the frontend when a required field is still empty.
    """
    return submission(serialized(result), **typed)


def submission(fields: list[dict[str, Any]], **typed: Any) -> dict[str, Any]:
    """`as_opened` for a form's fields as serialized (a REST answer's `data_schema`)."""
    data = {**initial_data(fields), **typed}
    assert empty_required(fields, data) == set(), "Not all required fields are filled in"
    return _without_empty_optionals(fields, data)
