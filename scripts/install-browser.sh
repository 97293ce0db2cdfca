#!/usr/bin/env bash
# Debian's Chromium for the browser test (tests/test_report_browser.py drives it with
# Playwright; Playwright's own browser download is never used). Idempotent: does nothing
# when /usr/bin/chromium is there. Needs root (or sudo) and the Debian package index.
set -euo pipefail
cd "$(dirname "$0")"
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
echo "install-browser: $CHROMIUM is missing; installing Debian's chromium" >&2
./apt-install.sh install-browser chromium fonts-dejavu-core
"$CHROMIUM" --version
