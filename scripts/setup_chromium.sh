#!/usr/bin/env bash
# Install the Debian `chromium` package that the board's browser tests (Playwright with
# executable_path) drive, and a CJK font so the Chinese interface renders, when missing and
# apt-get can run as root. Playwright's own browser
# download is never used. Without root or apt, say how to install it and carry on.
set -euo pipefail
WANT=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || WANT+=(chromium)
fc-list 2>/dev/null | grep -qi "cjk" || WANT+=(fonts-noto-cjk)
if [ ${#WANT[@]} -eq 0 ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing ${WANT[*]} for the board's browser tests"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${WANT[@]}"
else
    echo "setup: missing ${WANT[*]}; the board's browser tests need them (e.g. sudo apt-get install" \
         "${WANT[*]}; or set TUNELAB_CHROMIUM=/path/to/chrome)" >&2
fi
