"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Generator

import pytest

# The in-process fake Home Assistant WebSocket server and its `fake_ha` fixture.
pytest_plugins = ["tests.fake_ha"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> Generator[None]:
    """Let Home Assistant load integrations from custom_components/."""
    return


