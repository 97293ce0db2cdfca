#!/usr/bin/env bash
# PostgreSQL's server binaries (initdb, pg_ctl) for tests/test_dagster_service.py, which starts
# its own throwaway cluster in a temporary folder. Idempotent: does nothing when initdb is
# there. Needs root (or sudo) and the Debian package index. No server is left running: the
# package's default cluster is not created.
set -euo pipefail
cd "$(dirname "$0")"
if command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
echo "install-postgres: initdb is missing; installing Debian's postgresql" >&2
# Debian's postinst would create and start a cluster on port 5432; the tests need none.
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/shopguide.conf >/dev/null
./apt-install.sh install-postgres postgresql
compgen -G "/usr/lib/postgresql/*/bin/initdb"
