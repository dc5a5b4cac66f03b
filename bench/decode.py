"""decode: a big remote's first `subscribe_entities` message, decoded at once and in steps.

The message the engine receives first from a remote of N entities (compressed states with a few
attributes, as Home Assistant sends them): decoded by one `orjson.loads` call, and by
`client/decode.loads_in_steps` with the loop's pauses counted. Per way: the CPU time of the whole
decode and the longest step (the longest the loop waits), the best of several runs; also the
young collection the one-call decode sets off (its objects all arrive at once) and the longest
collection during the stepped one. The values are checked equal.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson

from custom_components.ha_ingestion.client import decode

from .common import Result, log

FULL = {"entities": 20_000, "runs": 5}
QUICK = {"entities": 5_000, "runs": 2}


def _message(entities: int) -> str:
    added = {
        f"sensor.bench_{n}": {
            "s": str(n),
            "a": {
                "unit_of_measurement": "W",
                "device_class": "power",
                "state_class": "measurement",
                "friendly_name": f"Bench {n}",
            },
            "c": "01JDKX8V6R3Q4E2ZP1W5B0N7MA",
            "lc": 1764683000.123456,
        }
        for n in range(entities)
    }
    return orjson.dumps({"id": 12, "type": "event", "event": {"a": added}}).decode()


class _Collections:
    """The longest collection while active."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._began = now
        else:
            self.longest = max(self.longest, now - self._began)


def _at_once(text: str, collections: _Collections) -> tuple[Any, float, float]:
    began = time.process_time()
    value = orjson.loads(text)
    cpu = time.process_time() - began
    gc.collect(0)  # what the next allocation would set off: a young collection of all of it
    return value, cpu, collections.longest


def _in_steps(text: str) -> tuple[Any, float, float, int]:
    steps = decode.loads_in_steps(text)
    total = longest = 0.0
    pauses = 0
    while True:
        began = time.process_time()
        try:
            next(steps)
        except StopIteration as done:
            step = time.process_time() - began
            return done.value, total + step, max(longest, step), pauses
        step = time.process_time() - began
        total += step
        longest = max(longest, step)
        pauses += 1


async def run(quick: bool) -> Result:
    """Decode the message both ways, `runs` times each; the best figures."""
    size = QUICK if quick else FULL
    result = Result("decode", quick, params=dict(size))
    text = _message(size["entities"])
    log(f"decode: {size['entities']:,} entities, {len(text) / 1e6:.1f} MB, {size['runs']} runs")
    once: list[tuple[float, float]] = []
    stepped: list[tuple[float, float, float, int]] = []
    collections = _Collections()
    gc.callbacks.append(collections)
    try:
        for _ in range(size["runs"]):
            gc.collect()
            collections.longest = 0.0
            value, cpu, young = _at_once(text, collections)
            once.append((cpu, young))
            del value
            gc.collect()
            collections.longest = 0.0
            value, cpu, longest, pauses = _in_steps(text)
            stepped.append((cpu, longest, collections.longest, pauses))
            if value != orjson.loads(text):
                raise RuntimeError("decoded in steps, the message is not the same")
            del value
    finally:
        gc.callbacks.remove(collections)
    ms = 1000.0
    result.add("message size", len(text) / 1e6, "MB", digits=1)
    result.add("at once: CPU (= the block)", min(c for c, _ in once) * ms, "ms", digits=1)
    result.add("at once: the young collection after", min(y for _, y in once) * ms, "ms", digits=1)
    result.add("in steps: CPU in all", min(s[0] for s in stepped) * ms, "ms", digits=1)
    result.add("in steps: longest step", min(s[1] for s in stepped) * ms, "ms", digits=1)
    result.add("in steps: longest collection", min(s[2] for s in stepped) * ms, "ms", digits=1)
    result.add("in steps: pauses", stepped[0][3], digits=0)
    result.add(
        "in steps / at once, CPU",
        min(s[0] for s in stepped) / min(c for c, _ in once),
        "x",
        digits=1,
    )
    return result
