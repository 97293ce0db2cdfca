#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment with every dependency, the data directory
# and the dbt manifest. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch is pinned to the CPU build in pyproject.toml; see docs/operations.md for GPU machines.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# An editable install leaves our own modules uncompiled. Where PYTHONDONTWRITEBYTECODE is
# set (it is on the machines this project is built and tested on), every process compiled
# them again: 1.3 s of each `shopguide` command's start. pip compiles installed packages so.
.venv/bin/python -m compileall -q -j 0 core shopguide orchestration assets warehouse embeddings \
  reports recommendations serving evaluation experiments quality >/dev/null
# Java 17 for the optional `spark` dbt target (pyspark and dbt-spark come with the line above).
# Not fatal here: the default duckdb target needs no Java; scripts/test.sh requires it.
./scripts/install-java.sh || echo "setup: no Java 17 installed; \`--target spark\` will say so when used" >&2
.venv/bin/shopguide setup
