"""A real Home Assistant (`hass`) in a subprocess on 127.0.0.1, onboarded and ready for tests.

`RemoteHass` starts `hass -c DIR --skip-pip` on a free port with a minimal configuration, onboards
it over the HTTP API, mints long-lived tokens over the WebSocket API, and then lets a test break it:
stop, SIGKILL, SIGSTOP/SIGCONT, restart on the same port, revoke the client's token. It also drives
it: services, events (one or thousands, pipelined), states, and its log.

Two long-lived tokens are minted: `admin_token` is the harness's own (never revoked), `token` is
the one handed to the client under test (`revoke_token()` deletes it, `new_token()` replaces it).

Every wait is bounded and raises `RemoteHassError` (with the tail of the remote's log where it
helps: a start that fails or times out, a stop that does not end).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
import contextlib
import ctypes
import itertools
import json
import logging
import os
from pathlib import Path
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Self

import aiohttp

from .http_config import configure_http, http_settings

_LOGGER = logging.getLogger(__name__)

HOST = "127.0.0.1"
CLIENT_ID_PATH = "/"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0
STATE_FILE = "harness.json"
CONSOLE_LOG = "console.log"
INVALID_AUTH_LOG = "Login attempt or request with invalid authentication"
CANNOT_KEEP_UP_LOG = "Client unable to keep up with pending messages"

DEFAULT_ENTITIES_YAML = """\
input_boolean:
  e2e_switch:
    name: E2E switch
  e2e_flag:
    name: E2E flag
  e2e_presence:
    name: E2E presence
  e2e_lamp_power:
    name: E2E lamp power
input_number:
  e2e_level:
    name: E2E level
    min: 0
    max: 100
    step: 1
  e2e_temperature:
    name: E2E temperature
    min: -20
    max: 40
    step: 0.5
    unit_of_measurement: "°C"
  e2e_lamp_level:
    name: E2E lamp level
    min: 0
    max: 100
    step: 1
counter:
  e2e_counter:
    name: E2E counter
# A light the control test drives through a mirror (tests/e2e_ha/test_control_e2e.py): on/off
# is input_boolean.e2e_lamp_power, its brightness input_number.e2e_lamp_level (percent).
template:
  - light:
      - name: E2E lamp
        unique_id: e2e_lamp
        state: "{{ is_state('input_boolean.e2e_lamp_power', 'on') }}"
        level: "{{ (states('input_number.e2e_lamp_level') | float(0) * 2.55) | round(0) | int }}"
        turn_on:
          - action: input_boolean.turn_on
            target:
              entity_id: input_boolean.e2e_lamp_power
        turn_off:
          - action: input_boolean.turn_off
            target:
              entity_id: input_boolean.e2e_lamp_power
        set_level:
          - action: input_number.set_value
            target:
              entity_id: input_number.e2e_lamp_level
            data:
              value: "{{ (brightness / 2.55) | round(0) }}"
          - action: input_boolean.turn_on
            target:
              entity_id: input_boolean.e2e_lamp_power
"""

# Home Assistant's own `demo` integration: changeable, controllable entities of some 35 domains
# (lights, covers, climate, media players, vacuums, numbers, texts, updates, calendars, cameras...).
# Its YAML key also sets up sun, a few input_* helpers, device trackers and geo-location events;
# its entities are in memory only (a restart brings back the demo's initial states).
DEMO_YAML = "demo:\n"


class RemoteHassError(RuntimeError):
    """The remote did not do what was asked in time; the message carries its log's tail."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago.

    With `HA_INGESTION_TEST_PORTS=LOW-HIGH` (scripts/test gives each release's run its own range,
    below the kernel's ephemeral ports) it comes from that range: a remote restarting on its port
    is never raced for it by the other run, nor by an outgoing connection's local port.
    """
    wanted = os.environ.get("HA_INGESTION_TEST_PORTS", "")
    if wanted:
        low, high = (int(part) for part in wanted.split("-"))
        for port in random.sample(range(low, high + 1), min(200, high - low + 1)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
        raise RemoteHassError(f"no free port in HA_INGESTION_TEST_PORTS={wanted}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def hass_command() -> list[str]:
    """How to run `hass` from this interpreter's environment."""
    script = Path(sys.executable).with_name("hass")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "homeassistant"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when the process that started it dies (no orphan hass)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child_env() -> dict[str, str]:
    """The environment for `hass`, without what would make it another process than a user's.

    No PYTHONPATH (it must not import this checkout's code) and no coverage hooks: pytest-cov
    exports COV_CORE_* so that subprocesses measure themselves, which would slow the remote down
    and mix its data (other settings) into the test run's coverage.
    """
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONSTARTUP", "COVERAGE_PROCESS_START")
        and not k.startswith("COV_CORE_")
    }


class RemoteWs:
    """An authenticated WebSocket to the remote: commands, pipelined commands, events."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Wrap an authenticated WebSocket and start reading it."""
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._event_handlers: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._reader = asyncio.create_task(self._read(), name="harness ws reader")
        self._closed_error: Exception | None = None

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                for item in data if isinstance(data, list) else [data]:
                    self._dispatch(item)
        finally:
            error = ConnectionError(f"harness WebSocket closed (code {self._ws.close_code})")
            self._closed_error = error
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()

    def _dispatch(self, item: dict[str, Any]) -> None:
        if item.get("type") == "event":
            handler = self._event_handlers.get(item.get("id", -1))
            if handler is not None:
                handler(item["event"])
            return
        future = self._pending.pop(item.get("id", -1), None)
        if future is None or future.done():
            return
        if item.get("type") == "pong" or item.get("success"):
            future.set_result(item.get("result"))
        else:
            future.set_exception(RemoteHassError(f"command failed: {item.get('error')}"))

    async def _send(self, payload: dict[str, Any]) -> tuple[int, asyncio.Future[Any]]:
        if self._closed_error is not None:
            raise self._closed_error
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self._ws.send_str(json.dumps({**payload, "id": msg_id}))
        return msg_id, future

    async def command(self, payload: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> Any:
        """Send one command and return its result."""
        _, future = await self._send(payload)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as err:
            raise RemoteHassError(
                f"no result for {payload.get('type')!r} within {timeout:g} s"
            ) from err

    async def pipeline(
        self, payloads: Iterable[dict[str, Any]], *, window: int = 256, timeout: float = 120.0
    ) -> int:
        """Send many commands with at most `window` unanswered at once; return how many succeeded.

        Results are read as they come, so the remote's outgoing queue to us stays short.
        """
        window_sem = asyncio.Semaphore(window)
        futures: list[asyncio.Future[Any]] = []

        def release(_: asyncio.Future[Any]) -> None:
            window_sem.release()

        async with asyncio.timeout(timeout):
            for payload in payloads:
                await window_sem.acquire()
                _, future = await self._send(payload)
                future.add_done_callback(release)
                futures.append(future)
            results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise RemoteHassError(
                f"{len(failures)} of {len(results)} commands failed: {failures[0]}"
            )
        return len(results)

    async def subscribe(self, event_type: str, handler: Callable[[dict[str, Any]], None]) -> int:
        """Subscribe to an event type; `handler(event)` is called for each event."""
        msg_id, future = await self._send({"type": "subscribe_events", "event_type": event_type})
        self._event_handlers[msg_id] = handler
        async with asyncio.timeout(REQUEST_TIMEOUT):
            await future
        return msg_id

    async def close(self) -> None:
        """Close the socket and stop reading."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


class RemoteHass:
    """One `hass` process on 127.0.0.1 with its own config dir; see the module docstring."""

    def __init__(
        self,
        config_dir: Path | str | None = None,
        *,
        port: int | None = None,
        name: str = "E2E Remote",
        login_attempts_threshold: int | None = None,
        entities_yaml: str = DEFAULT_ENTITIES_YAML,
        extra_yaml: str = "",
        log_level: str = "warning",
        log_levels: dict[str, str] | None = None,
        client_token: bool = True,
        username: str = "harness",
        password: str = "harness-password",  # noqa: S107 - a throwaway local test instance
        start_timeout: float = START_TIMEOUT,
        db_url: str | None = None,
        demo: bool = False,
    ) -> None:
        """Prepare (nothing runs until `start()` or `setup()`).

        Without `config_dir` a temporary one is made, and removed by `cleanup()`. The recorder
        keeps Home Assistant's defaults (commit interval 5 s), as every proof must run against;
        its database is SQLite in the config dir unless `db_url` names another (PostgreSQL).
        `demo=True` also loads Home Assistant's `demo` integration (`DEMO_YAML`); for nearly every
        domain see `tests.harness.domains`.
        """
        self.port = port or free_port()
        self._owns_dir = config_dir is None
        self.config_dir = Path(
            tempfile.mkdtemp(prefix="ha-remote-") if config_dir is None else config_dir
        ).resolve()
        self.name = name
        self.login_attempts_threshold = login_attempts_threshold
        self.entities_yaml = entities_yaml
        self.extra_yaml = extra_yaml
        self.log_level = log_level
        self.log_levels = dict(log_levels or {})
        self.client_token = client_token
        self.username = username
        self.password = password
        self.start_timeout = start_timeout
        self.db_url = db_url
        self.demo = demo
        self.admin_token: str | None = None
        self.token: str | None = None
        self.token_name: str | None = None
        self.token_revoked = False
        self._token_serial = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: Any = None
        self._frozen = False
        self.timings: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        """WebSocket API URL."""
        return f"ws://{HOST}:{self.port}/api/websocket"

    @property
    def client_id(self) -> str:
        """OAuth client id used for onboarding."""
        return f"{self.url}{CLIENT_ID_PATH}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """The process exists (it may be frozen)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def frozen(self) -> bool:
        """SIGSTOPped and not yet thawed."""
        return self._frozen and self.running

    def _record(self, what: str, seconds: float) -> None:
        self.timings.setdefault(what, []).append(round(seconds, 3))

    # ------------------------------------------------------------------ configuration

    def write_config(self) -> None:
        """Write configuration.yaml (always) and the HTTP settings for the current port and options.

        The HTTP settings go where the installed release reads them (`configure_http`): its
        `.storage/http`, or an `http:` block in the YAML before 2026.8.
        """
        self.config_dir.mkdir(parents=True, exist_ok=True)
        settings = http_settings(
            HOST, self.port, login_attempts_threshold=self.login_attempts_threshold
        )
        http_yaml = "".join(
            f"{domain}:\n"
            + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in conf.items())
            for domain, conf in configure_http(self.config_dir, settings).items()
        )
        db_url = self.db_url or f"sqlite:///{self.config_dir / 'home-assistant_v2.db'}"
        logs = "".join(f"    {name}: {level}\n" for name, level in self.log_levels.items())
        if logs:
            logs = "  logs:\n" + logs
        config = (
            textwrap.dedent(
                f"""\
                homeassistant:
                  name: {json.dumps(self.name)}
                  latitude: 52.52
                  longitude: 13.40
                  elevation: 34
                  unit_system: metric
                  time_zone: UTC
                  currency: EUR
                  country: DE
                  language: en
                """
            )
            + http_yaml
            + textwrap.dedent(
                f"""\
                websocket_api:
                api:
                history:
                recorder:
                  db_url: {json.dumps(db_url)}
                  purge_keep_days: 1
                  exclude:
                    event_types:
                      - e2e_burst
                logger:
                  default: {self.log_level}
                """
            )
            + logs
            + self.entities_yaml
            + (DEMO_YAML if self.demo else "")
            + self.extra_yaml
        )
        (self.config_dir / "configuration.yaml").write_text(config, encoding="utf-8")

    def _state_path(self) -> Path:
        return self.config_dir / STATE_FILE

    def _save_state(self) -> None:
        state = {
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "admin_token": self.admin_token,
            "token": self.token,
            "token_name": self.token_name,
            "token_serial": self._token_serial,
        }
        path = self._state_path()
        path.write_text(json.dumps(state, indent=2), encoding="utf-8")
        path.chmod(0o600)

    def _load_state(self) -> bool:
        path = self._state_path()
        if not path.exists():
            return False
        state = json.loads(path.read_text(encoding="utf-8"))
        self.admin_token = state.get("admin_token")
        self.token = state.get("token")
        self.token_name = state.get("token_name")
        self._token_serial = int(state.get("token_serial", 0))
        return bool(self.admin_token and (self.token or not self.client_token))

    # ------------------------------------------------------------------ process

    async def start(self, timeout: float | None = None) -> float:
        """Start the process and wait until HTTP answers (and, once onboarded, core is RUNNING).

        Returns the seconds it took.
        """
        if self.running:
            raise RemoteHassError(f"remote already running (pid {self._proc and self._proc.pid})")
        timeout = self.start_timeout if timeout is None else timeout
        self.write_config()
        began = time.monotonic()
        console_path = self.config_dir / CONSOLE_LOG
        self._spawn(console_path)
        self._frozen = False
        try:
            await self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        elapsed = time.monotonic() - began
        self._record("start", elapsed)
        return elapsed

    def _spawn(self, console_path: Path) -> None:
        """Start the process (a plain fork/exec: not bound to any event loop)."""
        self._console = console_path.open("ab")
        self._console.write(
            f"\n===== harness: starting hass on port {self.port} at {time.ctime()} =====\n".encode()
        )
        self._console.flush()
        self._proc = subprocess.Popen(
            [
                *hass_command(),
                "-c",
                str(self.config_dir),
                "--skip-pip",
                "--log-no-color",
            ],
            stdin=subprocess.DEVNULL,
            cwd=self.config_dir,
            env=_child_env(),
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
        )

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until HTTP answers; when a token exists, until the core reports RUNNING."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        async with aiohttp.ClientSession() as http:
            while True:
                if not self.running:
                    code = self._proc.returncode if self._proc else None
                    raise RemoteHassError(
                        f"hass exited with code {code} while starting\n{self.log_tail()}"
                    )
                try:
                    async with asyncio.timeout(5):
                        if self.admin_token:
                            async with http.get(
                                f"{self.url}/api/config", headers=self._auth(self.admin_token)
                            ) as resp:
                                if resp.status == 200:
                                    body = await resp.json()
                                    if body.get("state") == "RUNNING":
                                        return
                                    last = f"core state {body.get('state')}"
                                else:
                                    last = f"HTTP {resp.status} from /api/config"
                        else:
                            # HTTP listens once frontend (so auth and onboarding) is set up;
                            # the providers answer 400 until the owner exists.
                            async with http.get(f"{self.url}/auth/providers") as resp:
                                if resp.status in (200, 400):
                                    return
                                last = f"HTTP {resp.status} from /auth/providers"
                except (aiohttp.ClientError, OSError, TimeoutError) as err:
                    last = f"{type(err).__name__}: {err}"
                if time.monotonic() > deadline:
                    raise RemoteHassError(
                        f"remote on {self.url} not ready within {timeout:g} s ({last})\n"
                        f"{self.log_tail()}"
                    )
                await asyncio.sleep(0.1)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """Stop gracefully (SIGTERM; thaws first). SIGKILL and raise if it does not exit in time."""
        if not self.running or self._proc is None:
            self._close_console()
            return 0.0
        began = time.monotonic()
        if self._frozen:
            self.thaw()
        self._proc.send_signal(signal.SIGTERM)
        try:
            await self._wait_exit(timeout)
        except RemoteHassError:
            self.kill()
            raise RemoteHassError(
                f"hass did not stop within {timeout:g} s of SIGTERM; killed it\n{self.log_tail()}"
            ) from None
        self._close_console()
        elapsed = time.monotonic() - began
        self._record("stop", elapsed)
        return elapsed

    async def _wait_exit(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._proc is not None and self._proc.poll() is None:
            if time.monotonic() > deadline:
                raise RemoteHassError(
                    f"hass (pid {self._proc.pid}) still running after {timeout:g} s"
                )
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the process (works on a frozen one too) and reap it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired as err:  # pragma: no cover - the kernel failed us
                raise RemoteHassError(f"hass pid {self._proc.pid} survived SIGKILL") from err
        self._frozen = False
        self._close_console()

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        if not self.running or self._proc is None:
            raise RemoteHassError("cannot freeze: remote not running")
        self._proc.send_signal(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT after `freeze()`."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
        self._frozen = False

    async def restart(self, *, kill: bool = False, timeout: float | None = None) -> float:
        """Stop (or SIGKILL) and start again on the same port and config; returns the seconds."""
        began = time.monotonic()
        if kill:
            self.kill()
        else:
            await self.stop()
        await self.start(timeout)
        elapsed = time.monotonic() - began
        self._record("restart_kill" if kill else "restart", elapsed)
        return elapsed

    def _close_console(self) -> None:
        if self._console is not None:
            with contextlib.suppress(OSError):
                self._console.close()
            self._console = None

    async def close(self) -> None:
        """Stop the process (graceful, SIGKILL as the fallback)."""
        if self.running:
            try:
                await self.stop()
            except RemoteHassError as err:
                _LOGGER.warning("%s", err)
        self.kill()

    def cleanup(self) -> None:
        """Kill the process if needed and remove the temporary config dir (if this made it)."""
        self.kill()
        if self._owns_dir and not os.environ.get("HA_HARNESS_KEEP"):
            shutil.rmtree(self.config_dir, ignore_errors=True)

    async def __aenter__(self) -> Self:
        """`async with RemoteHass() as remote:` sets it up and tears it down."""
        await self.setup()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop and clean up."""
        await self.close()
        self.cleanup()

    # ------------------------------------------------------------------ onboarding

    async def setup(self) -> dict[str, float]:
        """Start, onboard, mint tokens, then restart gracefully once so the auth store is on disk.

        Reuses an already onboarded config dir (tokens in harness.json). Returns the timings.
        """
        timings: dict[str, float] = {}
        began = time.monotonic()
        if self._load_state():
            timings["start"] = await self.start()
            if not await self._token_works(self.admin_token):
                raise RemoteHassError(
                    f"{self.config_dir} has a harness.json whose admin token is refused; "
                    "delete the directory to start afresh"
                )
            if self.client_token and not await self.token_valid():
                await self.new_token()
            timings["total"] = time.monotonic() - began
            return timings
        self.preseed_onboarding()
        timings["start"] = await self.start()
        t = time.monotonic()
        await self.onboard()
        timings["onboard"] = time.monotonic() - t
        self._record("onboard", timings["onboard"])
        # HA writes its stores with a delay: stop gracefully once so the users and tokens are on
        # disk before any test SIGKILLs it, and check that they survived.
        t = time.monotonic()
        await self.restart()
        timings["persist_restart"] = time.monotonic() - t
        if not await self._token_works(self.admin_token) or (
            self.client_token and not await self.token_valid()
        ):
            raise RemoteHassError(f"token refused after the persisting restart\n{self.log_tail()}")
        timings["total"] = time.monotonic() - began
        self._record("setup", timings["total"])
        return timings

    def preseed_onboarding(self) -> None:
        """Mark every onboarding step but `user` done before the first start.

        Finishing `core_config` over the API would add the met, radio_browser, google_translate
        and shopping_list integrations, and the first two call servers on the internet.
        """
        storage = self.config_dir / ".storage"
        path = storage / "onboarding"
        if path.exists():
            return
        storage.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config", "analytics", "integration"]},
                }
            ),
            encoding="utf-8",
        )

    async def onboard(self) -> None:
        """Create the owner (the one onboarding step left) and mint the long-lived tokens.

        A dir whose owner exists but whose harness.json is missing (an interrupted setup) is
        recovered by logging in with the username and password instead.
        """
        async with aiohttp.ClientSession() as http:
            if await self._user_exists(http):
                code = await self._login_code(http)
            else:
                user = await self._post_json(
                    http,
                    "/api/onboarding/users",
                    {
                        "client_id": self.client_id,
                        "name": self.username.title(),
                        "username": self.username,
                        "password": self.password,
                        "language": "en",
                    },
                )
                code = user["auth_code"]
            tokens = await self._exchange_code(http, code)
            access = tokens["access_token"]
        async with self.ws(access) as ws:
            self.admin_token = await self._mint(ws, "harness", 3650)
        if self.client_token:
            await self.new_token()
        else:
            await self.wait_token_persisted("harness")
        self._save_state()

    async def _user_exists(self, http: aiohttp.ClientSession) -> bool:
        async with (
            asyncio.timeout(REQUEST_TIMEOUT),
            http.get(f"{self.url}/api/onboarding") as resp,
        ):
            if resp.status == 404:  # onboarding finished: its views are gone
                return True
            steps = await resp.json()
            return any(step["step"] == "user" and step["done"] for step in steps)

    async def _login_code(self, http: aiohttp.ClientSession) -> str:
        flow = await self._post_json(
            http,
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.url}/?auth_callback=1",
            },
        )
        result = await self._post_json(
            http,
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": self.username, "password": self.password},
        )
        if result.get("type") != "create_entry":
            raise RemoteHassError(
                f"{self.config_dir} is onboarded but {self.username!r} cannot log in "
                f"({result.get('errors')}); delete the directory to start afresh"
            )
        return str(result["result"])

    @staticmethod
    async def _mint(ws: RemoteWs, name: str, lifespan_days: int) -> str:
        """A long-lived token named `name`, replacing one of that name (names are unique)."""
        for token in await ws.command({"type": "auth/refresh_tokens"}):
            if token.get("client_name") == name:
                await ws.command(
                    {"type": "auth/delete_refresh_token", "refresh_token_id": token["id"]}
                )
        token = await ws.command(
            {"type": "auth/long_lived_access_token", "client_name": name, "lifespan": lifespan_days}
        )
        return str(token)

    async def _exchange_code(self, http: aiohttp.ClientSession, code: str) -> dict[str, Any]:
        async with (
            asyncio.timeout(REQUEST_TIMEOUT),
            http.post(
                f"{self.url}/auth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "client_id": self.client_id,
                },
            ) as resp,
        ):
            if resp.status != 200:
                raise RemoteHassError(
                    f"/auth/token answered HTTP {resp.status}: {await resp.text()}"
                )
            result: dict[str, Any] = await resp.json()
            return result

    async def _post_json(
        self,
        http: aiohttp.ClientSession,
        path: str,
        body: dict[str, Any],
        *,
        token: str | None = None,
    ) -> Any:
        async with (
            asyncio.timeout(REQUEST_TIMEOUT),
            http.post(f"{self.url}{path}", json=body, headers=self._auth(token)) as resp,
        ):
            text = await resp.text()
            if resp.status != 200:
                raise RemoteHassError(f"POST {path} answered HTTP {resp.status}: {text}")
            return json.loads(text) if text else None

    @staticmethod
    def _auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def _token_works(self, token: str | None) -> bool:
        if not token:
            return False
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(REQUEST_TIMEOUT),
            http.get(f"{self.url}/api/", headers=self._auth(token)) as resp,
        ):
            return resp.status == 200

    # ------------------------------------------------------------------ tokens

    async def new_token(self) -> str:
        """Mint a fresh long-lived token for the client under test (becomes `token`)."""
        self._token_serial += 1
        name = f"ha_ingestion e2e {self._token_serial}"
        async with self.ws() as ws:
            token = await self._mint(ws, name, 365)
        self.token, self.token_name = token, name
        self.token_revoked = False
        await self.wait_token_persisted(name)
        if self._state_path().exists():
            self._save_state()
        return str(token)

    async def wait_token_persisted(self, name: str, timeout: float = 15.0) -> None:
        """Wait until the refresh token named `name` is in .storage/auth (survives a SIGKILL)."""
        path = self.config_dir / ".storage" / "auth"
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text(encoding="utf-8"))
                names = {t.get("client_name") for t in data["data"]["refresh_tokens"]}
                if name in names:
                    return
            if time.monotonic() > deadline:
                raise RemoteHassError(f"token {name!r} not written to {path} within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def revoke_token(self) -> None:
        """Delete the client token's refresh token: the remote closes links that use it."""
        async with self.ws() as ws:
            tokens = await ws.command({"type": "auth/refresh_tokens"})
            ids = [t["id"] for t in tokens if t.get("client_name") == self.token_name]
            if not ids:
                raise RemoteHassError(f"no refresh token named {self.token_name!r} to revoke")
            for token_id in ids:
                await ws.command(
                    {"type": "auth/delete_refresh_token", "refresh_token_id": token_id}
                )
        self.token_revoked = True

    async def token_valid(self) -> bool:
        """Whether the client token still exists (asked without a failed login on the remote)."""
        if not self.token_name:
            return False
        async with self.ws() as ws:
            tokens = await ws.command({"type": "auth/refresh_tokens"})
        return any(t.get("client_name") == self.token_name for t in tokens)

    # ------------------------------------------------------------------ talking to it

    @contextlib.asynccontextmanager
    async def ws(self, token: str | None = None) -> AsyncIterator[RemoteWs]:
        """An authenticated WebSocket (the harness's admin token by default)."""
        token = token or self.admin_token
        if not token:
            raise RemoteHassError("no token yet: call setup() first")
        async with aiohttp.ClientSession() as http:
            raw: aiohttp.ClientWebSocketResponse | None = None
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    raw = await http.ws_connect(self.ws_url, max_msg_size=0)
                    first = await raw.receive_json()
                    await raw.send_json({"type": "auth", "access_token": token})
                    answer = await raw.receive_json()
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
                # A WebSocket left open here would be released only by the garbage collector:
                # aiohttp then reports "Unclosed connection" to whichever test's loop runs.
                if raw is not None:
                    await raw.close()
                raise RemoteHassError(f"cannot open a WebSocket to {self.ws_url}: {err!r}") from err
            if first.get("type") != "auth_required" or answer.get("type") != "auth_ok":
                await raw.close()
                raise RemoteHassError(f"WebSocket authentication failed: {answer}")
            client = RemoteWs(raw)
            try:
                yield client
            finally:
                await client.close()

    async def command(self, payload: dict[str, Any]) -> Any:
        """Run one WebSocket command on a short-lived connection."""
        async with self.ws() as ws:
            return await ws.command(payload)

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any] | None = None
    ) -> None:
        """Call a service over the REST API."""
        async with aiohttp.ClientSession() as http:
            await self._post_json(
                http, f"/api/services/{domain}/{service}", data or {}, token=self.admin_token
            )

    async def toggle(self, entity_id: str) -> None:
        """Toggle an input_boolean."""
        await self.call_service("input_boolean", "toggle", {"entity_id": entity_id})

    async def set_input_number(self, entity_id: str, value: float) -> None:
        """Set an input_number."""
        await self.call_service(
            "input_number", "set_value", {"entity_id": entity_id, "value": value}
        )

    async def set_state(
        self, entity_id: str, state: str, attributes: dict[str, Any] | None = None
    ) -> None:
        """Set a state over REST (an entity without a registry entry, as a template would be)."""
        await self._states_request(
            "post", entity_id, {"state": state, "attributes": attributes or {}}
        )

    async def _states_request(
        self, method: str, entity_id: str, body: dict[str, Any] | None = None
    ) -> None:
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(REQUEST_TIMEOUT),
            http.request(
                method,
                f"{self.url}/api/states/{entity_id}",
                json=body,
                headers=self._auth(self.admin_token),
            ) as resp,
        ):
            if resp.status not in (200, 201, 404):
                raise RemoteHassError(f"{method.upper()} state of {entity_id}: HTTP {resp.status}")

    async def remove_state(self, entity_id: str) -> None:
        """Remove a state over REST (DELETE /api/states/<entity_id>)."""
        await self._states_request("delete", entity_id)

    async def get_state(self, entity_id: str) -> dict[str, Any] | None:
        """One entity's state over REST (None if unknown)."""
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(REQUEST_TIMEOUT),
            http.get(
                f"{self.url}/api/states/{entity_id}", headers=self._auth(self.admin_token)
            ) as resp,
        ):
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise RemoteHassError(f"GET state of {entity_id}: HTTP {resp.status}")
            result: dict[str, Any] = await resp.json()
            return result

    async def fire_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Fire one event over the WebSocket API."""
        payload: dict[str, Any] = {"type": "fire_event", "event_type": event_type}
        if data:
            payload["event_data"] = data
        await self.command(payload)

    async def fire_events(
        self, event_type: str, count: int, *, window: int = 256, timeout: float = 120.0
    ) -> float:
        """Fire `count` events (data {"n": i}) pipelined on one WebSocket; returns the seconds."""
        async with self.ws() as ws:
            began = time.monotonic()
            payloads = (
                {"type": "fire_event", "event_type": event_type, "event_data": {"n": n}}
                for n in range(count)
            )
            await ws.pipeline(payloads, window=window, timeout=timeout)
            return time.monotonic() - began

    # ------------------------------------------------------------------ log and files

    @property
    def console_path(self) -> Path:
        """Everything the process printed, across restarts (home-assistant.log rotates)."""
        return self.config_dir / CONSOLE_LOG

    def log_mark(self) -> int:
        """A position in the console log; pass it to `log_since()`."""
        try:
            return self.console_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int = 0) -> str:
        """Log text written after `mark`."""
        try:
            with self.console_path.open("rb") as fh:
                fh.seek(mark)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_count(self, needle: str, mark: int = 0) -> int:
        """How many log lines after `mark` contain `needle`."""
        return sum(needle in line for line in self.log_since(mark).splitlines())

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the remote logged, for error messages."""
        text = self.log_since(max(0, self.log_mark() - 64_000))
        if not text:
            path = self.config_dir / "home-assistant.log"
            text = path.read_text("utf-8", "replace") if path.exists() else ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.console_path} ---\n{tail}\n--- end of log ---"

    def assert_not_hammered(self, mark: int) -> int:
        """Since `mark`: at most one failed authentication from us, and no IP ban. Returns the count."""
        failed = self.log_count(INVALID_AUTH_LOG, mark)
        assert failed <= 1, self.log_since(mark)
        assert not self.ip_bans(), f"banned: {self.ip_bans()}"
        assert "Banned IP" not in self.log_since(mark)
        return failed

    def ip_bans(self) -> str:
        """Contents of ip_bans.yaml ('' if none)."""
        path = self.config_dir / "ip_bans.yaml"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def clear_ip_bans(self) -> None:
        """Remove ip_bans.yaml (takes effect at the next start)."""
        (self.config_dir / "ip_bans.yaml").unlink(missing_ok=True)
