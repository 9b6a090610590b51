#!/usr/bin/env bash
# Installs what `make bench` measures with, from Debian's packages: wrk (the load generator),
# sqlite3 (P8's baseline: the CLI's .import)
# and nginx (the reference proxy P5 compares berth's with). The bench starts its own nginx on
# loopback with a generated config; the package's own service is never started here.
# Idempotent: the second run only checks.
set -euo pipefail

need_pkgs=()
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v sqlite3 >/dev/null 2>&1 || need_pkgs+=(sqlite3) # P8's baseline (.import)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || need_pkgs+=(nginx)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "bench prereqs: installing ${need_pkgs[*]} (Debian packages)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    echo "bench prereqs: need root to install ${need_pkgs[*]}; run: apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # RUNLEVEL=1 keeps the package scripts from starting nginx's own service on port 80.
  $sudo apt-get update -qq >/dev/null
  $sudo env RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
