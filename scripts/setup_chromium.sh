#!/usr/bin/env bash
# Install the Debian `chromium` package that the board's browser tests (Playwright with
# executable_path) drive, when it is missing and apt-get can run as root. Playwright's own browser
# download is never used. Without root or apt, say how to install it and carry on.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing the Debian chromium package for the board's browser tests"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
else
    echo "setup: no chromium found; the board's browser tests need it (e.g. sudo apt-get install chromium," \
         "or set TUNELAB_CHROMIUM=/path/to/chrome)" >&2
fi
