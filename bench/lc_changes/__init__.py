"""`lc_changes`: state changes made inside a real remote `hass`, for `scripts/bench local_cost`.

Loaded by the benchmark's remote (linked into its `custom_components/`). One service,
`lc_changes.run` (`count`, `rate` per second, 0 = as fast as the event loop goes, `entities`,
`first`), sets `count` states round robin over `sensor.lc_bench_<n>` with `hass.states.async_set`,
as an integration updating its sensors would, and answers how long it took. The changes are made
in the remote's own event loop: no request per change is parsed, so the remote's CPU over a run is
its own cost of the changes (state machine, recorder, its subscribers), not an API's.

Each sensor has about 1 KB of attributes; a change sets a new state and one small attribute
(`phase`, one of three values), the rest stays: like a real power sensor, whose attributes the
recorder stores once per distinct set (`state_attributes` is de-duplicated).
"""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.helpers.typing import ConfigType

DOMAIN = "lc_changes"
PREFIX = "sensor.lc_bench_"
PHASES = ("L1", "L2", "L3")
DESCRIPTION = (
    "Three-phase power meter in the utility room, polled by the vendor cloud every few seconds. "
    "The reading is the active power summed over all phases; reactive power, voltage and current "
    "per phase are separate sensors of the same device. Calibrated on installation against the "
    "utility's meter (deviation below 0.5 %). Firmware updates are applied by the vendor over the "
    "air and may briefly make the device unavailable. Maintenance contact: the building manager."
)


def attributes(n: int, serial: int) -> dict[str, Any]:
    """Sensor `n`'s attributes at change `serial`: about 1 KB, only `phase` varies."""
    return {
        "state_class": "measurement",
        "unit_of_measurement": "W",
        "device_class": "power",
        "friendly_name": f"Bench power {n}",
        "icon": "mdi:flash",
        "manufacturer": "Bench Meters Ltd",
        "model": "BM-3P-63A",
        "serial_number": f"BM3P-{n:08d}",
        "firmware": "4.12.7 (build 20261107)",
        "installed": "2024-05-17",
        "location": "Utility room, distribution board 2, row 3",
        "description": DESCRIPTION,
        "tariff_zones": ["peak", "shoulder", "off_peak"],
        "phase": PHASES[(serial // 7) % len(PHASES)],
    }


def state(serial: int) -> str:
    """The state of change `serial` (never the same twice in a row for an entity)."""
    return f"{(serial * 37) % 50_000 / 10:.1f}"


async def make_changes(
    hass: HomeAssistant, count: int, rate: float, entities: int, first: int
) -> float:
    """Set `count` states (change serials first .. first + count - 1); the seconds it took."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    for i in range(count):
        serial = first + i
        n = serial % entities
        hass.states.async_set(f"{PREFIX}{n}", state(serial), attributes(n, serial))
        # Paced: sleep until the next change is due. Unpaced: let the loop run everything else
        # (recorder queue, WebSocket writers) between two changes, as separate updates would.
        delay = began + (i + 1) / rate - loop.time() if rate > 0 else 0.0
        await asyncio.sleep(max(0.0, delay))
    return loop.time() - began


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register `lc_changes.run`."""

    async def run(call: ServiceCall) -> ServiceResponse:
        data = call.data
        seconds = await make_changes(
            hass,
            int(data["count"]),
            float(data.get("rate", 0)),
            int(data["entities"]),
            int(data.get("first", 0)),
        )
        return {"seconds": seconds, "count": int(data["count"])}

    hass.services.async_register(DOMAIN, "run", run, supports_response=SupportsResponse.ONLY)
    return True
