"""The temporary PostgreSQL server: started, used over TCP with psycopg2, stopped and removed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import pwd
import tempfile

import psycopg2  # type: ignore[import-untyped]
import pytest

from tests.harness.postgres import SERVER_USER, PostgresServer, find_bin_dir

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(120)]


def test_server_answers_sql_over_tcp_and_its_unix_socket(postgres: PostgresServer) -> None:
    assert postgres.url == f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/homeassistant"
    with contextlib.closing(postgres.connect()) as db, db.cursor() as cur:
        cur.execute("SELECT current_database(), current_user, inet_server_port()")
        assert cur.fetchone() == ("homeassistant", postgres.user, postgres.port)
        cur.execute(
            "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s",
            ("homeassistant",),
        )
        assert cur.fetchone() == ("UTF8",)
        cur.execute("CREATE TABLE t (n integer)")
        cur.execute("INSERT INTO t VALUES (1), (2)")
        db.commit()
        cur.execute("SELECT sum(n) FROM t")
        assert cur.fetchone() == (3,)
    if os.geteuid() == 0:  # PostgreSQL refuses root: the package's system user runs it
        assert postgres.user == SERVER_USER
    assert (postgres.socket_dir / f".s.PGSQL.{postgres.port}").is_socket()
    with (
        contextlib.closing(
            psycopg2.connect(
                host=str(postgres.socket_dir),
                port=postgres.port,
                user=postgres.user,
                dbname=postgres.database,
            )
        ) as db,
        db.cursor() as cur,
    ):
        cur.execute("SELECT sum(n) FROM t")
        assert cur.fetchone() == (3,)


def test_stop_ends_the_server_and_removes_its_directory() -> None:
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server not installed")
    server = PostgresServer(database="other")
    with server:
        directory = server.dir
        assert directory is not None
        assert directory.is_dir()
        running_inside = server.running
        uid = _uid(server.pid)
        with contextlib.closing(server.connect()) as db, db.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone() == ("other",)
    assert running_inside
    assert uid == os.geteuid() or (os.geteuid() == 0 and uid == pwd.getpwnam(SERVER_USER).pw_uid)
    assert uid != 0  # PostgreSQL refuses root; the harness never tries
    assert not server.running
    assert not directory.exists()
    with pytest.raises(psycopg2.OperationalError):
        server.connect().close()


def test_a_failing_test_body_still_stops_and_removes_it() -> None:
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server not installed")
    server = PostgresServer()
    directories: list[Path] = []

    def failing_body() -> None:
        with server:
            assert server.dir is not None
            directories.append(server.dir)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_body()
    (directory,) = directories
    assert not server.running
    assert not directory.exists()


def _uid(pid: int | None) -> int:
    """The real uid of a running process."""
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_a_failed_start_leaves_nothing_behind() -> None:
    """initdb failing (a bin dir whose initdb exits 1) removes the temporary directory."""
    # Not in tmp_path: the server's user must be able to run it (pytest-of-root is 0700).
    with tempfile.TemporaryDirectory(prefix="ha-pg-bin-") as made:
        bin_dir = Path(made)
        bin_dir.chmod(0o755)
        _failing_start(bin_dir)


def _failing_start(bin_dir: Path) -> None:
    for name in ("initdb", "postgres"):
        (bin_dir / name).write_text("#!/bin/sh\necho refused >&2\nexit 1\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    server = PostgresServer(bin_dir=bin_dir)
    with pytest.raises(Exception, match="initdb failed") as failure:
        server.start()
    assert "refused" in str(failure.value)
    assert server.dir is not None
    assert not server.dir.exists()
