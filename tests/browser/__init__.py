"""Real-browser tests: the integration's flows driven through Home Assistant's own frontend."""
