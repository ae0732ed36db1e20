#!/usr/bin/env bash
# Memory under sustained load: RSS of `reportroot serve` before, during and after DURATION
# seconds of a mixed read load in which nearly every query string is new (bench/lua/mixed.lua),
# sampled every second. Goal: RSS at the end within 100 MiB of RSS at the start. Prints a
# table and writes $WORK/memory.md (bench/report.py puts it in RESULTS.md). Settings:
#   DURATION=60 CONNECTIONS=32 THREADS=2   wrk settings
#   TENANTS=100 DAYS=190                   the seeded database
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-60}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
TENANTS=${MEMORY_TENANTS:-100}; DAYS=${MEMORY_DAYS:-190}
WORK=${BENCH_WORK:-$ROOT/bench/work}
PORT=${MEMORY_PORT:-18081}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
if ! command -v wrk >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
cargo build --release --locked -q -p reportroot
RR=$ROOT/target/release/reportroot
DB=$WORK/memory-${TENANTS}x${DAYS}.db
if [ ! -f "$DB" ]; then
  "$RR" seed --tenants "$TENANTS" --days "$DAYS" --periods D7,D30 --reports office365ActiveUserCounts --database "sqlite://$DB.tmp" >&2
  mv "$DB.tmp" "$DB"; rm -f "$DB.tmp-wal" "$DB.tmp-shm"
fi
: > "$WORK/memory-tokens.txt"
for i in $(seq 0 19); do
  "$RR" token --tenant "$(printf '5eed0000-0000-0001-0000-%012x' $(( (i * 7919) % TENANTS )))" \
    --role Reports.Read.All --ttl 1d >> "$WORK/memory-tokens.txt"
done

"$RR" serve --listen "127.0.0.1:$PORT" --database "sqlite://$DB" > "$WORK/memory-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  kill -0 "$PID" || { cat "$WORK/memory-server.log" >&2; exit 1; }
  sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
# Warm up: the connection pools, the statement caches, the allocator's first arenas.
TOKENS=$WORK/memory-tokens.txt wrk -t "$THREADS" -c "$CONNECTIONS" -d 3s -s bench/lua/mixed.lua \
  "http://127.0.0.1:$PORT" > /dev/null 2>&1 || true
sleep 1
START=$(rss)
: > "$WORK/memory-samples.txt"
( while kill -0 "$PID" 2>/dev/null; do rss >> "$WORK/memory-samples.txt"; sleep 1; done ) &
SAMPLER=$!
TOKENS=$WORK/memory-tokens.txt wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency \
  -s bench/lua/mixed.lua "http://127.0.0.1:$PORT" > "$WORK/memory-wrk.txt" 2>&1 || true
sleep 2
END=$(rss)
kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
PEAK=$(sort -n "$WORK/memory-samples.txt" | tail -n1)
RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/memory-wrk.txt")
NON2XX=$(awk '/Non-2xx/ {print $5}' "$WORK/memory-wrk.txt"); NON2XX=${NON2XX:-0}
kill "$PID"; wait "$PID" 2>/dev/null || true
python3 - "$START" "$PEAK" "$END" "$RPS" "$NON2XX" "$DURATION" "$CONNECTIONS" "$TENANTS" "$DAYS" > "$WORK/memory.md" <<'PY'
import sys
start, peak, end = (int(x) / 1024 for x in sys.argv[1:4])
rps, non2xx, duration, connections, tenants, days = sys.argv[4:10]
verdict = "met" if end - start <= 100 else "NOT met"
print(f"## Memory under sustained load ({duration} s, {connections} connections, distinct query strings)")
print()
print(f"Mixed reads on {tenants} tenants × {days} days (bench/memory.sh, bench/lua/mixed.lua): report-function JSON with")
print("distinct `$top`/`$skip` and unknown parameters, CSV with unknown parameters, entity-set `$filter`s with distinct literals.")
print()
print("| RSS at start | peak | at end | end − start | goal (≤ 100 MiB) | req/s | non-2xx |")
print("|---:|---:|---:|---:|---|---:|---:|")
print(f"| {start:.0f} MiB | {peak:.0f} MiB | {end:.0f} MiB | {end - start:+.0f} MiB | {verdict} | {float(rps):.0f} | {non2xx} |")
PY
cat "$WORK/memory.md"
