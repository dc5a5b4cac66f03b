"""scripts/develop: a sandbox remote Home Assistant and a local one linked to it, until Ctrl-C.

    python -m tests.harness.develop [--port 8123] [--remote-port 8124]
    python -m tests.harness.develop --remote URL --token TOKEN [--no-verify-ssl]
    python -m tests.harness.develop --fresh      # forget .develop/local and .develop/remote first
    python -m tests.harness.develop remote stop|start|freeze|thaw|status   # from another terminal

The sandbox remote may go away (stopped, killed, crashed): the local instance keeps running and
shows the link retrying. `remote ...` acts on the sandbox of the running scripts/develop by the
process ids in its PID files (.develop/develop.pid, .develop/remote/hass.pid), never by a pattern:
stop (SIGTERM, thawing it first), freeze (SIGSTOP), thaw (SIGCONT), start (asks the running
scripts/develop, by SIGUSR1, to start the sandbox again on the same port and state).

The sandbox remote (.develop/remote) loads Home Assistant's `demo` integration (lights, covers,
climate, media players, vacuums... of some 35 domains) and has a few helpers; automations change
some of them every few seconds (never `light.bed_light`: that one is for you to switch). The local Home Assistant (.develop/local, 127.0.0.1:8123) loads this checkout's
custom_components/ha_ingestion through a symlink, is onboarded with a demo login, and the
integration is linked to the remote through the real config flow over the REST API. Both keep their
state between runs; Ctrl-C stops both gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import textwrap
import time
from typing import Any

import aiohttp
import yarl

from .remote import HOST, RemoteHass, RemoteHassError

ROOT = Path(__file__).resolve().parents[2]
DEVELOP = ROOT / ".develop"
DOMAIN = "ha_ingestion"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-demo"  # the documented local demo login
DEVELOP_PID = DEVELOP / "develop.pid"  # the running scripts/develop
SANDBOX_PID = DEVELOP / "remote" / "hass.pid"  # its sandbox remote's hass, while it runs
START_WAIT = 180.0  # `remote start` waits this long for the sandbox to answer
STOP_WAIT = 60.0

SANDBOX_ENTITIES = """\
input_boolean:
  sandbox_light:
    name: Sandbox light
    icon: mdi:lightbulb
  sandbox_presence:
    name: Sandbox presence
input_number:
  sandbox_level:
    name: Sandbox level
    min: 0
    max: 100
    step: 1
  sandbox_temperature:
    name: Sandbox temperature
    min: -20
    max: 40
    step: 0.5
    unit_of_measurement: "°C"
counter:
  sandbox_ticks:
    name: Sandbox ticks
"""

SANDBOX_AUTOMATIONS = """\
automation:
  - id: sandbox_tick
    alias: Sandbox tick
    mode: queued
    triggers:
      - trigger: time_pattern
        seconds: "/5"
    actions:
      - action: input_boolean.toggle
        target:
          entity_id: input_boolean.sandbox_light
      - action: input_number.set_value
        target:
          entity_id: input_number.sandbox_level
        data:
          value: "{{ range(0, 101) | random }}"
      - action: counter.increment
        target:
          entity_id: counter.sandbox_ticks
  - id: sandbox_weather
    alias: Sandbox weather
    mode: queued
    triggers:
      - trigger: time_pattern
        seconds: "/7"
    actions:
      - action: input_number.set_value
        target:
          entity_id: input_number.sandbox_temperature
        data:
          value: "{{ (range(-10, 61) | random) / 2 }}"
  - id: sandbox_demo
    alias: Sandbox demo devices
    mode: queued
    triggers:
      - trigger: time_pattern
        seconds: "/10"
    actions:
      - action: switch.toggle
        target:
          entity_id: switch.decorative_lights
      - action: climate.set_temperature
        target:
          entity_id: climate.ecobee
        data:
          target_temp_low: "{{ range(18, 22) | random }}"
          target_temp_high: "{{ range(23, 27) | random }}"
      - action: light.turn_on
        target:
          entity_id: light.ceiling_lights
        data:
          brightness: "{{ range(30, 256) | random }}"
  - id: sandbox_demo_cover
    alias: Sandbox demo cover
    mode: queued
    triggers:
      - trigger: time_pattern
        seconds: "/30"
    actions:
      - action: cover.toggle
        target:
          entity_id: cover.hall_window
  - id: sandbox_presence
    alias: Sandbox presence
    mode: queued
    triggers:
      - trigger: time_pattern
        seconds: "/20"
    actions:
      - action: input_boolean.toggle
        target:
          entity_id: input_boolean.sandbox_presence
"""

LOCAL_EXTRA = """\
config:
logbook:
"""


class DevelopError(RuntimeError):
    """Something the person running scripts/develop has to fix."""


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server will: connections of a previous run in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def say(message: str = "") -> None:
    """Print for the person at the terminal."""
    print(message, flush=True)  # noqa: T201 - a command-line tool


def make_sandbox(port: int) -> RemoteHass:
    """The sandbox remote (its tokens live in .develop/remote/harness.json)."""
    return RemoteHass(
        DEVELOP / "remote",
        port=port,
        name="Sandbox Remote",
        entities_yaml=SANDBOX_ENTITIES,
        extra_yaml=SANDBOX_AUTOMATIONS,
        demo=True,
    )


def make_local(port: int) -> RemoteHass:
    """The local Home Assistant, with this checkout's integration symlinked in."""
    local = RemoteHass(
        DEVELOP / "local",
        port=port,
        name="Develop Local",
        entities_yaml="",
        extra_yaml=LOCAL_EXTRA,
        log_level="info",
        log_levels={f"custom_components.{DOMAIN}": "debug"},
        username=DEMO_USER,
        password=DEMO_PASSWORD,
        client_token=False,
    )
    return with_integration(local)


def with_integration(local: RemoteHass) -> RemoteHass:
    """Load this checkout's custom_components/ha_ingestion in `local` (a symlink in its config)."""
    components = local.config_dir / "custom_components"
    components.mkdir(parents=True, exist_ok=True)
    link = components / DOMAIN
    target = ROOT / "custom_components" / DOMAIN
    if link.is_symlink() or link.exists():
        if link.resolve() != target.resolve():
            raise DevelopError(f"{link} exists and is not a symlink to {target}: remove it")
    else:
        link.symlink_to(target, target_is_directory=True)
    return local


async def rest(
    local: RemoteHass, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One authenticated REST call on the local Home Assistant."""
    async with (
        aiohttp.ClientSession() as http,
        asyncio.timeout(30),
        http.request(
            method,
            f"{local.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {local.admin_token}"},
        ) as resp,
    ):
        text = await resp.text()
        try:
            data: Any = await resp.json(content_type=None) if text else None
        except ValueError:
            data = text
        return resp.status, data


async def existing_entries(local: RemoteHass) -> list[dict[str, Any]]:
    """Config entries of this integration on the local Home Assistant."""
    status, data = await rest(local, "GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
    if status != 200:
        raise DevelopError(f"listing config entries failed: HTTP {status} {data}")
    return list(data or [])


def stored_entries(local: RemoteHass) -> list[dict[str, Any]]:
    """This integration's entries as stored on disk (the REST API does not show their URLs)."""
    path = local.config_dir / ".storage" / "core.config_entries"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError, ValueError:
        return []
    return [e for e in data.get("data", {}).get("entries", []) if e.get("domain") == DOMAIN]


def address(url: str) -> tuple[str, int | None]:
    """(host, port) of an http(s)/ws(s) URL, or of host:port."""
    parsed = yarl.URL(url if "://" in url else f"http://{url}")
    return (parsed.host or "", parsed.port)


async def link(
    local: RemoteHass, url: str, token: str, verify_ssl: bool, sandbox: tuple[str, int]
) -> str:
    """Run the integration's config flow over REST; return a one-line outcome (raise on failure).

    Entries left from an earlier sandbox (same address, another remote) are removed afterwards.
    """
    status, flow = await rest(local, "POST", "/api/config/config_entries/flow", {"handler": DOMAIN})
    if status != 200 or not isinstance(flow, dict):
        raise DevelopError(f"starting the config flow failed: HTTP {status} {flow}")
    if flow.get("type") != "form":
        raise DevelopError(f"the config flow did not show its form: {flow}")
    fields = [f.get("name") for f in flow.get("data_schema", [])]
    body = {"url": url, "access_token": token, "verify_ssl": verify_ssl}
    body = {k: v for k, v in body.items() if not fields or k in fields}
    status, result = await rest(
        local, "POST", f"/api/config/config_entries/flow/{flow['flow_id']}", body
    )
    if status != 200 or not isinstance(result, dict):
        raise DevelopError(f"submitting the config flow failed: HTTP {status} {result}")
    kind = result.get("type")
    linked_id: str | None = None
    if kind == "create_entry":
        entry = result.get("result") or {}
        linked_id = entry.get("entry_id")
        outcome = f"linked: entry {entry.get('title', result.get('title'))!r} created"
    elif kind == "abort" and result.get("reason") == "already_configured":
        outcome = "already linked to this remote (existing entry kept)"
    elif kind == "abort":
        raise DevelopError(f"the config flow aborted: {result.get('reason')}")
    elif result.get("errors"):
        raise DevelopError(f"the config flow refused the input: errors {result['errors']}")
    else:
        raise DevelopError(f"the config flow answered {kind!r}: {result}")

    for entry in stored_entries(local):
        entry_url = str(entry.get("data", {}).get("url", ""))
        stale = address(entry_url) == sandbox and (linked_id is not None or address(url) != sandbox)
        if stale and entry.get("entry_id") != linked_id:
            say(f"  removing the stale sandbox entry {entry.get('title')!r} ({entry_url})")
            await rest(local, "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
    return outcome


async def entry_summary(local: RemoteHass) -> str:
    """The integration's entries and how many entities they made."""
    entries = await existing_entries(local)
    async with local.ws() as ws:
        registry = await ws.command({"type": "config/entity_registry/list"})
    ours = [e for e in registry if e.get("platform") == DOMAIN]
    states = ", ".join(f"{e.get('title')!r}: {e.get('state')}" for e in entries) or "none"
    return f"entries {states}; {len(ours)} entities"


async def bring_up(args: argparse.Namespace, servers: list[RemoteHass]) -> dict[str, str]:
    """Start both Home Assistants and link them; return what to print."""
    info: dict[str, str] = {}
    for port, what in ((args.port, "local"), (args.remote_port, "sandbox remote")):
        if (what == "local" or not args.remote) and not port_free(port):
            raise DevelopError(f"port {port} for the {what} is in use (another scripts/develop?)")
    if args.remote:
        remote_url, token = args.remote, args.token
        info["remote"] = f"{args.remote} (yours)"
    else:
        sandbox = make_sandbox(args.remote_port)
        servers.append(sandbox)
        say(f"Starting the sandbox remote on {sandbox.url} ({sandbox.config_dir}) ...")
        try:
            timings = await sandbox.setup()
        except RemoteHassError as err:
            # The sandbox is disposable: one left half set up (an interrupted first run) is redone.
            say(f"  {str(err).splitlines()[0]}\n  -> starting the sandbox afresh")
            await sandbox.close()
            shutil.rmtree(sandbox.config_dir, ignore_errors=True)
            servers.remove(sandbox)
            sandbox = make_sandbox(args.remote_port)
            servers.append(sandbox)
            timings = await sandbox.setup()
        say(f"  up in {timings['total']:.1f} s")
        remote_url, token = sandbox.url, sandbox.token or ""
        info["remote"] = sandbox.url
        info["remote_login"] = f"{sandbox.username} / {sandbox.password}"
    local = make_local(args.port)
    servers.append(local)
    say(f"Starting the local Home Assistant on {local.url} ({local.config_dir}) ...")
    timings = await local.setup()
    say(f"  up in {timings['total']:.1f} s")
    info["local"] = local.url
    say(f"Linking {DOMAIN} to {remote_url} through the config flow ...")
    try:
        info["link"] = await link(
            local, remote_url, token, not args.no_verify_ssl, (HOST, args.remote_port)
        )
    except DevelopError as err:
        info["link"] = f"NOT LINKED: {err}"
    with contextlib.suppress(RemoteHassError, DevelopError, OSError):
        await asyncio.sleep(2)
        info["status"] = await entry_summary(local)
    return info


def write_pid(path: Path, pid: int | None) -> None:
    """Record a process id (None: remove the file)."""
    if pid is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(f"{pid}\n", encoding="utf-8")
    partial.replace(path)  # a reader never sees the file half written


async def _restart_sandbox(sandbox: RemoteHass) -> None:
    say(f"\nStarting {sandbox.name} on {sandbox.url} again ...")
    try:
        seconds = await sandbox.start()
    except RemoteHassError as err:
        say(f"  could not start it: {str(err).splitlines()[0]}")
        return
    write_pid(SANDBOX_PID, sandbox.pid)
    say(
        f"  up again in {seconds:.1f} s (pid {sandbox.pid}); the link reconnects on its next attempt"
    )


async def watch(
    servers: list[RemoteHass],
    stop: asyncio.Event,
    sandbox: RemoteHass | None = None,
    start_requested: asyncio.Event | None = None,
) -> int:
    """Until Ctrl-C (0) or the local instance dies (1).

    The sandbox remote may go away (that is what the demo is for): it is reported in one line,
    and started again when `remote start` asks (SIGUSR1).
    """
    sandbox_up = sandbox is not None and sandbox.running
    while not stop.is_set():
        if sandbox is not None:
            if sandbox_up and not sandbox.running:
                code = sandbox._proc.returncode if sandbox._proc else None
                sandbox.kill()  # reaps it and closes its console log
                write_pid(SANDBOX_PID, None)
                say(
                    f"\n{sandbox.name} stopped (exit code {code}). The local instance keeps "
                    "running: watch the link retry, the backoff grow and the breaker open. "
                    "`scripts/develop remote start` starts it again."
                )
            if start_requested is not None and start_requested.is_set():
                start_requested.clear()
                if sandbox.running:
                    say(f"\n{sandbox.name} is already running (pid {sandbox.pid}).")
                else:
                    await _restart_sandbox(sandbox)
            sandbox_up = sandbox.running
        for server in servers:
            if server is not sandbox and not server.running:
                say(f"\n{server.name} on {server.url} exited unexpectedly.\n{server.log_tail(30)}")
                return 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await stop.wait()
    return 0


# ---------------------------------------------------------------------- remote control


class ControlError(DevelopError):
    """A `remote ...` command cannot be carried out."""


def read_pid(path: Path, what: str) -> int:
    """The process id in `path`, checked to be alive."""
    try:
        pid = int(path.read_text(encoding="utf-8").split()[0])
    except OSError, ValueError, IndexError:
        raise ControlError(f"no {what} running (no PID file {path})") from None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ControlError(f"no {what} running (stale PID file {path}: pid {pid})") from None
    return pid


def process_state(pid: int) -> str:
    """The kernel's state letter of a process (R, S, T for stopped, Z ...), '' when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def sandbox_pid(config_dir: Path = DEVELOP / "remote") -> int:
    """The sandbox's hass pid, verified to be a hass for that config dir (not a recycled pid)."""
    pid = read_pid(config_dir / SANDBOX_PID.name, "sandbox remote")
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        raise ControlError(f"pid {pid} is gone") from None
    if str(config_dir.resolve()).encode() not in argv:
        raise ControlError(
            f"pid {pid} in {config_dir / SANDBOX_PID.name} is not the sandbox's hass; not touching it"
        )
    return pid


async def _wait(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.2)
    return bool(predicate())


async def _answers(url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(3),
            http.get(f"{url}/api/") as resp,
        ):
            return resp.status in (200, 401)
    return False


async def control(action: str, develop_dir: Path = DEVELOP) -> int:
    """`scripts/develop remote <action>`: act on the running scripts/develop's sandbox remote."""
    remote_dir = develop_dir / "remote"
    if action == "status":
        try:
            pid = sandbox_pid(remote_dir)
        except ControlError as err:
            say(f"sandbox remote: stopped ({err})")
            return 0
        state = "frozen" if process_state(pid) == "T" else "running"
        say(f"sandbox remote: {state} (pid {pid})")
        return 0
    if action == "start":
        try:
            pid = sandbox_pid(remote_dir)
        except ControlError:
            pass
        else:
            say(f"sandbox remote already running (pid {pid}); `remote thaw` if it is frozen")
            return 0
        develop = read_pid(develop_dir / DEVELOP_PID.name, "scripts/develop")
        os.kill(develop, signal.SIGUSR1)
        say(f"asked scripts/develop (pid {develop}) to start the sandbox remote ...")
        started: list[int] = []

        def _running() -> bool:
            # the PID file names a live sandbox hass (it may exist before its text is written)
            with contextlib.suppress(ControlError):
                started[:] = [sandbox_pid(remote_dir)]
            return bool(started)

        if not await _wait(_running, START_WAIT):
            raise ControlError(f"the sandbox did not start within {START_WAIT:g} s (see its log)")
        say(f"sandbox remote running again (pid {started[0]})")
        return 0
    pid = sandbox_pid(remote_dir)
    if action == "freeze":
        os.kill(pid, signal.SIGSTOP)
        await _wait(lambda: process_state(pid) == "T", 5)
        say(f"sandbox remote frozen (pid {pid} stopped: it keeps its sockets, answers nothing)")
    elif action == "thaw":
        os.kill(pid, signal.SIGCONT)
        say(f"sandbox remote thawed (pid {pid})")
    elif action == "stop":
        os.kill(pid, signal.SIGCONT)  # a frozen process would not act on SIGTERM
        os.kill(pid, signal.SIGTERM)
        say(f"stopping the sandbox remote (pid {pid}) ...")
        if not await _wait(lambda: process_state(pid) in ("", "Z"), STOP_WAIT):
            raise ControlError(f"pid {pid} still running {STOP_WAIT:g} s after SIGTERM")
        say("sandbox remote stopped; `scripts/develop remote start` starts it again")
    else:  # pragma: no cover - argparse restricts the choices
        raise ControlError(f"unknown action {action!r}")
    return 0


async def main(args: argparse.Namespace) -> int:
    """Bring everything up, print where it is, wait for Ctrl-C, stop everything."""
    if args.fresh:
        for sub in ("local", "remote"):
            shutil.rmtree(DEVELOP / sub, ignore_errors=True)
    stop = asyncio.Event()
    start_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, start_requested.set)
    servers: list[RemoteHass] = []
    code = 0
    write_pid(DEVELOP_PID, os.getpid())
    try:
        work = asyncio.create_task(bring_up(args, servers))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            say("\nInterrupted while starting.")
            return 130
        info = work.result()
        say()
        say("=" * 72)
        say(f"  Local Home Assistant : {info['local']}")
        say(f"    login              : {DEMO_USER} / {DEMO_PASSWORD}")
        say(f"  Remote               : {info['remote']}")
        if "remote_login" in info:
            say(f"    login              : {info['remote_login']}")
        say(f"  Link                 : {info['link']}")
        if "status" in info:
            say(f"  Status               : {info['status']}")
        say("  Logs                 : .develop/local/console.log, .develop/remote/console.log")
        sandbox = next((s for s in servers if s.config_dir == DEVELOP / "remote"), None)
        if sandbox is not None:
            write_pid(SANDBOX_PID, sandbox.pid)
            say("  Break the sandbox    : scripts/develop remote stop|start|freeze|thaw|status")
        say("  Ctrl-C stops both.")
        say("=" * 72)
        code = await watch(servers, stop, sandbox, start_requested)
    except (DevelopError, RemoteHassError) as err:
        say(f"\nscripts/develop: {err}")
        say("(scripts/develop --fresh starts from empty .develop/local and .develop/remote)")
        code = 1
    finally:
        for server in reversed(servers):
            if server.running:
                say(f"Stopping {server.name} ...")
            server.thaw()  # frozen from another terminal: SIGTERM needs it running
            await server.close()
        write_pid(SANDBOX_PID, None)
        write_pid(DEVELOP_PID, None)
        say("Stopped.")
    return code


def parse_control(argv: list[str]) -> argparse.Namespace:
    """`remote stop|start|freeze|thaw|status`."""
    parser = argparse.ArgumentParser(
        prog="scripts/develop remote",
        description="Act on the sandbox remote of the running scripts/develop (by PID file).",
    )
    parser.add_argument("action", choices=["stop", "start", "freeze", "thaw", "status"])
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    """Entry point: the demo, or a `remote ...` control command."""
    if argv[:1] == ["remote"]:
        args = parse_control(argv[1:])
        try:
            return asyncio.run(control(args.action))
        except ControlError as err:
            say(f"scripts/develop remote {args.action}: {err}")
            return 1
    return asyncio.run(main(parse_args(argv)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/develop",
        description=textwrap.dedent(__doc__ or "").strip().splitlines()[0],
    )
    parser.add_argument("--port", type=int, default=8123, help="local Home Assistant port")
    parser.add_argument("--remote-port", type=int, default=8124, help="sandbox remote port")
    parser.add_argument("--remote", metavar="URL", help="link to this remote instead of a sandbox")
    parser.add_argument("--token", help="long-lived access token for --remote")
    parser.add_argument("--no-verify-ssl", action="store_true", help="do not verify TLS (--remote)")
    parser.add_argument(
        "--fresh", action="store_true", help="delete .develop/local and .develop/remote first"
    )
    args = parser.parse_args(argv)
    if bool(args.remote) != bool(args.token):
        parser.error("--remote and --token go together")
    return args


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
