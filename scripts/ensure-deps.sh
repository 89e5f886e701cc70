#!/usr/bin/env bash
# Installs what `make run` / `make test` need on a fresh machine: Go modules,
# PostgreSQL server binaries and (for tests) Chromium. Debian packages are
# installed with apt-get when running as root; otherwise it says what to run.
set -euo pipefail
need_browser=${1:-}

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "missing: $*; install with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

go mod download

if ! have_pg; then
  echo "installing PostgreSQL server binaries…" >&2
  apt_install postgresql
fi

if [ "$need_browser" = "browser" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing Chromium for the browser tests…" >&2
  apt_install chromium
fi
