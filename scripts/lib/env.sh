# Shared by scripts/setup, scripts/run and scripts/test (sourced, not run).
#
# Home Assistant 2026.3 and newer need Python >= 3.14.2. Where such a Python is installed (PATH,
# pyenv's versions folder, /usr/bin, or $HA_INGESTION_PYTHON) the environments are plain venvs
# ("native" mode). Otherwise scripts/setup builds a Debian sid root file system with debootstrap
# (Debian's own python3.14) once, caches it, and every command runs inside it with chroot, in a
# private mount namespace (unshare) that disappears with the command ("chroot" mode). The checkout is
# bind-mounted at the same path inside, so paths and the network (127.0.0.1) are the same in both.

PY_MIN=(3 14 2)
# The Home Assistant releases under test (requirements/<side>.txt): floor and current run the whole
# suite with pytest-homeassistant-custom-component; newest (ahead of the plugin) runs the real-`hass`
# smoke only (tests/smoke). docs/development.md, "The three sides".
SIDES=(floor current newest)
PLUGIN_SIDES=(floor current)

ha_cache_dir() {
  if [ -n "${HA_INGESTION_CACHE:-}" ]; then
    echo "$HA_INGESTION_CACHE"
  elif [ "$(id -u)" = 0 ]; then
    echo /var/cache/ha_ingestion
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/ha_ingestion"
  fi
}

CACHE="$(ha_cache_dir)"
ROOTFS="$CACHE/debian-${HA_INGESTION_DEBIAN_SUITE:-sid}"
REPO="$(pwd -P)"

py_suitable() {
  [ -n "$1" ] && [ -x "$1" ] || return 1
  "$1" -c "import sys, venv, ensurepip, ssl, sqlite3, ctypes; sys.exit(0 if sys.version_info >= (${PY_MIN[0]}, ${PY_MIN[1]}, ${PY_MIN[2]}) else 1)" >/dev/null 2>&1
}

find_native_python() {
  local candidate pyenv_root
  for candidate in "${HA_INGESTION_PYTHON:-}" "$(command -v python3.14 2>/dev/null || true)" \
    "$(command -v python3 2>/dev/null || true)"; do
    if py_suitable "$candidate"; then echo "$candidate"; return 0; fi
  done
  pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  for candidate in $(ls -d "$pyenv_root"/versions/3.1[4-9]* 2>/dev/null | sort -t. -k2,2nr -k3,3nr); do
    if py_suitable "$candidate/bin/python3"; then echo "$candidate/bin/python3"; return 0; fi
  done
  for candidate in /usr/bin/python3.14 /usr/local/bin/python3.14; do
    if py_suitable "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}

if NATIVE_PYTHON="$(find_native_python)"; then
  MODE=native
else
  MODE=chroot
  NATIVE_PYTHON=""
fi

# Where a side's venv lives, as the commands see it, and on this host.
venv_path() {
  if [ "$MODE" = native ]; then echo "$CACHE/venv-$1"; else echo "/opt/ha_ingestion/venv-$1"; fi
}
venv_host_path() {
  if [ "$MODE" = native ]; then echo "$CACHE/venv-$1"; else echo "$ROOTFS/opt/ha_ingestion/venv-$1"; fi
}

check_side() {
  case "$1" in
    floor | current | newest) ;;
    *) echo "unknown Home Assistant side '$1' (floor, current or newest)" >&2; return 2 ;;
  esac
}

# in_env VENV_OR_EMPTY CMD...: run CMD in the checkout, with VENV's bin first on PATH.
in_env() {
  local venv="$1"
  shift
  if [ "$MODE" = native ]; then
    if [ -n "$venv" ]; then
      PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$@"
    else
      PATH="$(dirname "$NATIVE_PYTHON"):$PATH" "$@"
    fi
    return
  fi
  unshare --mount --propagation private -- bash "$REPO/scripts/lib/enter-chroot.sh" \
    "$ROOTFS" "$REPO" "$venv" "$@"
}
