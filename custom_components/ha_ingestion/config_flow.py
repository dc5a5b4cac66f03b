"""Config flow for HA Ingestion."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_URL
import voluptuous as vol

from .const import DOMAIN


class HaIngestionConfigFlow(ConfigFlow, domain=DOMAIN):
    """Link to a remote Home Assistant."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the remote's URL and a long-lived access token."""
        if user_input is not None:
            await self.async_set_unique_id(user_input[CONF_URL])
            self._abort_if_unique_id_configured()
            return self.async_create_entry(title=user_input[CONF_URL], data=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(
                {vol.Required(CONF_URL): str, vol.Required(CONF_ACCESS_TOKEN): str}
            ),
        )
