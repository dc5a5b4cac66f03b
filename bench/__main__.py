"""`python -m bench [name ...] [--quick] [--profile]`: run benchmarks, print one table.

Each benchmark runs in a child process of its own (clean CPU and memory accounting, no state
leaking between benchmarks) and writes `bench/results/<name>.json`; this process prints the table.
Benchmarks report figures: they never fail on timing. The exit status is non-zero only when a
benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import subprocess
import sys
import time

from .common import RESULTS, ROOT, Result, format_table, log

BENCHMARKS = {
    "throughput": "bench.throughput",
    "detection": "bench.detection",
    "storm": "bench.storm",
    "cost": "bench.cost",
    "entity_writes": "bench.entity_writes",
    "remote": "bench.remote",
    "backfill": "bench.backfill",
    "local_cost": "bench.local_cost",
    "decode": "bench.decode",
    "control": "bench.control",
    "entry_setup": "bench.entry_setup",
}
# Generous ceilings for one child process (full mode); a hung benchmark must not hang the suite.
TIMEOUTS = {
    "throughput": 600,
    "detection": 400,
    "storm": 900,
    "cost": 600,
    "entity_writes": 300,
    "remote": 600,
    "backfill": 3600,
    "local_cost": 1200,
    "decode": 300,
    "control": 900,
    "entry_setup": 300,
}


def _child(name: str, quick: bool, profile: bool) -> int:
    module = importlib.import_module(BENCHMARKS[name])
    started = time.perf_counter()
    kwargs = (
        {"profile": True} if profile and name in ("throughput", "local_cost", "backfill") else {}
    )
    result: Result = asyncio.run(module.run(quick, **kwargs))
    result.duration_s = round(time.perf_counter() - started, 2)
    path = result.write()
    log(f"{name}: done in {result.duration_s:.1f} s -> {path.relative_to(ROOT)}")
    return 0


def _run_child(name: str, quick: bool, profile: bool) -> Result:
    path = RESULTS / f"{name}.json"
    path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench", "--child", name]
    if quick:
        cmd.append("--quick")
    if profile:
        cmd.append("--profile")
    log(f"{name}: starting ({'quick' if quick else 'full'})")
    error = None
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=TIMEOUTS[name], check=False)
        if proc.returncode != 0:
            error = f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        error = f"timed out after {TIMEOUTS[name]} s"
    if error is None and path.exists():
        return Result.read(path)
    failed = Result(name, quick)
    failed.add("ERROR", error or "no result written", ok=False)
    return failed


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a fast check")
    parser.add_argument(
        "--profile",
        action="store_true",
        help=(
            "throughput: also cProfile the engine and HA paths; local_cost: the local hass; "
            "backfill: the event loop's stacks during its blocks over 50 ms"
        ),
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.quick, args.profile)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    results = [_run_child(name, args.quick, args.profile) for name in names]
    mode = "quick" if args.quick else "full"
    print(f"\nha_ingestion benchmarks ({mode}); JSON in bench/results/\n")
    print(format_table(results))
    crashed = any(m.metric == "ERROR" for r in results for m in r.metrics)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
