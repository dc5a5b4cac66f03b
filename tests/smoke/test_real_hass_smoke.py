"""The real-`hass` smoke: the integration as a user runs it, on a release the test plugin may not know.

CI runs it on the `newest` side (requirements/newest.txt: the newest Home Assistant on PyPI, ahead
of pytest-homeassistant-custom-component), under plain pytest: tests/smoke/pytest.ini makes this
folder its own root, so tests/conftest.py and the plugin's fixtures stay out. It needs only the
harness (tests/harness, tests/e2e_ha/local_hass.py), which starts `hass` processes.

Two real `hass` processes with Home Assistant's default settings (recorder committing every 5 s,
HTTP settings where the release reads them) and the integration's default options: the harness's
remote, and a local one with this checkout's integration symlinked in, linked to the remote through
a `FaultProxy`. In order:

1. the link is made through the config flow over the local REST API, as the frontend does;
2. a remote change arrives as an `ha_ingestion_event` (the local WebSocket API sees it);
3. a remote sensor and switch appear as local mirrors and follow a change;
4. the link is cut (the proxy resets it and refuses connections), the remote changes meanwhile,
   the link is let through again: every change made during the outage arrives, flagged
   backfilled, and the mirrors show the latest values;
5. the options flow, run over REST with the form as it opens, saves the options unchanged;
6. the local `hass` is stopped (the entry unloads); its log, from the first start on, holds no report
   of deprecated use by ha_ingestion ("will stop working", "deprecated", `report_usage`): such a
   line fails the smoke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from custom_components.ha_ingestion.engine_config import options_with_defaults
from tests.deprecation_guard import log_reports
from tests.e2e_ha.local_hass import (
    EVENT,
    LEVEL,
    LocalLink,
    change_level,
    link_local,
    start_local,
    update_key,
    wait_until,
)
from tests.flow_form import submission
from tests.harness import FaultProxy, RemoteHass
from tests.harness.develop import rest

pytestmark = pytest.mark.timeout(300)

POWER = "sensor.smoke_power"
PLUG = "switch.smoke_plug"
POWER_ATTRIBUTES = {"unit_of_measurement": "W", "device_class": "power", "friendly_name": "Power"}
OUTAGE_CHANGES = 3
WAIT = 60.0  # bound of each wait: a slow shared machine, never a sleep
# Back after the outage: the default options' backoff (up to 60 s) or, on a machine so slow that the
# outage saw 5 failed attempts, the default breaker's 60 s recovery.
RECONNECT_WAIT = 150.0


@pytest.fixture
async def remote() -> AsyncIterator[RemoteHass]:
    """The harness's remote (default entities), started and onboarded; removed after."""
    remote = RemoteHass(name="Smoke Remote")
    try:
        await remote.setup()
        yield remote
    finally:
        await remote.close()
        remote.cleanup()


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[RemoteHass]:
    """A local `hass` with this checkout's integration; stopped after."""
    local = await start_local(tmp_path / "local", name="Smoke Local", entities_yaml="")
    try:
        yield local
    finally:
        await local.close()
        local.cleanup()


async def _options(linked: LocalLink) -> dict[str, Any]:
    options: dict[str, Any] = (await linked.diagnostics())["entry"]["options"]
    return options


async def test_link_events_mirror_outage_options_without_deprecation(
    remote: RemoteHass, local: RemoteHass
) -> None:
    await remote.set_state(POWER, "1200", POWER_ATTRIBUTES)
    await remote.set_state(PLUG, "off", {"friendly_name": "Plug"})
    levels: list[tuple[int, bool]] = []  # (last_updated µs, backfilled) of each LEVEL event

    def on_event(event: dict[str, Any]) -> None:
        data = event.get("data", {})
        changed = data.get("data", {})
        if (
            data.get("event_type") == "state_changed"
            and changed.get("entity_id") == LEVEL
            and changed.get("new_state")
        ):
            levels.append(
                (update_key(changed["new_state"]["last_updated"]), bool(data.get("backfilled")))
            )

    async with FaultProxy(remote.port) as proxy, local.ws() as ws:
        await ws.subscribe(EVENT, on_event)
        # 1. The config flow over REST (tests.harness.develop.link), through the proxy.
        linked = await link_local(local, f"{proxy.host}:{proxy.port}", remote.token or "")
        power = f"sensor.{linked.slug}_smoke_power"
        plug = f"switch.{linked.slug}_smoke_plug"

        async def state_is(entity_id: str, value: str) -> bool:
            return await linked.state(entity_id) == value

        # 2. Events: a live change arrives, not flagged backfilled.
        live, _ = await change_level(remote, 0)
        await wait_until(lambda: (live, False) in levels, WAIT, "a live change", local)

        # 3. Mirrors appear and follow a change.
        await wait_until(lambda: state_is(power, "1200"), WAIT, f"{power} mirrored", local)
        await wait_until(lambda: state_is(plug, "off"), WAIT, f"{plug} mirrored", local)
        await remote.set_state(POWER, "1300", POWER_ATTRIBUTES)
        await remote.set_state(PLUG, "on", {"friendly_name": "Plug"})
        await wait_until(lambda: state_is(power, "1300"), WAIT, f"{power} followed", local)
        await wait_until(lambda: state_is(plug, "on"), WAIT, f"{plug} followed", local)

        # 4. An outage: cut, changes on the remote, let through again; all of it recovered.
        await proxy.refuse()
        proxy.reset_connections()
        await wait_until(lambda: state_is(linked.connected_id, "off"), WAIT, "link down", local)
        await wait_until(lambda: state_is(power, "unavailable"), WAIT, f"{power} down", local)
        during = [(await change_level(remote, n))[0] for n in range(OUTAGE_CHANGES)]
        await remote.set_state(POWER, "1400", POWER_ATTRIBUTES)
        await remote.set_state(PLUG, "off", {"friendly_name": "Plug"})
        await proxy.pass_through()
        await wait_until(linked.connected, RECONNECT_WAIT, "the link back", local)
        await wait_until(
            lambda: {(key, True) for key in during} <= set(levels),
            WAIT,
            f"the {OUTAGE_CHANGES} changes made during the outage, backfilled",
            local,
        )
        await wait_until(lambda: state_is(power, "1400"), WAIT, f"{power} after", local)
        await wait_until(lambda: state_is(plug, "off"), WAIT, f"{plug} after", local)
        assert [key for key, _ in levels].count(live) == 1, levels  # not fired again

        # 5. The options flow over REST, the form submitted as it opens: saved, unchanged.
        before = await _options(linked)
        status, flow = await rest(
            local, "POST", "/api/config/config_entries/options/flow", {"handler": linked.entry_id}
        )
        assert status == 200, (status, flow)
        assert flow["type"] == "form", flow
        status, result = await rest(
            local,
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            submission(flow["data_schema"]),
        )
        assert status == 200, (status, result)
        assert result["type"] == "create_entry", result
        await wait_until(linked.connected, WAIT, "the link after saving the options", local)
        # An entry the config flow made stores no options (the defaults apply); saved, it
        # stores every option, each with the value it had.
        assert await _options(linked) == options_with_defaults(before)

    # 6. No deprecation report about us, from the first start to the end of a stop (the unload).
    await local.stop()
    reports = log_reports(local.log_since(0))
    assert not reports, "Home Assistant reported deprecated use by ha_ingestion:\n" + "\n".join(
        reports
    )
