"""A local Home Assistant SIGKILLed, the remote changes an entity 20 times, the local one started again.

Both are real `hass` processes with default settings (recorder, options): the local one runs this
checkout's integration, linked to the shared remote through the config flow (`local_hass.py`).
Before the kill, one change arrives and the throttled checkpoint write that holds it is seen on
disk; two more changes arrive after it (a kill now leaves them out of the checkpoint); then
SIGKILL. While it is dead the remote changes the entity 20 times; it is started again at once.

Every one of the 20 must be in the local recorder's `events` table as a backfilled
`ha_ingestion_event` fired after the start, in order. Duplicates (only of changes fired after the
last write) must not exceed what the diagnostics count as possible duplicates: what was fired
before the kill is counted from the local WebSocket subscription (the local recorder loses what it
had not committed when it was killed), what was fired after the start from the recorder.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
import time
from typing import Any

import pytest

from tests.e2e.helpers import record
from tests.harness import RemoteHass

from .local_hass import (
    EVENT,
    LEVEL,
    LocalLink,
    change_level,
    link_local,
    start_local,
    update_key,
    wait_until,
)
from .test_capture_restart_e2e import CHANGES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def _level_events(linked: LocalLink, since: float = 0.0) -> list[tuple[int, bool]]:
    """(last_updated µs, backfilled) of each recorded ha_ingestion_event of LEVEL fired since."""
    return [
        (update_key(data["data"]["new_state"]["last_updated"]), bool(data.get("backfilled")))
        for fired, data in linked.recorded_events()
        if fired >= since
        and data.get("event_type") == "state_changed"
        and data.get("data", {}).get("entity_id") == LEVEL
        and data["data"].get("new_state")
    ]


async def test_local_sigkill_recovers_every_change(remote: RemoteHass, tmp_path: Path) -> None:
    began = time.monotonic()
    local = await start_local(tmp_path / "local", name="E2E Local", entities_yaml="")
    try:
        linked = await link_local(local, remote.url, remote.token or "")
        live: list[int] = []

        def on_event(event: dict[str, Any]) -> None:
            data = event.get("data", {})
            if data.get("data", {}).get("entity_id") == LEVEL and data["data"].get("new_state"):
                live.append(update_key(data["data"]["new_state"]["last_updated"]))

        def written() -> bool:
            stored = linked.checkpoint()
            return stored is not None and stored.get("seen", {}).get(LEVEL) == first

        async with local.ws() as ws:
            await ws.subscribe(EVENT, on_event)
            first, _ = await change_level(remote, 0)
            # The throttled write (default: within 10 s of the change) that holds it, on disk.
            await wait_until(written, 30, "a checkpoint write with the first change", local)
            after_write = [(await change_level(remote, n))[0] for n in (1, 2)]
            # Fired locally, before the next write (10 s after the first of them arrived).
            await wait_until(lambda: set(after_write) <= set(live), 15, "two more fired", local)
        killed_before_next_write = written()
        local.kill()  # SIGKILL: no final write of anything
        killed_wall = time.time()
        made = [(await change_level(remote, n))[0] for n in range(CHANGES)]
        killed_at = time.monotonic()
        await local.start()

        async def gap_closed() -> bool:
            gaps = (await linked.diagnostics())["capture"]["gaps"]
            return any(gap["after_crash"] for gap in gaps)

        await wait_until(gap_closed, 120, "the gap after the crash recovered", local)
        recovered_s = time.monotonic() - killed_at
        diagnostics = (await linked.diagnostics())["capture"]
        await local.stop()  # the recorder's last commit: every event fired is in the table
        events = _level_events(linked, since=killed_wall)
    finally:
        await local.close()
        local.cleanup()

    counts = Counter(key for key, _ in events) + Counter(live)
    (gap,) = [gap for gap in diagnostics["gaps"] if gap["after_crash"]]
    first_seen: dict[int, int] = {}
    for index, (key, _) in enumerate(events):
        first_seen.setdefault(key, index)
    order = [first_seen.get(key, -1) for key in made]
    duplicated = sum(count - 1 for count in counts.values())
    backfilled = {key for key, flag in events if flag}
    figures: dict[str, Any] = {
        "made_while_dead": len(made),
        "recovered": len(set(made) & set(counts)),
        "lost": len(set(made) - set(counts)),
        "all_backfilled": set(made) <= backfilled,
        "in_order": order == sorted(order) and -1 not in order,
        "duplicated": duplicated,
        "duplicates_of": sorted(key for key, count in counts.items() if count > 1),
        "fired_before_the_kill": len(live),
        "fired_after_last_write": len(after_write),
        "killed_before_next_write": killed_before_next_write,
        "possible_duplicates_gap": gap["possible_duplicates"],
        "possible_duplicates_total": diagnostics["possible_duplicates_after_crash"],
        "start_to_gap_closed_s": round(recovered_s, 1),
        "test_s": round(time.monotonic() - began, 1),
    }
    record("ha_11_local_sigkill_process", **figures)
    assert figures["lost"] == 0, figures
    assert figures["all_backfilled"], figures
    assert figures["in_order"], figures
    assert set(figures["duplicates_of"]) <= set(after_write), figures
    assert (
        duplicated <= gap["possible_duplicates"] <= diagnostics["possible_duplicates_after_crash"]
    )
