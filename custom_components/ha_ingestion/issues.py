"""Repair issues: every one of this integration's belongs to one config entry."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


def set_entry_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    key: str,
    severity: ir.IssueSeverity | None,
    placeholders: dict[str, str] | None = None,
    *,
    fixable: bool = False,
    learn_more_url: str | None = None,
) -> None:
    """Raise (a severity) or clear (None) the repair `key` of one entry.

    Every repair of this integration is one entry's: id `<key>_<entry_id>`, translation key `key`,
    not persistent (raised again while it applies); a fixable one carries the entry id for its flow.
    """
    issue_id = f"{key}_{entry.entry_id}"
    if severity is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=fixable,
        is_persistent=False,
        severity=severity,
        translation_key=key,
        translation_placeholders=placeholders,
        learn_more_url=learn_more_url,
        data={"entry_id": entry.entry_id} if fixable else None,
    )
