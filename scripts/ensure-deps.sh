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

if [ "$need_browser" = "browser" ]; then
  # Tests: Chromium for the hosted pages, curl and jq for the docs' shell examples.
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  command -v pg_dump >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing test dependencies: ${missing[*]}…" >&2
    apt_install "${missing[@]}"
  fi
fi
