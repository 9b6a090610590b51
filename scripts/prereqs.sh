#!/usr/bin/env bash
# Checks what berth needs on this machine and installs what is missing from Debian's packages.
# Idempotent: the second run only checks.
set -euo pipefail

need_pkgs=()
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# The static busybox is what test fixtures and FROM-scratch images are made of.
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
# The browser tests drive Debian's Chromium (internal/browsertest finds it on PATH).
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
# The registry tests start Debian's docker-registry (the reference distribution registry).
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
# Table storage links DuckDB (duckdb-go, cgo): a C compiler and the C++ runtime to link with.
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "prereqs: installing ${need_pkgs[*]} (Debian packages)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    echo "prereqs: need root to install ${need_pkgs[*]}; run: apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  # RUNLEVEL=1 keeps package scripts from starting services (docker-registry's own, on :5000).
  $sudo env RUNLEVEL=1 apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

command -v go >/dev/null 2>&1 || { echo "prereqs: Go is not on PATH (install Go 1.26+; /usr/local/go/bin?)" >&2; exit 1; }
if ! docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; then
  echo "prereqs: the Docker Engine does not answer (is dockerd running? is DOCKER_HOST right?)" >&2
  exit 1
fi
go mod download
