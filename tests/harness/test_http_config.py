"""The `http` settings of the harness's `hass` go where its release reads them (`http_config`).

The store's format is checked against the release's own loader (a test `hass`, fast) and end to
end: a real `RemoteHass` listens on the chosen port, bans after the configured number of failed
logins, and shows no repair from the `http` domain (the "HTTP YAML configuration is ignored after
migration" one, or the deprecated-YAML ones).
"""

from __future__ import annotations

import json
from pathlib import Path
import stat
from typing import Any

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from .fixtures import LOGIN_ATTEMPTS_THRESHOLD
from .http_config import (
    STORE_FILE,
    configure_http,
    http_settings,
    http_storage_supported,
    http_store,
)
from .remote import HOST, RemoteHass, free_port

STORAGE = http_storage_supported()
needs_storage = pytest.mark.skipif(not STORAGE, reason="this release reads http from YAML")
needs_yaml = pytest.mark.skipif(STORAGE, reason="this release reads http from its store")


def test_detection_matches_the_release() -> None:
    """The file-based detection agrees with importing the release's store module."""
    try:
        from homeassistant.components.http import config
    except ImportError:
        assert not STORAGE
    else:
        assert STORAGE
        assert hasattr(config, "HTTPConfigStore")


@needs_storage
def test_storage_release_gets_a_store_and_no_yaml(tmp_path: Path) -> None:
    settings = http_settings(HOST, 18123, login_attempts_threshold=3)
    assert configure_http(tmp_path, settings) == {}
    path = tmp_path / STORE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["key"] == "http"
    assert stored["data"]["pending"] is None
    assert stored["data"]["yaml_migration_done"] is True
    assert stored["data"]["stable"]["server_port"] == 18123


@needs_yaml
def test_yaml_release_gets_yaml_and_no_newer_store(tmp_path: Path) -> None:
    settings = http_settings(HOST, 18123, login_attempts_threshold=3)
    path = tmp_path / STORE_FILE
    path.parent.mkdir()
    path.write_text(json.dumps(http_store(settings)), encoding="utf-8")
    assert configure_http(tmp_path, settings) == {"http": settings}
    assert not path.exists()


@needs_storage
async def test_release_loads_the_seed_as_its_confirmed_config(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Through the release's own loader: stable, nothing on trial, no repair."""
    from homeassistant.components.http.config import (
        HTTP_STORAGE_SCHEMA,
        ActiveConfigType,
        async_get_and_load_store,
        async_load_config,
    )

    settings = http_settings(HOST, 18123, login_attempts_threshold=3)
    hass_storage["http"] = http_store(settings)
    conf = await async_load_config(hass, {})
    store = await async_get_and_load_store(hass)
    assert store.active_config_type is ActiveConfigType.STABLE
    assert store.pending is None
    assert store.revert_deadline is None
    assert store.yaml_migration_done
    # Every key the server reads, as the release's own schema would have stored the settings.
    meta = ("created_at", "error", "error_message")
    assert {k: v for k, v in conf.items() if k not in meta} == HTTP_STORAGE_SCHEMA(settings)
    assert not [key for key in ir.async_get(hass).issues if key[0] == "http"]


@pytest.mark.e2e
async def test_remote_listens_bans_and_has_no_http_repair(socket_enabled: None) -> None:
    port = free_port()
    async with RemoteHass(
        port=port, login_attempts_threshold=LOGIN_ATTEMPTS_THRESHOLD, client_token=False
    ) as remote:
        yaml = (remote.config_dir / "configuration.yaml").read_text(encoding="utf-8")
        assert ("\nhttp:" in yaml) is not STORAGE
        assert (remote.config_dir / STORE_FILE).exists() or not STORAGE

        # (a) It listens on the chosen port (and on the chosen host).
        assert remote.url == f"http://{HOST}:{port}"
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {remote.admin_token}"}
            async with http.get(f"{remote.url}/api/", headers=headers) as resp:
                assert resp.status == 200

            # (c) No repair from the http domain (checked before the ban below locks us out).
            issues = (await remote.command({"type": "repairs/list_issues"}))["issues"]
            http_issues = [i for i in issues if i["domain"] == "http"]
            assert not http_issues, http_issues
            if STORAGE:
                active = await remote.command({"type": "http/config"})
                assert active["active_config_type"] == "stable", active
                assert active["pending"] is None, active
                assert active["revert_at"] is None, active
                assert active["stable"]["server_port"] == port, active

            # (b) The threshold is in force: one attempt short of it bans nobody, the next bans.
            bad = {"Authorization": "Bearer not-a-token"}
            for _ in range(LOGIN_ATTEMPTS_THRESHOLD - 1):
                async with http.get(f"{remote.url}/api/", headers=bad) as resp:
                    assert resp.status == 401
            assert not remote.ip_bans()
            async with http.get(f"{remote.url}/api/", headers=bad) as resp:
                assert resp.status == 401
            assert HOST in remote.ip_bans()
            async with http.get(f"{remote.url}/api/", headers=headers) as resp:
                assert resp.status == 403
