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
# Real PostgreSQL for the store tests, the cluster harness and `afterword up` (Debian's 15).
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
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

# The API suite again on PostgreSQL: the same tests must pass against both stores, and a
# PostgreSQL run that executed fewer of them than the SQLite run is a failure.
phase "API suite: SQLite vs PostgreSQL"
suite=()
for file in crates/api/tests/*.rs; do
  name=$(basename "$file" .rs)
  # postgres.rs and replicas.rs are PostgreSQL-only and already ran above.
  case "$name" in postgres | replicas) ;; *) suite+=(--test "$name") ;; esac
done
# Runs the suite on one store; prints how many tests passed (the whole log if any failed).
run_suite() {
  local log; log=$(mktemp)
  if ! AFTERWORD_TEST_STORE="$1" cargo test -p api --locked "${suite[@]}" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "the API suite failed on $1" >&2
    return 1
  fi
  grep -E '^test result:' "$log" >&2 || true
  awk '/^test result: ok\./ { n += $4 } END { print n + 0 }' "$log"
  rm -f "$log"
}
sqlite_passed=$(run_suite sqlite)
postgres_passed=$(run_suite postgres)
printf 'API suite: %d passed on SQLite, %d on PostgreSQL\n' "$sqlite_passed" "$postgres_passed"
if [ "$postgres_passed" -lt "$sqlite_passed" ] || [ "$sqlite_passed" -eq 0 ]; then
  echo "the PostgreSQL run executed fewer API tests than the SQLite run" >&2
  exit 1
fi

if [ -x widget/run-tests.sh ]; then
  phase "browser tests (headless Chromium)"
  widget/run-tests.sh
fi

phase "done"
