"""Device tracker platform: only mirrored remote entities (read-only; their zones are the remote's)."""

from .mirror.platform import PARALLEL_UPDATES, async_setup_entry

__all__ = ["PARALLEL_UPDATES", "async_setup_entry"]
