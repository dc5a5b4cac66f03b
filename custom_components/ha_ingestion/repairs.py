"""Repairs: a link that gave up after max attempts can be retried from the repair."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.core import HomeAssistant

from .data import HaIngestionConfigEntry


class RetryLinkRepairFlow(RepairsFlow):
    """Confirm, then make an immediate attempt (resets the breaker and the failed state)."""

    def __init__(self, entry: HaIngestionConfigEntry | None) -> None:
        """Remember which link to retry."""
        self._entry = entry

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Start at the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Retry now."""
        if self._entry is None or not hasattr(self._entry, "runtime_data"):
            return self.async_abort(reason="entry_not_loaded")
        if user_input is not None:
            await self._entry.runtime_data.coordinator.supervisor.reconnect()
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm", description_placeholders={"name": self._entry.title}
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the fix flow of a repair issue."""
    entry_id = str((data or {}).get("entry_id", ""))
    entry = hass.config_entries.async_get_entry(entry_id)
    return RetryLinkRepairFlow(entry)
