"""Integration-level end-to-end tests: the integration, set up through its config flow, linked to a real remote `hass`."""
