#!/usr/bin/env bash
# Import benchmark (issue 3): wall time and peak memory of `afterword import` beside Isso 0.14's
# `isso import`, on the same files, in one run:
#   - the tl3shi Disqus export from ../shared/data (2,693 posts, 1.6 MB);
#   - a 50× synthetic export built from it here, each copy with its own ids and page URLs.
# Every import starts from an empty database. Peak memory is the maximum resident set size
# reported by /usr/bin/time (Debian package `time`). Prints a Markdown table for BENCHMARKS.md.
#
# Usage: bench/import.sh            (COPIES=50 by default; WORK, DATA, ISSO_VENV can be set)
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-$(pwd)/../shared/data}
WORK=${WORK:-/tmp/afterword-bench-import}
COPIES=${COPIES:-50}
ISSO_VENV=${ISSO_VENV:-/tmp/afterword-bench-isso-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/afterword-target}
SOURCE="$DATA/disqus_export_tl3shi_blog.anon.xml"
BIG="$WORK/tl3shi_x${COPIES}.xml"

mkdir -p "$WORK"
log() { printf '%s\n' "$*" >&2; }

if [ ! -x /usr/bin/time ]; then
  log "installing GNU time (Debian package \`time\`)"
  sudo_if_needed=""; [ "$(id -u)" -eq 0 ] || sudo_if_needed=sudo
  $sudo_if_needed apt-get install -y -qq time >/dev/null
fi

log "building afterword (release)"
cargo build --release -p afterword >&2
AFTERWORD="$CARGO_TARGET_DIR/release/afterword"

ISSO="$ISSO_VENV/bin/isso"
if [ ! -x "$ISSO" ]; then
  log "installing isso==0.14.0 into $ISSO_VENV"
  if ! { python3 -m venv "$ISSO_VENV" && "$ISSO_VENV/bin/pip" install -q isso==0.14.0; } >&2; then
    log "Isso could not be installed: its rows will say so"
  fi
fi

log "building the ${COPIES}x synthetic export"
python3 - "$SOURCE" "$BIG" "$COPIES" <<'PY'
import re, sys
source, target, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(source, encoding="utf-8").read()
open_tag = re.search(r"<disqus[^>]*>", text)
close = text.rindex("</disqus>")
head, body, tail = text[: open_tag.end()], text[open_tag.end() : close], text[close:]
with open(target, "w", encoding="utf-8") as out:
    out.write(head)
    for k in range(copies):
        # Unique per copy: every dsq:id (threads, posts, their links), page URLs and page ids.
        copy = re.sub(r'dsq:id="(\d+)"', lambda m: f'dsq:id="{int(m.group(1)) + k * 10**11}"', body)
        copy = re.sub(r"<link>(https?://[^/<]+)", lambda m: f"<link>{m.group(1)}/copy{k}", copy)
        copy = re.sub(r"<id>([^<]+)</id>", lambda m: f"<id>copy{k}:{m.group(1)}</id>", copy)
        out.write(copy)
    out.write(tail)
PY

# measure LABEL FILE COMMAND... → sets SECONDS_TAKEN, RSS_MB, STATUS; output in $WORK/last.out
measure() {
  local label=$1; shift
  log "running: $label"
  set +e
  /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>"$WORK/last.err"
  STATUS=$?
  set -e
  read -r SECONDS_TAKEN rss_kb < <(tail -n 1 "$WORK/time.txt")
  RSS_MB=$(awk -v kb="$rss_kb" 'BEGIN { printf "%.0f", kb / 1024 }')
}

# Comments in an Isso database.
isso_count() {
  python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from comments").fetchone()[0])' "$1"
}

rows=()
for file in "$SOURCE" "$BIG"; do
  name=$(basename "$file")
  mb=$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1048576 }')

  rm -rf "$WORK/afterword-data"
  measure "afterword $name" "$AFTERWORD" --data-dir "$WORK/afterword-data" import --format disqus --json "$file"
  if [ "$STATUS" -eq 0 ]; then
    ours_count=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["created"])' <"$WORK/last.out")
    ours_time=$SECONDS_TAKEN
    rows+=("| $name ($mb MB) | afterword | $SECONDS_TAKEN | $RSS_MB | $ours_count | |")
  else
    ours_time=""
    rows+=("| $name ($mb MB) | afterword | failed (exit $STATUS): $(tail -n 1 "$WORK/last.err") | | | |")
  fi

  if [ ! -x "$ISSO" ]; then
    rows+=("| $name ($mb MB) | isso 0.14.0 | not installed | | | |")
    continue
  fi
  rm -f "$WORK/isso.db"
  printf '[general]\ndbpath = %s\nhost = http://localhost/\n' "$WORK/isso.db" >"$WORK/isso.cfg"
  # --empty-id: without it Isso 0.14 imports nothing from this export ("couldn't import any
  # thread, try again with --empty-id"): some of its threads have an empty <id>.
  measure "isso $name" "$ISSO" -c "$WORK/isso.cfg" import --type disqus --empty-id "$file"
  if [ "$STATUS" -eq 0 ]; then
    speedup=""
    if [ -n "$ours_time" ]; then
      speedup=$(awk -v a="$SECONDS_TAKEN" -v b="$ours_time" 'BEGIN { if (b > 0) printf "%.0f×", a / b }')
    fi
    rows+=("| $name ($mb MB) | isso 0.14.0 | $SECONDS_TAKEN | $RSS_MB | $(isso_count "$WORK/isso.db") | $speedup |")
  else
    rows+=("| $name ($mb MB) | isso 0.14.0 | failed (exit $STATUS): $(tail -n 1 "$WORK/last.err") | | | |")
  fi
done

printf '\nImport benchmark, %s, %s CPU(s), %s\n\n' "$(date -u +%Y-%m-%d)" "$(nproc)" "$(uname -sr)"
printf '| file | importer | wall time (s) | peak RSS (MB) | comments stored | afterword is faster by |\n'
printf '|---|---|---:|---:|---:|---:|\n'
printf '%s\n' "${rows[@]}"
