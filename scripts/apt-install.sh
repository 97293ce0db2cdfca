#!/usr/bin/env bash
# apt-install.sh NAME PACKAGE...: install Debian packages for a test's tool, as root or through
# sudo; NAME is what the messages call the caller. Shared by install-browser.sh and
# install-postgres.sh, which first check whether the tool is already there.
set -euo pipefail
NAME=$1
shift
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "$NAME: this needs root: apt-get install $*" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "$NAME: there is no apt-get; install the equivalent of: $*" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y --no-install-recommends "$@"; }
# A stale or empty package index is the usual cause of a failed install: refresh it once.
install "$@" || { $SUDO apt-get update && install "$@"; }
