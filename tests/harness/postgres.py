"""A temporary PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package), for one test.

`PostgresServer().start()` runs `initdb` into a new temporary directory (trust authentication,
UTF-8), starts `postgres` on it listening on 127.0.0.1 on a free port only (and on a unix socket in
that directory), waits until it accepts connections and creates one database; `url` is what Home
Assistant's recorder takes as `db_url`. `stop()` shuts it down (fast shutdown, then immediate,
then SIGKILL) and removes the directory; it runs even when starting failed half-way.

PostgreSQL refuses to run as root: when this process is root (the test suite's Debian root file
system), the server runs as the `postgres` system user the package created, with the directory
chowned to it; otherwise as the current user. The postmaster is a child of this process that
Linux kills when this process dies (no server outlives a killed test run).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Self

import psycopg2  # type: ignore[import-untyped]

from .remote import HOST, free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
LOG_FILE = "postgres.log"


class PostgresError(RuntimeError):
    """The server did not start or stop as asked; the message carries its log's tail."""


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory with initdb and postgres, or None."""
    found = [
        path
        for path in Path("/").glob(BIN_GLOB.lstrip("/"))
        if (path / "initdb").is_file() and (path / "postgres").is_file()
    ]

    def major(path: Path) -> int:
        match = re.fullmatch(r"\d+", path.parent.name)
        return int(match.group()) if match else -1

    return max(found, key=major) if found else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the postmaster when the process that started it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG; set after the switch of user


class PostgresServer:
    """One temporary PostgreSQL cluster with one database; see the module docstring."""

    def __init__(self, *, database: str = "homeassistant", bin_dir: Path | None = None) -> None:
        """Prepare (nothing runs until `start()`); raises PostgresError without the binaries."""
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PostgresError(f"no PostgreSQL server binaries (initdb, postgres) in {BIN_GLOB}")
        self.bin_dir = found
        self.database = database
        self.port = 0
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._as: dict[str, Any] = {}
        self.user = pwd.getpwuid(os.geteuid()).pw_name

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """The SQLAlchemy (and Home Assistant recorder) URL of the database, over TCP."""
        return f"postgresql://{self.user}@{HOST}:{self.port}/{self.database}"

    @property
    def socket_dir(self) -> Path:
        """Where the server's unix socket is (the temporary directory)."""
        if self.dir is None:
            raise PostgresError("not started")
        return self.dir

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def running(self) -> bool:
        """The postmaster exists."""
        return self._proc is not None and self._proc.poll() is None

    def connect(self, database: str | None = None) -> Any:
        """A psycopg2 connection (over TCP) as the server's superuser."""
        return psycopg2.connect(
            host=HOST,
            port=self.port,
            user=self.user,
            dbname=database or self.database,
            connect_timeout=5,
        )

    # ------------------------------------------------------------------ lifecycle

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that drop root to the `postgres` user (nothing when not root)."""
        if os.geteuid() != 0:
            return {}
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresError(
                f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as "
                "(the Debian package creates it)"
            ) from None
        self.user = SERVER_USER
        env = {
            **os.environ,
            "HOME": account.pw_dir,
            "USER": SERVER_USER,
            "LOGNAME": SERVER_USER,
        }
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "env": env}

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """initdb, start the server, wait until it accepts connections, create the database."""
        if self.dir is not None:
            raise PostgresError("already started")
        self._as = self._run_as()
        self.dir = Path(tempfile.mkdtemp(prefix="ha-pg-"))
        try:
            if "user" in self._as:
                os.chown(self.dir, self._as["user"], self._as["group"])
            self._initdb()
            for attempt in range(3):  # a free port can be taken before the server binds it
                self.port = free_port()
                self._spawn()
                if self._wait_ready(timeout):
                    break
                if attempt == 2 or "could not bind" not in self.log_tail():
                    raise PostgresError(
                        f"PostgreSQL did not accept connections within {timeout:g} s\n"
                        f"{self.log_tail()}"
                    )
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        assert self.dir is not None
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.dir / "data"),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=120,
            **self._as,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode("utf-8", "replace")
            raise PostgresError(f"initdb failed (exit code {result.returncode}):\n{output}")

    def _spawn(self) -> None:
        assert self.dir is not None
        self._close_log()
        self._log = (self.dir / LOG_FILE).open("ab")
        self._proc = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.dir / "data"),
                "-c",
                f"listen_addresses={HOST}",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.dir}",
            ],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            **self._as,
        )

    def _wait_ready(self, timeout: float) -> bool:
        """Until the server takes a connection (True), or it exited or the time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                return False
            with contextlib.suppress(psycopg2.OperationalError):
                self.connect("postgres").close()
                return True
            time.sleep(0.1)
        return False

    def _create_database(self) -> None:
        with contextlib.closing(self.connect("postgres")) as db:
            db.autocommit = True
            with db.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down (fast, then immediate, then SIGKILL); remove its directory."""
        try:
            if self._proc is not None and self._proc.poll() is None:
                for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
                    self._proc.send_signal(sig)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(timeout=timeout if sig is signal.SIGINT else 10)
                        break
        finally:
            self._close_log()
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server logged, for error messages."""
        if self.dir is None:
            return ""
        try:
            text = (self.dir / LOG_FILE).read_text("utf-8", "replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of the PostgreSQL log ---\n{tail}\n--- end of log ---"

    def __enter__(self) -> Self:
        """`with PostgresServer() as pg:` starts it and stops and removes it afterwards."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop and remove."""
        self.stop()
