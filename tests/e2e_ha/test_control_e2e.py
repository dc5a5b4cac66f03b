"""Every remote domain mirrored and controlled from here: two real `hass`, default options (issue 23).

The remote is `tests.harness.domains.EveryDomainRemote` (Home Assistant's demo integration and a
few more: entities of about 45 domains). The local `hass` runs this checkout's integration,
linked through the real config flow over REST with default options and default recorders
(`local_hass.py`), through a fault proxy that lives for the module on a thread of its own
(`ProxyThread`). Calls are made the way a user's dashboard makes them: `call_service` over the
local WebSocket API, targeting the local mirror.

- (a) per-domain coverage: printed and recorded (remote domain -> remote entities, mirrored);
  every remote entity of a domain in `MIRROR_DOMAINS` is mirrored; the contract's domains are;
- (b) every mirror's state and attributes equal the remote's, with the documented exceptions
  (`ATTRIBUTE_EXCEPTIONS`);
- (c) per controllable domain, one ordinary service call made here changes the remote entity,
  then the mirror (`CONTROL_CASES`);
- (d) response services (`weather.get_forecasts`, `todo.get_items`) return the remote's data;
- (e) a call while the link is down returns while it is still down; the remote entity is
  unchanged once the link is back (and a later call has gone through: nothing was queued);
- (f) with the control option off, calls are refused and no mirror supports a feature.

(a) and (b) pass on read-only mirrors; (c)-(f) need native mirrors with control.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
import time
from typing import Any

import pytest

from custom_components.ha_ingestion.const import CONF_CONTROL
from custom_components.ha_ingestion.engine_config import options_with_defaults
from custom_components.ha_ingestion.mirror.choice import MIRROR_DOMAINS
from custom_components.ha_ingestion.options_flow import sectioned
from tests.e2e.helpers import record
from tests.harness import RemoteHass, RemoteHassError, run_sync
from tests.harness.develop import LOCAL_EXTRA, rest, stored_entries
from tests.harness.domains import CONTROL_CASES, ControlCase, EveryDomainRemote
from tests.harness.fixtures import _sockets_allowed
from tests.harness.proxy import ProxyThread

from .local_hass import LocalLink, link_local, start_local, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MIRROR_MARK = "_mirror:"  # a mirror's unique id: f"{entry unique id}_mirror:{remote entity id}"
# Domains with an entity component that the contract says are mirrored (and the remote has).
# device_tracker is left out: its state is one of the remote's zones (README, docs/mirroring.md).
CONTRACT_DOMAINS: frozenset[str] = frozenset(
    {
        "light",
        "media_player",
        "number",
        "vacuum",
        "humidifier",
        "text",
        "date",
        "time",
        "datetime",
        "update",
        "todo",
        "calendar",
        "camera",
        "image",
        "air_quality",
        "lawn_mower",
    }
)
# Attributes a mirror may show differently, and why (README "Mirrored entities"):
# - friendly_name: the mirror's name is the remote's, after the remote's (device) name;
# - entity_picture: a camera's, image's or media player's picture is served by the instance that
#   shows it (its own proxy URL, its own token);
# - access_token: a camera's or image's token is the showing instance's own;
# - a camera's supported_features lacks STREAM (2): no stream is forwarded (README's domain table).
CAMERA_STREAM = 2
ATTRIBUTE_EXCEPTIONS = ("friendly_name", "entity_picture", "access_token")
SETTLE = 30.0  # bounded waits for the link to bring the remote's state here


@dataclass
class Setup:
    """The module's two Home Assistants, the proxy between them and the link."""

    remote: EveryDomainRemote
    local: RemoteHass
    proxy: ProxyThread
    linked: LocalLink


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the package-wide fixture: both Home Assistants are real processes."""
    return


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The every-domain remote, the proxy, the local hass linked through it (one per module)."""
    base = tmp_path_factory.mktemp("control")
    with _sockets_allowed():  # a free port is looked for
        remote = EveryDomainRemote(base / "remote")
    proxy: ProxyThread | None = None
    local: RemoteHass | None = None
    try:
        with _sockets_allowed():
            timings = run_sync(remote.setup())
            proxy = ProxyThread(remote.port)
            local = run_sync(_start_local(base / "local"))
            linked = run_sync(
                link_local(local, f"http://127.0.0.1:{proxy.port}", remote.token or "")
            )
        record("control", remote_setup_s=timings["total"])
        yield Setup(remote, local, proxy, linked)
    finally:
        with _sockets_allowed():
            for server in (local, remote):
                if server is not None:
                    run_sync(server.close())
                    server.cleanup()
            if proxy is not None:
                proxy.close()


async def _start_local(config_dir: Path) -> RemoteHass:
    return await start_local(
        config_dir, name="E2E Control Local", entities_yaml="", extra_yaml=LOCAL_EXTRA
    )


# ---------------------------------------------------------------------- reading both sides


async def local_states(setup: Setup) -> dict[str, dict[str, Any]]:
    """Every local state by entity id."""
    states = await setup.local.command({"type": "get_states"})
    return {state["entity_id"]: state for state in states}


async def mirrors(setup: Setup) -> dict[str, str]:
    """Remote entity id -> local mirror entity id (from the local entity registry)."""
    registry = await setup.local.command({"type": "config/entity_registry/list"})
    return {
        entry["unique_id"].split(MIRROR_MARK, 1)[1]: entry["entity_id"]
        for entry in registry
        if entry.get("platform") == "ha_ingestion" and MIRROR_MARK in entry.get("unique_id", "")
    }


async def remote_states(setup: Setup) -> dict[str, dict[str, Any]]:
    """Every remote state by entity id."""
    states = await setup.remote.command({"type": "get_states"})
    return {state["entity_id"]: state for state in states}


def differences(remote: dict[str, Any], local: dict[str, Any] | None) -> list[str]:
    """How a mirror's state differs from the remote's (documented exceptions aside)."""
    if local is None:
        return ["no local state"]
    found = []
    if local["state"] != remote["state"]:
        found.append(f"state {local['state']!r} != {remote['state']!r}")
    theirs, ours = dict(remote["attributes"]), dict(local["attributes"])
    if remote["entity_id"].startswith("camera.") and "supported_features" in theirs:
        theirs["supported_features"] &= ~CAMERA_STREAM
    name = theirs.pop("friendly_name", None)
    if name is not None and not str(ours.get("friendly_name", "")).endswith(str(name)):
        found.append(f"friendly_name {ours.get('friendly_name')!r} does not end with {name!r}")
    for key in ATTRIBUTE_EXCEPTIONS:
        if (key in theirs) != (key in ours) and key != "friendly_name":
            found.append(f"{key} present on one side only")
        theirs.pop(key, None)
        ours.pop(key, None)
    found.extend(
        f"{key}: {ours.get(key, '<absent>')!r} != {theirs.get(key, '<absent>')!r}"
        for key in sorted(set(theirs) | set(ours))
        if theirs.get(key, "<absent>") != ours.get(key, "<absent>")
    )
    return found


async def call_local(
    setup: Setup,
    domain: str,
    service: str,
    entity_id: str,
    data: dict[str, Any] | None = None,
    *,
    return_response: bool = False,
) -> Any:
    """`call_service` over the local WebSocket API on one entity (raises on an error result)."""
    payload: dict[str, Any] = {
        "type": "call_service",
        "domain": domain,
        "service": service,
        "service_data": data or {},
        "target": {"entity_id": entity_id},
    }
    if return_response:
        payload["return_response"] = True
    return await setup.local.command(payload)


async def call_remote(
    setup: Setup, domain: str, service: str, entity_id: str, data: dict[str, Any] | None = None
) -> Any:
    """The same call made on the remote directly, with return_response."""
    return await setup.remote.command(
        {
            "type": "call_service",
            "domain": domain,
            "service": service,
            "service_data": data or {},
            "target": {"entity_id": entity_id},
            "return_response": True,
        }
    )


async def mirror_of(setup: Setup, remote_id: str) -> str:
    """The local mirror of a remote entity; fails saying why when there is none."""
    found = await mirrors(setup)
    assert remote_id in found, (
        f"{remote_id} has no mirror here (domain {remote_id.split('.', 1)[0]!r} not mirrored; "
        f"mirrored domains: {sorted(MIRROR_DOMAINS)})"
    )
    return found[remote_id]


async def wait_mirrors_settled(setup: Setup) -> dict[str, str]:
    """Wait until every remote entity of a mirrored domain has an available mirror here."""
    wanted: set[str] = set()
    found: dict[str, str] = {}

    async def settled() -> bool:
        nonlocal wanted, found
        remote = await remote_states(setup)
        wanted = {e for e in remote if e.split(".", 1)[0] in MIRROR_DOMAINS}
        found = await mirrors(setup)
        local = await local_states(setup)
        return all(
            e in found and local.get(found[e], {}).get("state") not in (None, "unavailable")
            for e in wanted
        )

    await wait_until(
        settled, SETTLE, "every remote entity of a mirrored domain mirrored", setup.local
    )
    return found


# ---------------------------------------------------------------------- (a) coverage


async def test_coverage_per_domain(setup: Setup, socket_enabled: None) -> None:
    """Remote domains -> mirrored count, printed and recorded; every mirrorable entity mirrored."""
    found = await wait_mirrors_settled(setup)
    remote = await remote_states(setup)
    counts = Counter(e.split(".", 1)[0] for e in remote)
    mirrored = Counter(e.split(".", 1)[0] for e in found if e in remote)
    table = {domain: [counts[domain], mirrored[domain]] for domain in sorted(counts)}
    lines = [f"  {domain:<22} {n:>4} remote  {m:>4} mirrored" for domain, (n, m) in table.items()]
    print("remote domain -> entities, mirrored here:\n" + "\n".join(lines))  # noqa: T201
    record(
        "control",
        coverage=table,
        remote_entities=len(remote),
        remote_domains=len(counts),
        mirrored_entities=sum(mirrored.values()),
        mirrored_domains=len(mirrored),
    )
    missing = sorted(e for e in remote if e.split(".", 1)[0] in MIRROR_DOMAINS and e not in found)
    assert not missing, f"not mirrored: {missing}"
    outside = sorted(e for e in found if e.split(".", 1)[0] not in MIRROR_DOMAINS)
    assert not outside, f"mirrored outside MIRROR_DOMAINS: {outside}"


async def test_every_entity_component_domain_is_mirrored(
    setup: Setup, socket_enabled: None
) -> None:
    """The contract's domains (lights, media players, numbers, vacuums...) have mirrors here."""
    found = await wait_mirrors_settled(setup)
    remote_domains = {e.split(".", 1)[0] for e in await remote_states(setup)}
    mirrored_domains = {e.split(".", 1)[0] for e in found}
    wanted = CONTRACT_DOMAINS & remote_domains
    assert wanted == CONTRACT_DOMAINS, f"the remote lacks {sorted(CONTRACT_DOMAINS - wanted)}"
    assert not wanted - mirrored_domains, f"no mirror of {sorted(wanted - mirrored_domains)}"


# ---------------------------------------------------------------------- (b) equality


async def test_every_mirror_equals_the_remote(setup: Setup, socket_enabled: None) -> None:
    """State and attributes equal the remote's, documented exceptions aside (bounded retries)."""
    await wait_mirrors_settled(setup)
    report: dict[str, list[str]] = {}

    async def equal() -> bool:
        found = await mirrors(setup)
        remote = await remote_states(setup)
        local = await local_states(setup)
        report.clear()
        for remote_id, local_id in found.items():
            if remote_id in remote and (
                diff := differences(remote[remote_id], local.get(local_id))
            ):
                report[remote_id] = diff
        return not report

    try:
        await wait_until(equal, SETTLE, "every mirror equal to the remote", setup.local, poll=1)
    except AssertionError:
        pytest.fail(
            "mirrors that differ from the remote:\n"
            + "\n".join(f"  {e}: {'; '.join(d)}" for e, d in sorted(report.items())),
            pytrace=False,
        )
    record("control", mirrors_equal=len(await mirrors(setup)))


# ---------------------------------------------------------------------- (c) control


@pytest.mark.parametrize("case", CONTROL_CASES, ids=lambda case: case.domain)
async def test_a_call_here_changes_the_remote_then_the_mirror(
    setup: Setup, case: ControlCase, socket_enabled: None
) -> None:
    """One ordinary service call on the mirror: the remote entity changes, then the mirror."""
    mirror = await mirror_of(setup, case.entity_id)
    assert not case.holds(await setup.remote.get_state(case.entity_id)), "already in that state"
    began = time.monotonic()
    await call_local(setup, case.domain, case.service, mirror, case.data)
    called_s = time.monotonic() - began

    async def remote_changed() -> bool:
        return case.holds(await setup.remote.get_state(case.entity_id))

    async def mirror_changed() -> bool:
        status, state = await rest(setup.local, "GET", f"/api/states/{mirror}")
        return status == 200 and case.holds(state)

    await wait_until(remote_changed, 10, f"{case.entity_id} changed on the remote", setup.local)
    await wait_until(mirror_changed, 10, f"{mirror} shows the remote's change", setup.local)
    record("control", **{f"call_{case.domain}_s": called_s})


# ---------------------------------------------------------------------- (d) responses


async def test_response_services_return_the_remote_data(setup: Setup, socket_enabled: None) -> None:
    """weather.get_forecasts and todo.get_items on mirrors answer with the remote's data."""
    weather = "weather.demo_weather_south"
    mirror = await mirror_of(setup, weather)
    data = {"type": "daily"}
    ours = await call_local(setup, "weather", "get_forecasts", mirror, data, return_response=True)
    theirs = await call_remote(setup, "weather", "get_forecasts", weather, data)
    # The demo dates its forecast from the moment it is asked: compare everything else.
    assert _undated(ours["response"][mirror]["forecast"]) == _undated(
        theirs["response"][weather]["forecast"]
    )

    todo = "todo.shopping_list"
    await setup.remote.call_service("todo", "add_item", {"entity_id": todo, "item": "e2e bread"})
    mirror = await mirror_of(setup, todo)
    theirs = await call_remote(setup, "todo", "get_items", todo)
    ours: dict[str, Any] = {}

    async def items_here() -> bool:
        # The mirror reads the remote's items again once the list's state change arrives: as
        # the to-do panel, asked until it shows the new item.
        nonlocal ours
        ours = await call_local(setup, "todo", "get_items", mirror, return_response=True)
        return "e2e bread" in [item["summary"] for item in ours["response"][mirror]["items"]]

    await wait_until(items_here, 10, f"{mirror} lists the remote's new item", setup.local)
    assert ours["response"][mirror] == theirs["response"][todo]


def _undated(forecast: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "datetime"} for item in forecast]


# ---------------------------------------------------------------------- (e) outage


async def test_a_call_during_an_outage_is_never_queued(setup: Setup, socket_enabled: None) -> None:
    """Link down: the call returns while it is still down; back: the remote entity is unchanged."""
    light, marker = "light.kitchen_lights", "switch.decorative_lights"
    light_mirror = await mirror_of(setup, light)
    marker_mirror = await mirror_of(setup, marker)
    before = await setup.remote.get_state(light)
    assert before is not None
    assert before["state"] == "on"
    await setup.proxy.refuse()
    outcome = "succeeded (skipped)"
    try:
        await setup.proxy.reset_connections()
        await wait_until(lambda: _down(setup), 30, "the link down", setup.local)
        began = time.monotonic()
        try:
            await call_local(setup, "light", "turn_off", light_mirror)
        except RemoteHassError as err:
            outcome = f"refused: {err}"
        returned_s = time.monotonic() - began
        assert await _down(setup), "the call returned only once the link was back"
    finally:
        await setup.proxy.refuse(False)
    await wait_until(setup.linked.connected, 60, "the link back", setup.local)
    # A later call goes through; a queued earlier one would have been sent before it.
    marker_before = (await setup.remote.get_state(marker) or {}).get("state")
    await call_local(setup, "switch", "toggle", marker_mirror)

    async def marker_toggled() -> bool:
        return (await setup.remote.get_state(marker) or {}).get("state") != marker_before

    await wait_until(marker_toggled, 10, f"{marker} toggled after the link came back", setup.local)
    after = await setup.remote.get_state(light)
    assert after is not None
    assert after["state"] == "on", f"the call made during the outage ran later: {after}"
    record("control", outage_call=outcome[:120], outage_call_returned_s=returned_s)


async def _down(setup: Setup) -> bool:
    return await setup.linked.state(f"binary_sensor.{setup.linked.slug}_connected") == "off"


# ---------------------------------------------------------------------- (f) control off


async def test_control_off_refuses_calls_and_shows_no_control(
    setup: Setup, socket_enabled: None
) -> None:
    """The option off (options flow over REST): no mirror supports a feature; calls refused."""
    light = "light.office_rgbw_lights"
    form = sectioned(options_with_defaults({CONF_CONTROL: False}))
    assert any(CONF_CONTROL in section for section in form.values()), (
        f"the options form has no {CONF_CONTROL!r} option"
    )
    await _set_control(setup, False)
    try:
        mirror = await mirror_of(setup, light)
        await wait_until(setup.linked.connected, 60, "the link back after the reload", setup.local)
        await wait_mirrors_settled(setup)
        local = await local_states(setup)
        ours = set((await mirrors(setup)).values())
        featured = sorted(
            e for e in ours if local.get(e, {}).get("attributes", {}).get("supported_features")
        )
        assert not featured, f"mirrors still showing controls: {featured}"
        with pytest.raises(RemoteHassError):
            await call_local(setup, "light", "turn_off", mirror)
        after = await setup.remote.get_state(light)
        assert after is not None
        assert after["state"] == "on"
    finally:
        await _set_control(setup, True)
        await wait_until(setup.linked.connected, 60, "the link back after the reload", setup.local)


async def _set_control(setup: Setup, enabled: bool) -> None:
    """Save the options with control on/off through the options flow over REST."""
    local, entry_id = setup.local, setup.linked.entry_id

    def stored_entry() -> dict[str, Any]:
        return next((e for e in stored_entries(local) if e["entry_id"] == entry_id), {})

    # The REST API does not show options; Home Assistant writes its entries to disk a little later.
    await wait_until(lambda: bool(stored_entry()), 30, "the entry stored", local)
    stored = stored_entry()
    status, flow = await rest(
        local, "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
    )
    assert status == 200, flow
    assert flow["type"] == "form", flow
    options = options_with_defaults({**stored.get("options", {}), CONF_CONTROL: enabled})
    status, result = await rest(
        local,
        "POST",
        f"/api/config/config_entries/options/flow/{flow['flow_id']}",
        sectioned(options),
    )
    assert status == 200, result
    assert result["type"] == "create_entry", result

    def saved() -> bool:
        return stored_entry().get("options", {}).get(CONF_CONTROL) is enabled

    await wait_until(saved, 15, f"control={enabled} stored", local)
