# Run inside a private mount namespace (scripts/lib/env.sh in_env): mount what a Home Assistant test
# run needs into the Debian root file system, then run the command there, in the checkout.
#   bash enter-chroot.sh ROOTFS REPO VENV_OR_EMPTY CMD...
set -euo pipefail
rootfs="$1" repo="$2" venv="$3"
shift 3
mount -t proc proc "$rootfs/proc"
mount --rbind /dev "$rootfs/dev"
mount --rbind /sys "$rootfs/sys"
mkdir -p "$rootfs$repo"
mount --bind "$repo" "$rootfs$repo"
# Share pip's download cache with the host: a second install (another clone, CI) downloads nothing.
pip_cache="${XDG_CACHE_HOME:-$HOME/.cache}/pip"
mkdir -p "$pip_cache" "$rootfs/root/.cache/pip"
mount --bind "$pip_cache" "$rootfs/root/.cache/pip"
# The host's name resolution and trusted certificates (registries are reached the way the host does).
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
[ -f /etc/hosts ] && cp /etc/hosts "$rootfs/etc/hosts"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"

path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
envs=(HOME=/root LANG=C.UTF-8 "TERM=${TERM:-dumb}" PIP_CERT=/etc/ssl/certs/ca-certificates.crt
  PIP_DISABLE_PIP_VERSION_CHECK=1 "PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-180}")
if [ -n "$venv" ]; then
  path="$venv/bin:$path"
  envs+=("VIRTUAL_ENV=$venv")
fi
envs+=("PATH=$path")
# Pass through what a test run or its caller may set.
for name in CI COLUMNS COVERAGE_FILE PYTEST_ADDOPTS HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy \
  PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST $(compgen -e | grep '^HA_INGESTION_' || true); do
  if [ -n "${!name+x}" ]; then envs+=("$name=${!name}"); fi
done
printf -v cmd '%q ' "$@"
printf -v cd_repo '%q' "$repo"
exec chroot "$rootfs" /usr/bin/env -i "${envs[@]}" /bin/bash -c "cd $cd_repo && exec $cmd"
