#!/usr/bin/env bash
# Read benchmark (issue 4), all in one run on this machine, loopback only:
#   - afterword (release build): wrk on GET /api/v1/comments for a 50-comment thread, as an
#     anonymous reader (served from the read cache) and as a reader with a session (no cache,
#     serialised per request);
#   - nginx serving the very same response bytes as a static file;
#   - Isso 0.14 (PyPI, under gunicorn as its docs deploy it) serving a 50-comment thread.
# The anonymous read is measured twice against nginx: identity-encoded (wrk's default request,
# no Accept-Encoding) and gzip-encoded (`Accept-Encoding: gzip`, which every browser sends;
# afterword answers from its cached gzip variant, nginx from the very same bytes with
# `gzip_static`). Each pair compares the same bytes and encoding.
# Every server gets WORKERS workers/threads (tokio worker threads, nginx worker_processes,
# gunicorn workers); wrk runs with the same threads, connections and duration against each.
# Besides requests/s, each server's own CPU time per request (user + system, from /proc): on a
# shared machine requests/s moves with other load, CPU per request much less.
# Prints a side-by-side table. Needs: cargo, wrk, nginx, python3, pgrep (apt-get install wrk nginx).
#
#   bench/read.sh                  # WORKERS=1 DURATION=10s ROUNDS=5 CONNECTIONS=50 WRK_THREADS=1
#   WORKERS=2 DURATION=30s bench/read.sh
#   BENCH_BIN=/path/to/afterword bench/read.sh   # that binary, no build (BENCH_, not AFTERWORD_:
#                                                # the server reads AFTERWORD_* as configuration)
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS="${WORKERS:-1}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-5}"
CONNECTIONS="${CONNECTIONS:-50}"
WRK_THREADS="${WRK_THREADS:-1}"
COMMENTS=50
# When the machine has cores to spare, every server runs on the first WORKERS cores and wrk on
# the others (taskset), the same for each server: left to the scheduler, server and client
# trade places between rounds and requests/s swings by a third (PIN=0 turns this off).
PIN="${PIN:-1}"
server_cpus=() wrk_cpus=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -gt "$WORKERS" ]; then
  server_cpus=(taskset -c "0-$((WORKERS - 1))")
  wrk_cpus=(taskset -c "$WORKERS-$(($(nproc) - 1))")
fi
ISSO_VERSION=0.14.0
ISSO_VENV="${ISSO_VENV:-/tmp/afterword-bench-isso014-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/afterword-target}"

for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk nginx curl python3)" >&2; exit 1; }
done

work="$(mktemp -d /tmp/afterword-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; return 1
}
# The same text for every system: a paragraph of Markdown, like a real comment.
comment_text() {
  printf 'Comment %d. Thanks for the write-up; I tried the *second* approach on my own blog and it worked, although the `config` step needed a restart. Has anyone measured it with [more threads](https://example.org/threads)?' "$1"
}

# CPU time (user + system, clock ticks) used so far by the given processes, all threads.
cpu_ticks() {
  local total=0 pid ticks
  for pid in $1; do
    ticks="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    total=$((total + ticks))
  done
  echo "$total"
}

# wrk against one server → "requests/s  p50  p99  cpu-us/request  errors" (p50/p99 from
# --latency). The first argument lists the server's process ids: their CPU time per request is
# the figure that least depends on what else the machine is running (requests/s depends on it
# a lot); it includes the kernel's work in the server's own system calls.
run_wrk() {
  local server_pids="$1" out before after
  shift
  before="$(cpu_ticks "$server_pids")"
  out="$("${wrk_cpus[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")"
  after="$(cpu_ticks "$server_pids")"
  echo "$out" >"$work/wrk-last.txt"
  local rps p50 p99 errors requests cpu_us
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  cpu_us="$(python3 -c 'import sys; t, n = int(sys.argv[1]), int(sys.argv[2]); print(f"{t * 1e6 / int(sys.argv[3]) / n:.1f}" if n else "-")' \
    "$((after - before))" "${requests:-0}" "$(getconf CLK_TCK)")"
  errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd ';' - || true)"
  echo "$rps $p50 $p99 $cpu_us ${errors:-none}"
}

if [ -n "${BENCH_BIN:-}" ]; then
  bin="$BENCH_BIN"
else
  echo "== building the release binary"
  cargo build --release -p afterword --quiet
  bin="$CARGO_TARGET_DIR/release/afterword"
fi

echo "== afterword: $COMMENTS comments on /bench/fifty"
aw_port="$(free_port)"
# Posting 50 comments in a row from one address would meet the default write rate limit.
cat >"$work/afterword.toml" <<EOF
# Temporary config written by bench/read.sh.
[rate_limit]
writes_per_minute_per_address = 100000
writes_per_minute_per_session = 100000
write_burst = 100000
EOF
TOKIO_WORKER_THREADS="$WORKERS" RUST_LOG=warn "${server_cpus[@]}" "$bin" --config "$work/afterword.toml" --data-dir "$work/afterword" \
  serve --listen "127.0.0.1:$aw_port" >"$work/afterword.log" 2>&1 &
aw_pid=$!
pids+=("$aw_pid")
wait_http "http://127.0.0.1:$aw_port/readyz"
for n in $(seq 1 "$COMMENTS"); do
  python3 -c 'import json,sys; print(json.dumps({"thread": "/bench/fifty", "author": f"Reader {sys.argv[1]}", "text": sys.argv[2]}))' \
    "$n" "$(comment_text "$n")" |
    curl -fs -o "$work/created.json" -H 'content-type: application/json' --data-binary @- \
      "http://127.0.0.1:$aw_port/api/v1/comments"
done
session="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$work/created.json")"
aw_url="http://127.0.0.1:$aw_port/api/v1/comments?thread=/bench/fifty"
mkdir -p "$work/www"
curl -fs -o "$work/www/comments.json" "$aw_url"
curl -fs -o /dev/null "$aw_url" -D "$work/aw-headers.txt"
grep -qi '^afterword-cache: hit' "$work/aw-headers.txt" || { echo "bench: the anonymous read was not a cache hit" >&2; exit 1; }
aw_bytes="$(wc -c <"$work/www/comments.json")"
# The gzip variant, saved as sent (curl does not decode it without --compressed).
curl -fs -H 'Accept-Encoding: gzip' -o "$work/www/comments.json.gz" -D "$work/aw-gzip-headers.txt" "$aw_url"
grep -qi '^content-encoding: gzip' "$work/aw-gzip-headers.txt" || { echo "bench: no gzip variant from afterword" >&2; exit 1; }
aw_gzip_bytes="$(wc -c <"$work/www/comments.json.gz")"
aw_count="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["thread"]["count"])' "$work/www/comments.json")"

echo "== nginx: the same $aw_bytes bytes as a static file"
# Run as root, nginx drops its workers to an unprivileged user, who must be able to read the file.
chmod a+rx "$work" "$work/www" && chmod a+r "$work/www/comments.json" "$work/www/comments.json.gz"
ng_port="$(free_port)"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
# Temporary config written by bench/read.sh: a static file, tuned as a fair best case.
worker_processes $WORKERS;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$ng_port;
    root $work/www;
    location = /api/v1/comments {
      default_type application/json;
      add_header Cache-Control no-store;
      # comments.json.gz, afterword's own gzip bytes, to clients that accept gzip.
      gzip_static on;
      try_files /comments.json =404;
    }
  }
}
EOF
"${server_cpus[@]}" nginx -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
ng_master=$!
pids+=("$ng_master")
ng_url="http://127.0.0.1:$ng_port/api/v1/comments?thread=/bench/fifty"
wait_http "$ng_url"
# nginx's workers serve; its master only waits.
ng_pids="$ng_master $(pgrep -P "$ng_master" | tr '\n' ' ')"
cmp -s <(curl -fs "$ng_url") "$work/www/comments.json" || { echo "bench: nginx serves other bytes" >&2; exit 1; }
cmp -s <(curl -fs -H 'Accept-Encoding: gzip' "$ng_url") "$work/www/comments.json.gz" ||
  { echo "bench: nginx serves other gzip bytes" >&2; exit 1; }

echo "== isso $ISSO_VERSION: $COMMENTS comments on /bench/fifty"
isso_note=""
if [ ! -x "$ISSO_VENV/bin/isso" ] || [ ! -x "$ISSO_VENV/bin/gunicorn" ]; then
  python3 -m venv "$ISSO_VENV" && "$ISSO_VENV/bin/pip" install -q "isso==$ISSO_VERSION" gunicorn ||
    isso_note="isso $ISSO_VERSION could not be installed"
fi
is_port="$(free_port)"
if [ -z "$isso_note" ]; then
  mkdir -p "$work/isso"
  cat >"$work/isso/isso.cfg" <<EOF
; Temporary config written by bench/read.sh.
[general]
dbpath = $work/isso/comments.db
host = http://127.0.0.1:$is_port/
[moderation]
enabled = false
[guard]
enabled = false
[server]
listen = http://127.0.0.1:$is_port/
EOF
  ISSO_SETTINGS="$work/isso/isso.cfg" "${server_cpus[@]}" "$ISSO_VENV/bin/gunicorn" -b "127.0.0.1:$is_port" -w "$WORKERS" \
    --preload --log-level warning isso.run >"$work/isso.log" 2>&1 &
  is_master=$!
  pids+=("$is_master")
  wait_http "http://127.0.0.1:$is_port/info"
  is_pids="$is_master $(pgrep -P "$is_master" | tr '\n' ' ')"
  for n in $(seq 1 "$COMMENTS"); do
    # A title spares Isso fetching the page to learn it (it refuses threads it cannot fetch).
    python3 -c 'import json,sys; print(json.dumps({"author": f"Reader {sys.argv[1]}", "text": sys.argv[2], "title": "Bench"}))' \
      "$n" "$(comment_text "$n")" |
      curl -fs -o /dev/null -H 'content-type: application/json' -H "origin: http://127.0.0.1:$is_port" \
        --data-binary @- "http://127.0.0.1:$is_port/new?uri=%2Fbench%2Ffifty"
  done
  is_url="http://127.0.0.1:$is_port/?uri=%2Fbench%2Ffifty"
  is_bytes="$(curl -fs "$is_url" | wc -c)"
  is_count="$(curl -fs "$is_url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_replies"])')"
fi

echo "== wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS rounds, servers with $WORKERS worker(s) each${server_cpus[*]:+, servers on cpu ${server_cpus[2]}, wrk on cpu ${wrk_cpus[2]}}"
# Rounds alternate between the servers so that load from elsewhere on the machine hits all of
# them alike; the table shows each one's median round.
declare -A runs=()
for round in $(seq 1 "$ROUNDS"); do
  runs[nginx]+="$(run_wrk "$ng_pids" "$ng_url")"$'\n'
  runs[hit]+="$(run_wrk "$aw_pid" "$aw_url")"$'\n'
  runs[nginx_gzip]+="$(run_wrk "$ng_pids" -H 'Accept-Encoding: gzip' "$ng_url")"$'\n'
  runs[hit_gzip]+="$(run_wrk "$aw_pid" -H 'Accept-Encoding: gzip' "$aw_url")"$'\n'
  runs[session]+="$(run_wrk "$aw_pid" -H "Afterword-Session: $session" "$aw_url")"$'\n'
  echo "   round $round done"
done
# Isso is two orders of magnitude slower: one round is plenty.
if [ -z "$isso_note" ]; then
  runs[isso]="$(run_wrk "$is_pids" "$is_url")"
fi
median() { sort -n -k1,1 <<<"${runs[$1]}" | sed '/^$/d' | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'; }
read -r ng_rps ng_p50 ng_p99 ng_cpu ng_err <<<"$(median nginx)"
read -r aw_rps aw_p50 aw_p99 aw_cpu aw_err <<<"$(median hit)"
read -r as_rps as_p50 as_p99 as_cpu as_err <<<"$(median session)"
read -r ngz_rps ngz_p50 ngz_p99 ngz_cpu ngz_err <<<"$(median nginx_gzip)"
read -r awz_rps awz_p50 awz_p99 awz_cpu awz_err <<<"$(median hit_gzip)"
if [ -z "$isso_note" ]; then
  read -r is_rps is_p50 is_p99 is_cpu is_err <<<"$(median isso)"
fi
per_round() { awk '{printf "%s ", $1}' <<<"${runs[$1]}"; }
echo "   req/s per round: nginx $(per_round nginx)| hit $(per_round hit)| session $(per_round session)"
echo "   req/s per round, gzip: nginx $(per_round nginx_gzip)| hit $(per_round hit_gzip)"
# Each round's own ratio: servers in one round shared the machine's load most alike.
round_ratios() {
  paste -d' ' <(awk '{print $1}' <<<"${runs[$1]}" | sed '/^$/d') <(awk '{print $1}' <<<"${runs[$2]}" | sed '/^$/d') |
    awk '{printf "%.2fx ", $1 / $2}'
}
echo "   hit / nginx per round: $(round_ratios hit nginx)| gzip: $(round_ratios hit_gzip nginx_gzip)"
per_round_cpu() { awk '{printf "%s ", $4}' <<<"${runs[$1]}"; }
echo "   CPU us/request per round: nginx $(per_round_cpu nginx)| hit $(per_round_cpu hit)| gzip: nginx $(per_round_cpu nginx_gzip)| hit $(per_round_cpu hit_gzip)"

# A row's ratio to its nginx row (the second argument; identity-encoded nginx by default).
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}x")' "$1" "${2:-$ng_rps}"; }
echo
echo "Reads of one 50-comment thread ($(date -u +%Y-%m-%d), $(nproc) cores, wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds, $WORKERS worker(s) per server)"
printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "server" "req/s" "vs nginx" "p50" "p99" "CPU us/req" "bytes" "errors"
printf '|%s|%s|%s|%s|%s|%s|%s|%s\n' "-----------------------------------------------" "----------:" "-----------:" "---------:" "---------:" "------------:" "---------:" "-------"
printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), same bytes as a static file" "$ng_rps" "1.00x" "$ng_p50" "$ng_p99" "$ng_cpu" "$aw_bytes" "$ng_err"
printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "afterword, anonymous reader (cache hit)" "$aw_rps" "$(ratio "$aw_rps")" "$aw_p50" "$aw_p99" "$aw_cpu" "$aw_bytes" "$aw_err"
printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "nginx, same gzip bytes (gzip_static)" "$ngz_rps" "1.00x" "$ngz_p50" "$ngz_p99" "$ngz_cpu" "$aw_gzip_bytes" "$ngz_err"
printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "afterword, anonymous reader, gzip (cache hit)" "$awz_rps" "$(ratio "$awz_rps" "$ngz_rps")" "$awz_p50" "$awz_p99" "$awz_cpu" "$aw_gzip_bytes" "$awz_err"
printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "afterword, reader with a session (no cache)" "$as_rps" "$(ratio "$as_rps")" "$as_p50" "$as_p99" "$as_cpu" "$aw_bytes" "$as_err"
if [ -z "$isso_note" ]; then
  printf '| %-45s | %9s | %10s | %8s | %8s | %11s | %8s | %s\n' "isso $ISSO_VERSION (gunicorn), $is_count comments" "$is_rps" "$(ratio "$is_rps")" "$is_p50" "$is_p99" "$is_cpu" "$is_bytes" "$is_err"
else
  echo "isso: not measured: $isso_note"
fi
echo "afterword thread count: $aw_count comments"
