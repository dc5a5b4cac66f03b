"""A token the remote rejected is remembered (as a fingerprint in the entry's data), never resent.

Two halves: the durable one, the rejected token's fingerprint in the entry's data (a reload, a
restart or an update never sends it again); and the live one, the entry's `TokenGate`
(client/token_gate.py), shared by every connection that sends the entry's token (the link, the
backfill's history session, the options flow's check, the reconfigure check). A rejection met by
any of them closes the gate, so none sends the token again, and is remembered durably.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant

from .client import TokenGate, token_fingerprint
from .const import CONF_REJECTED_TOKEN

__all__ = [
    "entry_token_gate",
    "new_token_gate",
    "remember_rejected",
    "token_fingerprint",
    "token_rejected",
]


def token_rejected(data: dict[str, Any]) -> bool:
    """The entry's token is one the remote rejected before."""
    rejected = data.get(CONF_REJECTED_TOKEN)
    return rejected is not None and rejected == token_fingerprint(data[CONF_ACCESS_TOKEN])


def new_token_gate(data: dict[str, Any]) -> TokenGate:
    """The gate of an entry's token: closed when the entry remembers its rejection."""
    return TokenGate(data[CONF_ACCESS_TOKEN], rejected=token_rejected(data))


def remember_rejected(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Remember durably that the remote rejected the entry's current token (idempotent)."""
    if token_rejected(dict(entry.data)):
        return
    hass.config_entries.async_update_entry(
        entry,
        data={**entry.data, CONF_REJECTED_TOKEN: token_fingerprint(entry.data[CONF_ACCESS_TOKEN])},
    )


def entry_token_gate(hass: HomeAssistant, entry: ConfigEntry) -> TokenGate:
    """The gate for a connection with the entry's token, outside the running link.

    A loaded entry's own gate (its link, backfill and checks share it; its coordinator remembers a
    rejection and starts reauth); for an entry that is not loaded, a gate of its own whose
    rejection is remembered in the entry, so the next setup does not send the token either.
    """
    runtime = getattr(entry, "runtime_data", None)
    gate: TokenGate | None = getattr(runtime, "token_gate", None)
    if (
        entry.state is ConfigEntryState.LOADED
        and gate is not None
        and gate.matches(entry.data[CONF_ACCESS_TOKEN])
    ):
        return gate
    gate = new_token_gate(dict(entry.data))
    gate.add_listener(lambda: remember_rejected(hass, entry))
    return gate
