"""`lc_profile`: cProfile inside the benchmark's local `hass`, for `scripts/bench local_cost --profile`.

`lc_profile.start` enables a `cProfile.Profile` (on Python 3.12+ it sees every thread of the
process through `sys.monitoring`: the event loop's and the recorder's); `lc_profile.stop` with
`path` disables it and writes `<path>.prof` and `<path>.txt` (the top functions by own time and by
cumulative time). Home Assistant's own `profiler` integration does the same but needs packages the
benchmark's environment does not have.
"""

from __future__ import annotations

import cProfile
import io
from pathlib import Path
import pstats

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers.typing import ConfigType

DOMAIN = "lc_profile"


def profile_text(profiler: cProfile.Profile, limit: int = 40) -> str:
    """The top `limit` functions by own time, then by cumulative time."""
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs()
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return stream.getvalue()


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register `lc_profile.start` and `lc_profile.stop`."""
    profilers: list[cProfile.Profile] = []

    async def start(call: ServiceCall) -> None:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()

    async def stop(call: ServiceCall) -> None:
        if not profilers:
            return
        profiler = profilers.pop()
        profiler.disable()
        path = Path(call.data["path"])
        text = profile_text(profiler)

        def write() -> None:
            profiler.dump_stats(f"{path}.prof")
            Path(f"{path}.txt").write_text(text, encoding="utf-8")

        await hass.async_add_executor_job(write)

    hass.services.async_register(DOMAIN, "start", start)
    hass.services.async_register(DOMAIN, "stop", stop)
    return True
