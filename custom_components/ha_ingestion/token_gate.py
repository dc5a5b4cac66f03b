"""A token the remote rejected is remembered (as a fingerprint in the entry's data), never resent."""

from __future__ import annotations

import hashlib
from typing import Any

from homeassistant.const import CONF_ACCESS_TOKEN

from .const import CONF_REJECTED_TOKEN


def token_fingerprint(token: str) -> str:
    """A short one-way fingerprint of a token: enough to recognise it, useless to anyone else."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def token_rejected(data: dict[str, Any]) -> bool:
    """The entry's token is one the remote rejected before."""
    rejected = data.get(CONF_REJECTED_TOKEN)
    return rejected is not None and rejected == token_fingerprint(data[CONF_ACCESS_TOKEN])
