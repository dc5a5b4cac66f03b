"""A mirror's name on its remote device."""

from __future__ import annotations


def local_name(friendly_name: str, device_name: str | None) -> str | None:
    """The mirror's own name on its device: the remote's friendly name less its device name.

    Home Assistant composes "<device name> <entity name>" (None: the device's main entity).
    """
    if not device_name:
        return friendly_name
    if friendly_name == device_name:
        return None
    if friendly_name.startswith(device_name + " "):
        return friendly_name[len(device_name) + 1 :]
    return friendly_name
