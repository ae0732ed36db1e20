#!/usr/bin/env bash
# Cost of the operation modes: report-function throughput with Graph's throttling on but not
# triggered (limits far above the load, so every request is counted in its window) and
# Prometheus metrics on, against both off.
#
# Robust on a shared machine: each round measures off and on back to back, in alternating
# order (off,on then on,off: ABBA, so a drift in background load falls on both alike), after
# a warm-up; the figure is the median over the rounds of each round's on/off ratio. With
# PIN=1 (the default when there are at least 2 cores and taskset exists) the server runs on
# core 0 and wrk on core 1, so they do not steal each other's core. Prints each round, the
# medians and `uptime` before and after.
#
# BACKEND=sqlite (default): counters in memory. BACKEND=postgres: the server on a database of
# its own on $REPORTROOT_TEST_POSTGRES_URL's server (scripts/postgres.sh), so "on" counts in the
# shared counters (one statement per request); its window is WINDOW seconds (default 3 there:
# at this load each window then holds about 100 requests, as Graph's limits allow at most).
# Settings (environment): TENANTS=100 DAYS=30 DURATION=5 ROUNDS=5 WARMUP=1 CONNECTIONS=32
#   THREADS=2 PIN WINDOW PATHS (default: beta JSON and v1.0 CSV without redirect)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BACKEND=${BACKEND:-sqlite}
TENANTS=${TENANTS:-100}; DAYS=${DAYS:-30}; DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
if [ "$BACKEND" = postgres ]; then WINDOW=${WINDOW:-3}; else WINDOW=${WINDOW:-600}; fi
WORK=${BENCH_WORK:-$ROOT/bench/work}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=${PORT:-18080}; METRICS_PORT=${METRICS_PORT:-19090}
if [ -z "${PIN:-}" ]; then
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN=1; else PIN=0; fi
fi
SERVER_CPU=(); WRK_CPU=()
if [ "$PIN" = 1 ]; then SERVER_CPU=(taskset -c 0); WRK_CPU=(taskset -c 1); fi
if ! command -v wrk >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
cargo build --release --locked -q -p reportroot
RR=$ROOT/target/release/reportroot
tenant_id() { printf '5eed0000-0000-0001-0000-%012x' "$1"; }
seed() { # database url
  "$RR" seed --tenants "$TENANTS" --days "$DAYS" --periods D7 \
    --reports office365ActiveUserCounts --database "$1" >&2
}
DROP_DB=
case "$BACKEND" in
  sqlite)
    DB=$WORK/ops-${TENANTS}x${DAYS}.db
    if [ ! -f "$DB" ]; then
      seed "sqlite://$DB.tmp"
      mv "$DB.tmp" "$DB"; rm -f "$DB.tmp-wal" "$DB.tmp-shm"
    fi
    DATABASE=sqlite://$DB ;;
  postgres)
    : "${REPORTROOT_TEST_POSTGRES_URL:?set it (eval \"\$(scripts/postgres.sh)\")}"
    NAME=reportroot_bench_ops_$$
    psql -q "$REPORTROOT_TEST_POSTGRES_URL" -c "CREATE DATABASE $NAME"
    DROP_DB=$NAME
    DATABASE=${REPORTROOT_TEST_POSTGRES_URL%/*}/$NAME
    seed "$DATABASE" ;;
  *) echo "BACKEND is sqlite or postgres" >&2; exit 2 ;;
esac
export TOKENS=$WORK/ops-tokens.txt
: > "$TOKENS"
for i in $(seq 0 $(( TENANTS - 1 ))); do
  "$RR" token --tenant "$(tenant_id "$i")" --role Reports.Read.All --ttl 1d >> "$TOKENS"
done
cat > "$WORK/ops.toml" <<TOML
[throttle]
window_seconds = $WINDOW
csv_per_app = 100000000
csv_per_tenant = 100000000
json_per_app = 100000000
TOML

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill -- "-$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=
}
cleanup() {
  stop_server
  if [ -n "$DROP_DB" ]; then
    psql -q "$REPORTROOT_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $DROP_DB WITH (FORCE)" || true
  fi
}
trap cleanup EXIT
start() { # mode
  local extra=()
  [ "$1" = on ] && extra=(--config "$WORK/ops.toml" --throttle graph --metrics-listen "127.0.0.1:$METRICS_PORT")
  setsid "${SERVER_CPU[@]}" "$RR" "${extra[@]}" serve --listen "127.0.0.1:$PORT" --database "$DATABASE" > "$WORK/ops-server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/ops-server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
rps() { # path seconds
  WRK_PATH=$1 "${WRK_CPU[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${2}s" -s bench/lua/get.lua \
    "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX " $0 > "/dev/stderr"}'
}
measure() { # mode path → req/s
  start "$1"
  rps "$2" "$WARMUP" > /dev/null
  local value
  value=$(rps "$2" "$DURATION")
  if [ "$1" = on ]; then
    local throttled
    throttled=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^reportroot_(throttled_responses|throttle_store_failures)_total/ {s += $2} END {print s + 0}')
    [ "$throttled" = 0 ] || echo "WARNING: $throttled requests were throttled or undecided" >&2
  fi
  stop_server
  echo "$value"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
PATHS=${PATHS:-"/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json /v1.0/reports/getOffice365ActiveUserCounts(period='D7')?redirect=false"}
echo "backend $BACKEND, pinned $PIN, window ${WINDOW}s, $ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up)"
echo "before: $(uptime)"
for path in $PATHS; do
  off=(); on=(); ratios=()
  for round in $(seq 1 "$ROUNDS"); do
    if [ $(( round % 2 )) = 1 ]; then order="off on"; else order="on off"; fi
    for mode in $order; do
      value=$(measure "$mode" "$path")
      if [ "$mode" = on ]; then a=$value; on+=("$value"); else b=$value; off+=("$value"); fi
    done
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')
    ratios+=("$ratio")
    echo "$path round $round ($order): off $b, on $a req/s, on/off $ratio"
  done
  echo "$path: median off $(median "${off[@]}"), median on $(median "${on[@]}") req/s; median of the rounds' on/off = $(median "${ratios[@]}") (rounds: ${ratios[*]})"
done
echo "after: $(uptime)"
