"""Button: reconnect now; and the remote's buttons mirrored, pressed through the link (mirror/)."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import HaIngestionConfigEntry
from .entity import HaIngestionEntity
from .mirror.entity import NativeMirror, forward

PARALLEL_UPDATES = 1

RECONNECT = ButtonEntityDescription(
    key="reconnect",
    translation_key="reconnect",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HaIngestionConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the reconnect button (and the mirrored buttons, while mirroring)."""
    async_add_entities([HaIngestionReconnectButton(entry.runtime_data.coordinator, RECONNECT)])
    entry.runtime_data.mirror.async_add_platform("button", async_add_entities, ButtonMirror)


class HaIngestionReconnectButton(HaIngestionEntity, ButtonEntity):
    """Immediate attempt; resets the circuit breaker and a failed link."""

    async def async_press(self) -> None:
        """Reconnect now."""
        await self.coordinator.async_reconnect()


class ButtonMirror(NativeMirror, ButtonEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote button: a press here presses it on the remote."""

    async_press = forward("press")
