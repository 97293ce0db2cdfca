#!/usr/bin/env bash
# PostgreSQL's server binaries (initdb, pg_ctl) for tests/test_dagster_service.py, which starts
# its own throwaway cluster in a temporary folder. Idempotent: does nothing when initdb is
# there. Needs root (or sudo) and the Debian package index. No server is left running: the
# package's default cluster is not created.
set -euo pipefail
if command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "install-postgres: initdb is missing and this needs root: apt-get install postgresql" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-postgres: initdb is missing and there is no apt-get; install the PostgreSQL server" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postinst would create and start a cluster on port 5432; the tests need none.
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/shopguide.conf >/dev/null
install() { $SUDO apt-get install -y --no-install-recommends postgresql; }
# A stale or empty package index is the usual cause of a failed install: refresh it once.
install || { $SUDO apt-get update && install; }
compgen -G "/usr/lib/postgresql/*/bin/initdb"
