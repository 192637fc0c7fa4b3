#!/usr/bin/env bash
# Install what the browser test (tests/test_browser.py) needs: Debian's chromium and a font.
# Idempotent: does nothing when the browser is already there. Called by .ci/run before `make test`.
# Needs root (or sudo) and apt-get. Never runs `playwright install` (Playwright drives this chromium).
set -euo pipefail

CHROMIUM="${FUTURESLAB_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM is already installed ($("$CHROMIUM" --version 2>/dev/null || echo '?'))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install Chromium yourself and set FUTURESLAB_CHROMIUM=/path/to/chromium" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-browser: run as root (or install sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
if [ ! -x /usr/bin/chromium ]; then
    echo "install-browser: apt-get finished but /usr/bin/chromium is missing" >&2
    exit 1
fi
echo "install-browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
