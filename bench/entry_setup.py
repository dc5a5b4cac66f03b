"""entry_setup: how long setting up one mirroring entry takes, and what it sets up.

Each run is a fresh test Home Assistant (`bench.hass_env.TestHass`: its components set up for the
first time in it) and the in-process fake remote of the suite (`tests.fake_ha.FakeHA`) with one
sensor and one light. One mirroring entry (backfill off) is added: timed is
`hass.config_entries.async_setup` (its first connection attempt included), then, from the same
start, until both mirrors show the remote's states (the light's platform is loaded after setup
has returned, when the light is first mirrored). The first run also pays the imports of the
modules it is the first to load; the median is over the others. Also reported: the components
set up in `hass` when setup returns and once both mirrors are there.

Run on each release: `scripts/bench entry_setup` (current), `scripts/run --ha floor python -m
bench entry_setup`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

from .common import ROOT, Result, log, wait_for
from .hass_env import TestHass, integration_available
from .server import TOKEN

FULL = {"runs": 5}
QUICK = {"runs": 2}
SENSOR = ("sensor.power", "12", {"unit_of_measurement": "W"})
LIGHT = ("light.desk", "on", {"brightness": 10})
PREFIX = "bench_home"  # the mirrors' prefix: from the entry's title, "Bench Home"


async def _one_run() -> tuple[float, float, int, int]:
    """(setup s, until both mirrors s, components after setup, components at the end)."""
    from custom_components.ha_ingestion.const import CONF_BACKFILL, CONF_MIRROR_ENTITIES
    from tests.fake_ha import FakeHA

    remote = FakeHA(token=TOKEN)
    await remote.start()
    try:
        for entity_id, state, attributes in (SENSOR, LIGHT):
            await remote.fire_state_changed(entity_id, state, attributes)
        async with TestHass() as env:
            hass = env.hass

            def mirrored(remote_id: str, state: str) -> bool:
                domain, _, name = remote_id.partition(".")
                found = hass.states.get(f"{domain}.{PREFIX}_{name}")
                return found is not None and found.state == state

            began = time.perf_counter()
            await env.add_entry(remote.url, {CONF_MIRROR_ENTITIES: True, CONF_BACKFILL: False})
            if not await wait_for(
                lambda: mirrored(SENSOR[0], SENSOR[1]) and mirrored(LIGHT[0], LIGHT[1]), 30, 0.001
            ):
                raise RuntimeError("the mirrors did not appear")
            both = time.perf_counter() - began
            components = len(hass.config.components)
            return env.setup_seconds, both, env.components_at_setup, components
    finally:
        await remote.stop()


def _child(warm: bool) -> dict[str, float | int]:
    """One run in this process (a fresh one): its figures."""
    if warm:
        from tests.preload import import_platform_modules

        import_platform_modules()  # what the suite's processes import first
    setup, both, components, components_end = asyncio.run(_one_run())
    return {
        "setup_ms": setup * 1000,
        "until_both_mirrors_ms": both * 1000,
        "components_after_setup": components,
        "components_at_end": components_end,
    }


def _spawn(warm: bool) -> dict[str, float | int]:
    """One run in a child process of its own: one Home Assistant per process, as a user has."""
    cmd = [sys.executable, "-m", "bench.entry_setup", "--warm" if warm else "--cold"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"a run failed: {proc.stderr.strip()[-2000:]}")
    figures: dict[str, float | int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


async def run(quick: bool) -> Result:
    """`runs` fresh processes of each kind (cold, warm), alternating; one entry set up in each."""
    size = QUICK if quick else FULL
    result = Result("entry_setup", quick, params=dict(size))
    if not integration_available():
        result.add("entry setup", "pending: needs coordinator")
        return result
    from homeassistant.const import __version__

    runs: dict[str, list[dict[str, float | int]]] = {"cold": [], "warm": []}
    for index in range(size["runs"]):
        for kind, done in runs.items():
            done.append(_spawn(kind == "warm"))
            log(f"entry_setup: {kind} run {index + 1}: {done[-1]}")
    result.details |= {"release": __version__, "runs": runs}
    result.add(f"Home Assistant {__version__}: runs of each kind", size["runs"], digits=0)
    for kind, label in (("cold", "nothing imported"), ("warm", "modules imported")):
        for key, what in (("setup_ms", "setup"), ("until_both_mirrors_ms", "both mirrors there")):
            median = statistics.median(float(r[key]) for r in runs[kind])
            result.add(f"{what}, median ({label})", median, "ms", digits=1)
    last = runs["warm"][-1]
    result.add("components set up when setup returns", last["components_after_setup"], digits=0)
    result.add("components set up once both mirrors are there", last["components_at_end"], digits=0)
    return result


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1:] == ["--warm"])), flush=True)
