"""Capture across LOCAL restarts (issue 11) against a real remote at default recorder settings.

The local instance is the test `hass`; "stopping" it is unloading the entry (what a Home Assistant
stop does to it: the capture checkpoint is written), "starting" it is setting the entry up again
from the same storage. A crash (SIGKILL: no final write) is the entry torn down and its stored
checkpoint put back to what the throttled writer had written before: what a kill leaves on disk.

While the local side is down the remote changes one input_number 20 times. Every change must
arrive once, flagged backfilled, in order; after the crash, duplicates are only of changes fired
after the last checkpoint write.
"""

from __future__ import annotations

from collections import Counter
import copy
import time
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.ha_ingestion.capture import checkpoint as checkpoint_module
from custom_components.ha_ingestion.capture.checkpoint import storage_key
from custom_components.ha_ingestion.const import DOMAIN
from tests.e2e.helpers import record
from tests.harness import RemoteHass

from .conftest import Link, LinkFactory
from .local_hass import LEVEL, change_level, update_key

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHANGES = 20
RECOVERY_TIMEOUT = 40.0


def _received(link: Link) -> list[tuple[int, str, bool]]:
    return [
        (
            update_key(e["data"]["new_state"]["last_updated"]),
            e["data"]["new_state"]["state"],
            e["backfilled"],
        )
        for e in link.events
        if e.get("event_type") == "state_changed"
        and e["data"].get("entity_id") == LEVEL
        and e["data"].get("new_state")
    ]


async def _restart_entry(hass: HomeAssistant, link: Link) -> None:
    assert await hass.config_entries.async_setup(link.entry.entry_id)
    await hass.async_block_till_done()


async def _check(link: Link, made: list[tuple[int, str]], what: str) -> dict[str, Any]:
    """Wait until all `made` arrived and the gap closed; return lost/duplicated/order figures."""
    wanted = {key for key, _ in made}

    def all_there() -> bool:
        return wanted <= {key for key, _, _ in _received(link)}

    began = time.monotonic()
    await link.wait_until(all_there, RECOVERY_TIMEOUT, f"{what}: all {len(made)} changes")
    took = time.monotonic() - began
    # The gap closes after its last change is fired (its record, and any repeat fired late,
    # counted below): what a user's diagnostics show once the recovery has ended.
    capture = link.entry.runtime_data.capture
    await link.wait_until(lambda: not capture.recovering, RECOVERY_TIMEOUT, f"{what}: gap closed")
    received = [r for r in _received(link) if r[0] in wanted]
    counts = Counter(key for key, _, _ in received)
    first = {}
    for index, (key, _, _) in enumerate(received):
        first.setdefault(key, index)
    order = [first[key] for key, _ in made]
    return {
        "made": len(made),
        "lost": len(wanted - set(counts)),
        "duplicated": sum(c - 1 for c in counts.values()),
        "in_order": order == sorted(order),
        "all_backfilled": all(b for _, _, b in received),
        "recovered_after_link_s": round(took, 3),
    }


async def test_graceful_stop_and_start(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    link = await link_factory()
    await link.wait_until(lambda: not link.entry.runtime_data.capture.recovering, 30, "settled")
    await change_level(remote, 0)
    await link.wait_until(lambda: len(_received(link)) >= 1, 10, "a live change")
    assert await hass.config_entries.async_unload(link.entry.entry_id)  # a clean stop
    made = [await change_level(remote, n) for n in range(CHANGES)]
    await _restart_entry(hass, link)
    figures = await _check(link, made, "after a clean restart")
    record("ha_11_local_graceful_restart", **figures)
    assert figures == {
        **figures,
        "lost": 0,
        "duplicated": 0,
        "in_order": True,
        "all_backfilled": True,
    }


async def test_crash_without_a_final_write(
    hass: HomeAssistant,
    remote: RemoteHass,
    link_factory: LinkFactory,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    monkeypatch.setattr(checkpoint_module, "SAVE_DELAY", 1.0)
    link = await link_factory()
    capture = link.entry.runtime_data.capture
    await link.wait_until(lambda: not capture.recovering, 30, "settled")
    await change_level(remote, 0)
    await link.wait_until(lambda: len(_received(link)) >= 1, 10, "a live change")
    writes = capture.checkpoint.writes
    await link.wait_until(lambda: capture.checkpoint.writes > writes, 10, "a throttled write")
    await hass.async_block_till_done()
    key = storage_key(link.entry.entry_id)
    on_disk = copy.deepcopy(hass_storage[key])  # what a SIGKILL now would leave behind
    monkeypatch.setattr(checkpoint_module, "SAVE_DELAY", 3600.0)
    after_write = [await change_level(remote, n) for n in range(2)]  # fired after the last write
    await link.wait_until(lambda: len(_received(link)) >= 3, 10, "live changes after the write")
    assert await hass.config_entries.async_unload(link.entry.entry_id)
    hass_storage[key] = on_disk  # the kill: no final write happened
    made = [await change_level(remote, n) for n in range(CHANGES)]
    await _restart_entry(hass, link)
    figures = await _check(link, made, "after a crash")
    counts = Counter(key for key, _, _ in _received(link))
    duplicates = {key for key, count in counts.items() if count > 1}
    allowed = {key for key, _ in after_write}
    repeats = sum(count - 1 for count in counts.values())
    (gap,) = [gap for gap in link.entry.runtime_data.capture.state.gaps if gap.after_crash]
    record(
        "ha_11_local_crash",
        **figures,
        duplicates_of_changes_after_last_write=len(duplicates),
        changes_after_last_write=len(after_write),
        possible_duplicates=gap.possible_duplicates,
    )
    assert figures["lost"] == 0
    assert figures["in_order"]
    assert duplicates <= allowed, (duplicates, allowed)
    assert repeats <= gap.possible_duplicates, (repeats, gap)


async def test_start_while_the_remote_is_down(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    link = await link_factory()
    await link.wait_until(lambda: not link.entry.runtime_data.capture.recovering, 30, "settled")
    assert await hass.config_entries.async_unload(link.entry.entry_id)
    made = [await change_level(remote, n) for n in range(CHANGES)]
    await remote.stop()
    await _restart_entry(hass, link)  # the first connection finds the remote down
    assert not link.connected
    await remote.start()  # the link comes back the moment the remote does
    await link.wait_connected()
    figures = await _check(link, made, "after a start while the remote was down")
    record("ha_11_local_start_remote_down", **figures)
    assert figures == {
        **figures,
        "lost": 0,
        "duplicated": 0,
        "in_order": True,
        "all_backfilled": True,
    }


async def test_reauth_after_a_revoked_token(
    hass: HomeAssistant, remote: RemoteHass, link_factory: LinkFactory
) -> None:
    link = await link_factory()
    await link.wait_until(lambda: not link.entry.runtime_data.capture.recovering, 30, "settled")
    await remote.revoke_token()
    await link.wait_until(lambda: not link.connected, 15, "link down on the revoked token")

    def reauth_flows() -> list[Any]:
        return [
            flow
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"].get("source") == SOURCE_REAUTH
        ]

    await link.wait_until(lambda: bool(reauth_flows()), 15, "a reauth flow")
    made = [await change_level(remote, n) for n in range(CHANGES)]
    token = await remote.new_token()
    result = await hass.config_entries.flow.async_configure(
        reauth_flows()[0]["flow_id"], {CONF_ACCESS_TOKEN: token}
    )
    assert result["type"] is FlowResultType.ABORT, result
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    await link.wait_connected()
    figures = await _check(link, made, "after the reauth")
    record("ha_11_reauth_after_revoked_token", **figures)
    assert figures == {
        **figures,
        "lost": 0,
        "duplicated": 0,
        "in_order": True,
        "all_backfilled": True,
    }
