#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (scripts/setup.sh is
# idempotent), then runs the fast unit tests and the integration tests (real Dagster, dbt
# and the packaged embedding model on small data). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/install-browser.sh  # Debian's chromium for tests/test_report_browser.py (no-op when present)
./scripts/install-postgres.sh  # PostgreSQL's initdb for tests/test_dagster_service.py (no-op when present)
./scripts/install-java.sh  # Java 17 for the spark dbt target's test, tests/test_spark_target.py (no-op when present)
export DO_NOT_TRACK=1
exec .venv/bin/python -m pytest -q "$@"
