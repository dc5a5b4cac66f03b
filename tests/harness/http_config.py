"""Home Assistant's `http` settings for a `hass` this project starts, the way its release reads them.

Up to 2026.7 the `http:` block of configuration.yaml is the only source (`.storage/http` version 1
is a copy the release writes itself for recovery mode). From 2026.8 the settings live in
`.storage/http` (`homeassistant/components/http/config.py`, `HTTPConfigStore`: a `stable` and a
`pending` slot and a `yaml_migration_done` flag). An `http:` block there is migrated once into
`pending` (a trial reverted, with a restart, unless an administrator promotes it within five
minutes) and then ignored with the `yaml_still_present_after_migration` repair ("stops working in
2027.2.0"). A fresh config dir without the block gets the default port (8123, or `SETUP_PORT` from
the environment); nothing but the store sets `server_host` or the ban settings.

So on a release with the store the settings are seeded as its `stable` slot, with the migration
marked done, before every start, and configuration.yaml has no `http:` block; on an older release
they go into the YAML as before. Used by `RemoteHass` (the e2e remote, the e2e_ha local instances
and both `scripts/develop` instances) and by `bench/hass_env.py` (an in-process `hass`).
"""

from __future__ import annotations

from collections.abc import Mapping
import datetime as dt
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

DOMAIN = "http"
STORE_FILE = Path(".storage") / DOMAIN
# The store format this writes: `homeassistant.components.http.config` STORAGE_VERSION and
# STORAGE_MINOR_VERSION of the releases that introduced it (2026.10 reads it as is). A later release
# migrates it on load (Home Assistant's Store runs the release's own migration for an older version):
# 2026.11 stores 3.1, with versioned `ssl_profile` names its migration derives from these. So the
# version is not taken from the installed release: its number with this shape could skip that.
STORE_VERSION = 2
STORE_MINOR_VERSION = 2
# Defaults of the release's HTTP_STORAGE_SCHEMA: its loader takes the slot as stored (no schema run
# on load), and the server reads every one of these keys.
STORE_DEFAULTS: dict[str, Any] = {
    "cors_allowed_origins": ["https://cast.home-assistant.io"],
    "login_attempts_threshold": -1,
    "ip_ban_enabled": True,
    "ssl_profile": "modern",
    "use_x_frame_options": True,
}


def http_storage_supported() -> bool:
    """The Home Assistant of this interpreter (the one `hass` runs from) keeps `http` in storage.

    Feature-detected by its `homeassistant/components/http/config.py` (the store's module), found
    without importing the `http` package, which is slow to import.
    """
    spec = importlib.util.find_spec("homeassistant")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        (Path(location) / "components" / DOMAIN / "config.py").is_file()
        for location in spec.submodule_search_locations
    )


def http_settings(
    host: str,
    port: int,
    *,
    ip_ban_enabled: bool = True,
    login_attempts_threshold: int | None = None,
) -> dict[str, Any]:
    """The `http` settings the harness uses, in the keys both forms share."""
    settings: dict[str, Any] = {
        "server_host": [host],
        "server_port": port,
        "ip_ban_enabled": ip_ban_enabled,
    }
    if login_attempts_threshold:
        settings["login_attempts_threshold"] = login_attempts_threshold
    return settings


def http_store(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The `.storage/http` document that makes `settings` the confirmed (`stable`) config."""
    stable = {
        **STORE_DEFAULTS,
        **settings,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "error": None,
        "error_message": None,
    }
    return {
        "version": STORE_VERSION,
        "minor_version": STORE_MINOR_VERSION,
        "key": DOMAIN,
        "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
    }


def configure_http(config_dir: Path | str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Make the `hass` of `config_dir` use `settings` the way the installed release reads them.

    Call it before every start (a running instance rewrites the file). Returns the configuration
    the caller adds to configuration.yaml (or passes to `async_setup_component`): `{}` where the
    settings went into `.storage/http`, `{"http": settings}` on a release before the store.
    """
    path = Path(config_dir) / STORE_FILE
    if not http_storage_supported():
        # A store from a newer release would only be in the way of this one's recovery copy.
        if _stored_version(path) >= STORE_VERSION:
            path.unlink()
        return {DOMAIN: dict(settings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.harness-tmp")
    tmp.write_text(json.dumps(http_store(settings), indent=2), encoding="utf-8")
    tmp.chmod(0o600)  # as Home Assistant keeps it (a private store)
    os.replace(tmp, path)
    return {}


def _stored_version(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["version"])
    except OSError, ValueError, KeyError, TypeError:
        return 0
