#!/usr/bin/env bash
# The browser checks of `make test` drive Debian's chromium through Playwright (never a browser
# that Playwright downloads). Install it when missing, where apt-get can (root or sudo).
set -euo pipefail
for exe in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$exe" ] && [ -x "$exe" ]; then echo "chromium: $exe"; exit 0; fi
done
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  echo "chromium: installed $(/usr/bin/chromium --version)"
else
  echo "Chromium is missing and apt-get is not available: install Chromium and set CHROMIUM=/path/to/chromium." >&2
  exit 1
fi
