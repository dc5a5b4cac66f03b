"""Self-link: when the remote is this very instance, never capture what capture itself causes.

How "the remote is this instance" is decided: the entry's access token is validated by this
instance's own auth (`hass.auth.async_validate_access_token`). A long-lived token is a JWT signed
with a key that exists only in the auth store of the instance that issued it, so it validates here
exactly when this instance issued it, that is when the remote is this instance. Names, URLs and
location data can repeat or change (two homes called "Home", a proxy in front); user ids are
random but a check on them is still only a lookup, while the signature cannot be faked. The one
case it cannot tell apart is a full clone of this instance's storage running elsewhere (a restored
backup on a second machine): it then filters the clone's ha_ingestion entities too (see README).

What is filtered then: state changes of any entity of this integration (its counters move with
every captured event, which would feed itself forever) and `ha_ingestion_event`s.
"""

from __future__ import annotations

from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from ..const import DOMAIN  # noqa: TID252 - the package's own constants


@callback
def remote_is_this_instance(hass: HomeAssistant, token: str) -> bool:
    """The entry's token was issued by this instance (see the module docstring)."""
    return hass.auth.async_validate_access_token(token) is not None


class OwnEntities:
    """The entity ids of this integration's entities, kept current from the entity registry."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing is read until `async_start()`."""
        self.hass = hass
        self.entity_ids: set[str] = set()
        self._unsub: CALLBACK_TYPE | None = None

    @callback
    def async_start(self) -> None:
        """Read the registry and follow its changes."""
        self._refresh()
        self._unsub = self.hass.bus.async_listen(
            er.EVENT_ENTITY_REGISTRY_UPDATED, self._on_registry_updated
        )

    @callback
    def async_stop(self) -> None:
        """Stop following the registry."""
        if self._unsub is not None:
            self._unsub()
            self._unsub = None

    @callback
    def _on_registry_updated(self, _event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        self._refresh()

    def _refresh(self) -> None:
        registry = er.async_get(self.hass)
        self.entity_ids = {
            entry.entity_id for entry in registry.entities.values() if entry.platform == DOMAIN
        }
