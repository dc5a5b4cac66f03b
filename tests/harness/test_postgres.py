"""The temporary PostgreSQL server: started, used over TCP with psycopg2, stopped and removed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import tempfile

import psycopg2
import pytest

from tests.harness.postgres import SERVER_USER, PostgresServer, find_bin_dir

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(120)]


def test_server_starts_serves_and_is_removed(postgres: PostgresServer) -> None:
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
    # Never as root (PostgreSQL refuses); as the package's system user when the tests are root.
    assert postgres.user == (SERVER_USER if os.geteuid() == 0 else postgres.user)
    assert (postgres.socket_dir / f".s.PGSQL.{postgres.port}").is_socket()


def test_stop_ends_the_server_and_removes_its_directory() -> None:
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server not installed")
    server = PostgresServer(database="other")
    with server:
        directory = server.dir
        assert directory is not None
        assert directory.is_dir()
        assert server.running
        if os.geteuid() == 0:
            assert directory.stat().st_uid != 0
    assert not server.running
    assert not Path(directory).exists()
    with pytest.raises(psycopg2.OperationalError):
        server.connect().close()


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
