"""What an in-process test Home Assistant imports before it starts (the suite, the benchmarks)."""

from __future__ import annotations

import importlib

from custom_components.ha_ingestion.mirror import MIRROR_DOMAINS


def import_platform_modules() -> None:
    """Every component a mirrored domain (or the link's own platforms) needs, and the
    integration's platform modules (the native mirrors import more of each domain)."""
    for domain in sorted({*MIRROR_DOMAINS, "binary_sensor", "button", "sensor"}):
        importlib.import_module(f"homeassistant.components.{domain}")
        importlib.import_module(f"custom_components.ha_ingestion.{domain}")
