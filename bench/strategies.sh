#!/usr/bin/env bash
# Read strategies side by side (issue 6), all in one run on this machine, loopback only.
#
# For each replica delay in DELAYS: `afterword up` starts a real PostgreSQL primary, two
# streaming replicas delayed by that much, and two app servers with
# --allow-strategy-override. wrk then drives app-1 with CLIENTS API clients (one keep-alive
# connection each, bench/strategies.lua): WRITERS of them write every WRITE_EVERY-th request
# and read their own thread otherwise; the others only read writers' threads. Every client
# carries its highest position. Every strategy runs on the same
# cluster, in ROUNDS alternating rounds of DURATION; the table shows each strategy's median
# round: requests/s (reads and writes), wrk's p50/p99 latency, the share of reads served by
# replicas (a cache hit counts where its entry was read), after a wait, and from the read
# cache, and read-your-writes misses (a read lacking the client's own latest comment).
#
#   bench/strategies.sh    # DELAYS="0s 1s" DURATION=10s ROUNDS=3 CLIENTS=16 WRITERS=4 WRITE_EVERY=100
#
# Needs: cargo, wrk, curl, python3, Debian's PostgreSQL 15 (apt-get install wrk postgresql-15).
set -euo pipefail
cd "$(dirname "$0")/.."

DELAYS="${DELAYS:-0s 1s}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
CLIENTS="${CLIENTS:-16}"
WRITE_EVERY="${WRITE_EVERY:-100}"
WRITERS="${WRITERS:-4}"
STRATEGIES="${STRATEGIES:-eventual primary sticky:2s causal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/afterword-target}"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk curl python3)" >&2; exit 1; }
done

work="$(mktemp -d /tmp/afterword-bench-strategies.XXXXXX)"
up_pid=""
stop_cluster() {
  if [ -n "$up_pid" ]; then
    kill -TERM "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
    up_pid=""
  fi
}
cleanup() { stop_cluster; rm -rf "$work"; }
trap cleanup EXIT

echo "== building the release binary"
cargo build --release -p afterword --quiet
bin="$CARGO_TARGET_DIR/release/afterword"

# Writes in a benchmark come far faster than the default per-address rate limit allows.
cat >"$work/afterword.toml" <<EOF
# Temporary config written by bench/strategies.sh.
[rate_limit]
writes_per_minute_per_address = 10000000
writes_per_minute_per_session = 10000000
write_burst = 10000000
EOF

# Starts a cluster with both replicas delayed by $1; sets app_url.
start_cluster() {
  local delay="$1" data="$work/cluster-$1"
  : >"$work/up.out"
  "$bin" --config "$work/afterword.toml" --data-dir "$data" up --replicas 2 --replica-delays "$delay,$delay" \
    --app-servers 2 --allow-strategy-override >"$work/up.out" 2>"$work/up.err" &
  up_pid=$!
  for _ in $(seq 1 600); do
    app_url="$(awk '$1 == "app-1" {print $2}' "$work/up.out")"
    [ -n "$app_url" ] && break
    kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.err" >&2; echo "bench: afterword up failed" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$app_url" ] || { echo "bench: afterword up printed no app-1 line" >&2; exit 1; }
  # Routing starts once every replica has been polled.
  for _ in $(seq 1 300); do
    curl -fs "$app_url/readyz" | grep -q '"replicas_polled":true' && return 0
    sleep 0.1
  done
  echo "bench: replicas never polled" >&2; exit 1
}

# One wrk round → "rps p50 p99 reads on_replica after_wait cached misses failures".
run_round() {
  local strategy="$1" prefix="$2" out
  out="$(wrk -t"$CLIENTS" -c"$CLIENTS" -d"$DURATION" --latency -s bench/strategies.lua "$app_url" -- \
    "$strategy" "$WRITE_EVERY" "$prefix" "$WRITERS")"
  echo "$out" >"$work/wrk-last.txt"
  python3 - "$out" <<'EOF'
import re, sys
out = sys.argv[1]
rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1)
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
line = re.search(r"^afterword: (.*)$", out, re.M).group(1)
f = dict(kv.split("=") for kv in line.split())
print(rps, lat.get("50", "?"), lat.get("99", "?"), f["reads"], f["on_replica"], f["after_wait"], f["cached"], f["misses"], f["failures"])
EOF
}

to_ms() {
  python3 -c '
import sys
t = sys.argv[1]
for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
    if t.endswith(unit):
        print(f"{float(t[:-len(unit)]) * f:.2f}"); break
else:
    print(t)' "$1"
}

results="$work/results.txt"
: >"$results"
run_id="$(date +%s)"
for delay in $DELAYS; do
  echo "== cluster: primary + 2 replicas delayed $delay + 2 app servers"
  start_cluster "$delay"
  for round in $(seq 1 "$ROUNDS"); do
    for strategy in $STRATEGIES; do
      prefix="/bench/$run_id/$delay/$round/${strategy//:/-}"
      read -r rps p50 p99 reads on_replica after_wait cached misses failures < <(run_round "$strategy" "$prefix")
      printf '   round %d %-10s %10s req/s  p50 %-9s p99 %-9s replica %s/%s  cached %s  misses %s  failures %s\n' \
        "$round" "$strategy" "$rps" "$p50" "$p99" "$on_replica" "$reads" "$cached" "$misses" "$failures"
      echo "$delay $strategy $rps $(to_ms "$p50") $(to_ms "$p99") $reads $on_replica $after_wait $cached $misses $failures" >>"$results"
    done
  done
  stop_cluster
done

echo
echo "== medians of $ROUNDS rounds ($CLIENTS clients, $WRITERS of them writing once per $WRITE_EVERY requests, $DURATION each, on app-1)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print("| replica delay | strategy | req/s | vs eventual | p50 ms | p99 ms | p99 vs eventual | reads on replicas | after a wait | cache hits | RYW misses | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
by = {}
for delay, strategy, rps, p50, p99, reads, rep, wait, hit, miss, fail in rows:
    by.setdefault((delay, strategy), []).append((float(rps), float(p50), float(p99), int(reads), int(rep), int(wait), int(hit), int(miss), int(fail)))
delays = list(dict.fromkeys(r[0] for r in rows))
strategies = list(dict.fromkeys(r[1] for r in rows))
for delay in delays:
    base = by.get((delay, "eventual"))
    base_rps = statistics.median(r[0] for r in base) if base else None
    base_p99 = statistics.median(r[2] for r in base) if base else None
    for strategy in strategies:
        runs = by[(delay, strategy)]
        rps = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        p99 = statistics.median(r[2] for r in runs)
        reads = sum(r[3] for r in runs)
        share = lambda i: f"{100 * sum(r[i] for r in runs) / max(reads, 1):.0f}%"
        misses = sum(r[7] for r in runs)
        failures = sum(r[8] for r in runs)
        vs = f"{rps / base_rps:.2f}x" if base_rps else ""
        vs99 = f"{p99 / base_p99:.2f}x" if base_p99 else ""
        print(f"| {delay} | {strategy} | {rps:,.0f} | {vs} | {p50:.2f} | {p99:.2f} | {vs99} | {share(4)} | {share(5)} | {share(6)} | {misses} | {failures} |")
EOF
