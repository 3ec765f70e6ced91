#!/usr/bin/env bash
# Browser tests of the embed widget (issue 4). Installs the npm dependencies pinned in
# package-lock.json (playwright-core only: no browser download), checks for Debian's Chromium
# (installing it with apt-get when run as root), then runs node's test runner over tests/.
# Needs the debug binary: `cargo build -p afterword` ($CARGO_TARGET_DIR, default ../target),
# or AFTERWORD_BIN=/path/to/afterword. Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "widget tests: Chromium is missing; run: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
command -v node >/dev/null || { echo "widget tests: node is missing; run: apt-get install nodejs npm" >&2; exit 1; }

npm ci --no-audit --no-fund --loglevel=error

bin="${AFTERWORD_BIN:-${CARGO_TARGET_DIR:-../target}/debug/afterword}"
if [ ! -x "$bin" ]; then
  echo "widget tests: no afterword binary at $bin; run: cargo build -p afterword" >&2
  exit 1
fi

# One file at a time: each starts its own server and browser, and the machine has two cores.
exec node --test --test-concurrency=1 tests/
