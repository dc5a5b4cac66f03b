"""The remote's devices and areas here: each remote device with a mirror becomes a local device.

At each (re)connect the remote's registries are read (`config/entity_registry/list_for_display`
for each entity's device, `config/device_registry/list` and `config/area_registry/list`, both
admin only). Every remote device with a mirrored entity is a local device of the entry, linked
under the instance's device (`via_device_id`, set with `async_update_device`: the one way that
reports nothing from the floor to the newest release; `DeviceInfo.via_device` is deprecated from
2026.9 and `DeviceInfo.via_device_id` unknown on the floor). Its mirrors are on it; entities
without a remote device stay on the instance device.

- Identity: `(DOMAIN, f"{entry unique id}_{remote device id}")`, stable across relinks.
- Names: `name` follows the remote (its `name_by_user` if set, else `name`); the user's name
  here (`name_by_user`) is never written.
- Areas: matched by name (created if missing); set at creation, or when the remote's changes
  and the user left the one we last set (recorded in the entry's Store).
- Removal: only when a registry read succeeded and lacks the device; never on a link loss.
- A non-admin token (`unauthorized`): every mirror stays on the instance device; diagnostics say so.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import area_registry as ar, device_registry as dr, entity_registry as er
from homeassistant.helpers.storage import Store

from ..client import HaClientError, HaCommandError, LinkEngine  # noqa: TID252 - the engine
from ..client.tasks import TaskSet  # noqa: TID252 - the entry's tasks
from ..const import DOMAIN  # noqa: TID252 - the package's own constants
from ..slices import Slices  # noqa: TID252 - long work in slices
from .names import local_name  # noqa: F401 - re-exported for tests

if TYPE_CHECKING:
    from ..data import HaIngestionConfigEntry  # noqa: TID252
    from .local_entities import LocalMirrors

LOGGER = logging.getLogger(__name__)
UNAUTHORIZED = "unauthorized"
STORE_VERSION = 1
_UNSET = object()


@dataclass(frozen=True, slots=True)
class RemoteDevice:
    """One device of the remote's registry, as read."""

    device_id: str
    name: str | None
    manufacturer: str | None
    model: str | None
    model_id: str | None
    sw_version: str | None
    hw_version: str | None
    area_id: str | None


def _opt_str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None or type(value) is str:
        return value
    raise TypeError(key)


def parse_device(item: Any) -> RemoteDevice:
    """A device of `config/device_registry/list`; TypeError/KeyError when it is not one."""
    if type(item) is not dict:
        raise TypeError("device")
    device_id = item["id"]
    if type(device_id) is not str or not device_id:
        raise TypeError("id")
    return RemoteDevice(
        device_id=device_id,
        name=_opt_str(item, "name_by_user") or _opt_str(item, "name"),
        manufacturer=_opt_str(item, "manufacturer"),
        model=_opt_str(item, "model"),
        model_id=_opt_str(item, "model_id"),
        sw_version=_opt_str(item, "sw_version"),
        hw_version=_opt_str(item, "hw_version"),
        area_id=_opt_str(item, "area_id"),
    )


class RemoteDevices:
    """The remote's devices and areas as local devices of one entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestionConfigEntry,
        engine: LinkEngine,
        local: LocalMirrors,
        tasks: TaskSet,
        remote_url: str,
    ) -> None:
        """Nothing read until the link is up (`link_up`)."""
        self.hass = hass
        self.entry = entry
        self.engine = engine
        self.local = local
        self.tasks = tasks
        self.remote_url = remote_url.rstrip("/")
        self.ident_base = f"{entry.unique_id or entry.entry_id}_"
        self.admin: bool | None = None  # unknown until read
        self.read_ok = False  # a full registry read succeeded on this run
        self.entity_devices: dict[str, str] = {}  # remote entity id -> remote device id
        self.devices: dict[str, RemoteDevice] = {}  # remote device id -> device
        self.area_names: dict[str, str] = {}  # remote area id -> name
        self.skipped: dict[str, int] = {}  # reason -> count (last read)
        self.removed = 0
        self.reads = 0
        self.applied = 0  # reads whose devices, areas and removals are done here
        self._logged: set[str] = set()
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.devices.{entry.entry_id}"
        )
        self._areas_set: dict[str, str | None] | None = None  # local device id -> area name set
        # Since the last read: the local device id of each identifier set made to match (each
        # device once, however many mirrors it has).
        self._device_ids: dict[tuple[tuple[str, str], ...], str] = {}

    # ------------------------------------------------------------------ identity

    def identifier(self, remote_device_id: str) -> tuple[str, str]:
        """The local device's identifier for a remote device."""
        return (DOMAIN, self.ident_base + remote_device_id)

    def _remote_device_of(self, device: Any) -> str | None:
        """The remote device id of one of our local devices (None: not one)."""
        for domain, ident in device.identifiers:
            if domain == DOMAIN and ident.startswith(self.ident_base):
                return str(ident)[len(self.ident_base) :]
        return None

    def device_for(self, remote_id: str, unique_id: str) -> tuple[set[tuple[str, str]], str | None]:
        """A mirror's device identifiers and its device's name (None: the instance device).

        Before this run's registry read: the device it had (the registry keeps it).
        """
        instance = {(DOMAIN, self.entry.entry_id)}
        if self.read_ok:
            device = self.devices.get(self.entity_devices.get(remote_id, ""))
            if device is None or self._areas_set is None:
                return instance, None
            self._ensure_now(device)  # a mirror new since the read: its device first
            return {self.identifier(device.device_id)}, device.name
        ent_reg = er.async_get(self.hass)
        domain = remote_id.partition(".")[0]
        entity_id = ent_reg.async_get_entity_id(domain, DOMAIN, unique_id)
        entry = ent_reg.async_get(entity_id) if entity_id else None
        if entry is None or entry.device_id is None:
            return instance, None
        local = dr.async_get(self.hass).async_get(entry.device_id)
        if local is None or self._remote_device_of(local) is None:
            return instance, None
        return set(local.identifiers), local.name

    # ------------------------------------------------------------------ reading

    @callback
    def link_up(self) -> None:
        """A new connection: read the remote's registries."""
        self.tasks.start(self._read(), "remote devices")

    async def _read(self) -> None:
        """The three registries, then the local devices made to match; never raises."""
        try:
            shown = await self.engine.command({"type": "config/entity_registry/list_for_display"})
        except HaClientError as err:
            LOGGER.debug("Entity registry of %s not read: %s", self.entry.title, err)
            return
        entity_devices: dict[str, str] = {}
        rows = shown.get("entities") if type(shown) is dict else None
        for row in rows if type(rows) is list else ():
            if type(row) is dict and type(row.get("ei")) is str and type(row.get("di")) is str:
                entity_devices[row["ei"]] = row["di"]
        try:
            devices = await self.engine.command({"type": "config/device_registry/list"})
            areas = await self.engine.command({"type": "config/area_registry/list"})
        except HaCommandError as err:
            if err.code != UNAUTHORIZED:
                LOGGER.debug("Device registry of %s not read: %s", self.entry.title, err)
                return
            if self.admin is not False:
                LOGGER.warning(
                    "The token of %s is not an administrator's: the remote's devices and areas "
                    "cannot be read, every mirror stays on the instance device",
                    self.entry.title,
                )
            self.admin = False
            self.read_ok = True
            self.entity_devices, self.devices, self.area_names = entity_devices, {}, {}
            await self._apply(confirmed=False)
            return
        except HaClientError as err:
            LOGGER.debug("Device registry of %s not read: %s", self.entry.title, err)
            return
        self.admin = True
        self.reads += 1
        skipped: dict[str, int] = {}
        parsed: dict[str, RemoteDevice] = {}
        for item in devices if type(devices) is list else ():
            try:
                device = parse_device(item)
            except (KeyError, TypeError) as err:
                reason = f"bad_{err.args[0] if err.args else 'device'}"
                skipped[reason] = skipped.get(reason, 0) + 1
                if reason not in self._logged:
                    self._logged.add(reason)
                    LOGGER.warning(
                        "A device of %s is not shown as a device here (%s); its mirrors stay "
                        "on the instance device",
                        self.entry.title,
                        reason.replace("_", " "),
                    )
                continue
            parsed[device.device_id] = device
        area_names: dict[str, str] = {}
        for item in areas if type(areas) is list else ():
            if (
                type(item) is dict
                and type(item.get("area_id")) is str
                and type(item.get("name")) is str
            ):
                area_names[item["area_id"]] = item["name"]
        self.skipped = skipped
        self.entity_devices, self.devices, self.area_names = entity_devices, parsed, area_names
        self.read_ok = True
        await self._apply(confirmed=type(devices) is list)
        self.applied += 1

    # ------------------------------------------------------------------ applying

    async def _apply(self, *, confirmed: bool) -> None:
        """Local devices for the devices with mirrors; the mirrors on theirs; gone ones removed.

        In slices: a big remote has thousands of mirrors, each looked at once per connect.
        """
        if self._areas_set is None and self.devices:  # no file read for a remote without any
            stored = await self._store.async_load() or {}
            kept = stored.get("areas_set")
            self._areas_set = dict(kept) if type(kept) is dict else {}
        self._device_ids.clear()  # this read's devices are made to match once each
        wanted = {
            device_id
            for remote_id in self.local.entities
            if (device_id := self.entity_devices.get(remote_id)) in self.devices
        }
        slices = Slices()
        for device_id in sorted(wanted):
            self._ensure_now(self.devices[device_id])
            await slices.tick()
        for remote_id, entity in list(self.local.entities.items()):
            identifiers, device_name = self.device_for(remote_id, entity.unique_id or "")
            entity.set_device(identifiers, device_name)
            self._move(entity.entity_id, identifiers)
            await slices.tick()
        if confirmed:
            self._remove_gone(dr.async_get(self.hass))

    def _ensure_now(self, device: RemoteDevice) -> None:
        """The local device of `device` as the remote has it, under the instance device.

        Once per registry read (each of its mirrors asks).
        """
        areas_set = self._areas_set
        if areas_set is None:  # pragma: no cover - loaded before any device is known
            return
        key = (self.identifier(device.device_id),)
        if key in self._device_ids:
            return
        dev_reg = dr.async_get(self.hass)
        entry_id = self.entry.entry_id
        instance = self._local_device_id(dev_reg, {(DOMAIN, entry_id)})
        local_id, changed = self._ensure(dev_reg, device, instance, areas_set)
        self._device_ids[key] = local_id
        if changed:
            self._store.async_delay_save(lambda: {"areas_set": areas_set}, 1)

    def _local_device_id(
        self, dev_reg: dr.DeviceRegistry, identifiers: set[tuple[str, str]]
    ) -> str:
        """The local device with these identifiers (made if missing), once per read."""
        key = tuple(sorted(identifiers))
        device_id = self._device_ids.get(key)
        if device_id is None:
            device_id = dev_reg.async_get_or_create(
                config_entry_id=self.entry.entry_id, identifiers=identifiers
            ).id
            self._device_ids[key] = device_id
        return device_id

    def _ensure(
        self,
        dev_reg: dr.DeviceRegistry,
        device: RemoteDevice,
        via: str,
        areas_set: dict[str, str | None],
    ) -> tuple[str, bool]:
        """The local device of `device`, as the remote has it: (its id, the area record changed)."""
        local = dev_reg.async_get_or_create(
            config_entry_id=self.entry.entry_id,
            identifiers={self.identifier(device.device_id)},
            name=device.name,
            manufacturer=device.manufacturer,
            model=device.model,
            model_id=device.model_id,
            sw_version=device.sw_version,
            hw_version=device.hw_version,
            configuration_url=f"{self.remote_url}/config/devices/device/{device.device_id}",
        )
        updates: dict[str, Any] = {}
        if local.via_device_id != via:
            updates["via_device_id"] = via
        area_name = self.area_names.get(device.area_id or "")
        last = areas_set.get(local.id, _UNSET)
        record = False
        if last is _UNSET:  # created now, or before areas were followed
            record = True
        elif area_name != last:
            current = ar.async_get(self.hass).async_get_area(local.area_id or "")
            # Followed only while the user left the area we set.
            record = (current.name if current else None) == last
        if record:
            area_id = (
                ar.async_get(self.hass).async_get_or_create(area_name).id if area_name else None
            )
            if local.area_id != area_id:
                updates["area_id"] = area_id
        if updates:
            dev_reg.async_update_device(local.id, **updates)
        if record and last != area_name:
            areas_set[local.id] = area_name
            return local.id, True
        return local.id, False

    def _move(self, entity_id: str, identifiers: set[tuple[str, str]]) -> None:
        """The registered mirror on its device (when it already is added)."""
        ent_reg = er.async_get(self.hass)
        entry = ent_reg.async_get(entity_id)
        if entry is None:
            return
        device_id = self._local_device_id(dr.async_get(self.hass), identifiers)
        if entry.device_id != device_id:
            ent_reg.async_update_entity(entity_id, device_id=device_id)

    def _remove_gone(self, dev_reg: dr.DeviceRegistry) -> None:
        """Remove the local devices the remote's registry (read just now) lacks."""
        for local in dr.async_entries_for_config_entry(dev_reg, self.entry.entry_id):
            remote = self._remote_device_of(local)
            if remote is None or remote in self.devices:
                continue
            dev_reg.async_remove_device(local.id)
            self.removed += 1
            if self._areas_set is not None:
                self._areas_set.pop(local.id, None)
            LOGGER.info(
                "%s removed its device %s: its local device %s is removed",
                self.entry.title,
                remote,
                local.name,
            )

    def can_remove(self, device: dr.DeviceEntry) -> bool:
        """The user may delete a local device the remote no longer has (or never told)."""
        remote = self._remote_device_of(device)
        if remote is None:
            return False
        return not self.read_ok or remote not in self.devices

    def as_dict(self) -> dict[str, Any]:
        """What diagnostics show: the device mapping."""
        mapped = {
            self.entity_devices[r]
            for r in self.local.entities
            if self.entity_devices.get(r) in self.devices
        }
        return {
            "admin": self.admin,
            "read": self.read_ok,
            "remote_devices": len(self.devices),
            "mapped": len(mapped),
            "mirrors_on_devices": sum(
                1 for r in self.local.entities if self.entity_devices.get(r) in self.devices
            ),
            "skipped": dict(self.skipped),
            "removed": self.removed,
            "remote_areas": len(self.area_names),
        }
