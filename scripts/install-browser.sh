#!/usr/bin/env bash
# Debian's Chromium for the browser test (tests/test_report_browser.py drives it with
# Playwright; Playwright's own browser download is never used). Idempotent: does nothing
# when /usr/bin/chromium is there. Needs root (or sudo) and the Debian package index.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "install-browser: $CHROMIUM is missing and this needs root: apt-get install chromium" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-browser: $CHROMIUM is missing and there is no apt-get; install Chromium so that $CHROMIUM exists" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }
# A stale or empty package index is the usual cause of a failed install: refresh it once.
install || { $SUDO apt-get update && install; }
"$CHROMIUM" --version
