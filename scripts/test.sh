#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs format,
# lint, the Rust tests and the browser tests. Under CI=true a missing service is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase prints how long the previous one took.
phase_name=""; phase_started=$(date +%s)
phase() {
  local now; now=$(date +%s)
  [ -n "$phase_name" ] && printf '== %s took %d s\n' "$phase_name" $(( now - phase_started ))
  phase_name="$1"; phase_started=$now
  printf '\n== %s\n' "$1"
}

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  phase "installing ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "cargo build (binary for the end-to-end tests)"
cargo build --workspace --locked

phase "cargo test"
cargo test --workspace --locked

if [ -x widget/run-tests.sh ]; then
  phase "browser tests (headless Chromium)"
  widget/run-tests.sh
fi

phase "done"
