#!/usr/bin/env bash
# Java 17 for the `spark` dbt target (pyspark starts a JVM) and tests/test_spark_target.py.
# Idempotent: does nothing when `java` is on PATH. Needs root (or sudo) and the Debian
# package index; Spark itself comes from the pyspark wheel (no download at run time).
set -euo pipefail
cd "$(dirname "$0")"
if command -v java >/dev/null || { [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; }; then
  exit 0
fi
echo "install-java: java is missing; installing Debian's openjdk-17-jre-headless" >&2
./apt-install.sh install-java openjdk-17-jre-headless
command -v java
