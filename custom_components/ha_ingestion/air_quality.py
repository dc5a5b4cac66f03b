"""Air quality platform: only mirrored remote entities (read-only, see mirror/)."""

from .mirror.platform import PARALLEL_UPDATES, async_setup_entry

__all__ = ["PARALLEL_UPDATES", "async_setup_entry"]
