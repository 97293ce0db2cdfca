#!/usr/bin/env bash
# The whole test suite: fast unit tests, then the integration tests (real Dagster, dbt
# and the packaged embedding model on small data).
set -euo pipefail
cd "$(dirname "$0")/.."
export DO_NOT_TRACK=1
exec .venv/bin/python -m pytest -q "$@"
