#!/usr/bin/env bash
# Cost of the operation modes: report-function throughput with Graph's throttling on but not
# triggered (limits far above the load, so every request is counted in its window) and
# Prometheus metrics on, against both off. Rounds alternate off/on so that the machine's
# background load falls on both alike; prints each round, the medians and their ratio, and
# `uptime` before and after (on a shared machine the figures are noisy).
# Settings (environment): TENANTS=100 DAYS=30 DURATION=5 ROUNDS=3 CONNECTIONS=32 THREADS=2
#   PATHS: the report calls measured (default: beta JSON and v1.0 CSV without redirect)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TENANTS=${TENANTS:-100}; DAYS=${DAYS:-30}; DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
WORK=${BENCH_WORK:-$ROOT/bench/work}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=18080; METRICS_PORT=19090
if ! command -v wrk >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
cargo build --release --locked -q -p reportroot
RR=$ROOT/target/release/reportroot
tenant_id() { printf '5eed0000-0000-0001-0000-%012x' "$1"; }
DB=$WORK/ops-${TENANTS}x${DAYS}.db
if [ ! -f "$DB" ]; then
  "$RR" seed --tenants "$TENANTS" --days "$DAYS" --periods D7 \
    --reports office365ActiveUserCounts --database "sqlite://$DB.tmp" >&2
  mv "$DB.tmp" "$DB"; rm -f "$DB.tmp-wal" "$DB.tmp-shm"
fi
export TOKENS=$WORK/ops-tokens.txt
: > "$TOKENS"
for i in $(seq 0 $(( TENANTS - 1 ))); do
  "$RR" token --tenant "$(tenant_id "$i")" --role Reports.Read.All --ttl 1d >> "$TOKENS"
done
cat > "$WORK/ops.toml" <<'TOML'
[throttle]
window_seconds = 600
csv_per_app = 100000000
csv_per_tenant = 100000000
json_per_app = 100000000
TOML

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill -- "-$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=
}
trap stop_server EXIT
start() { # mode
  local extra=()
  [ "$1" = on ] && extra=(--config "$WORK/ops.toml" --throttle graph --metrics-listen "127.0.0.1:$METRICS_PORT")
  setsid "$RR" "${extra[@]}" serve --listen "127.0.0.1:$PORT" --database "sqlite://$DB" > "$WORK/ops-server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/ops-server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
rps() { # path
  WRK_PATH=$1 wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" -s bench/lua/get.lua \
    "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX " $0 > "/dev/stderr"}'
}
PATHS=${PATHS:-"/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json /v1.0/reports/getOffice365ActiveUserCounts(period='D7')?redirect=false"}
echo "before: $(uptime)"
for path in $PATHS; do
  off=(); on=()
  for round in $(seq 1 "$ROUNDS"); do
    for mode in off on; do
      start "$mode"
      value=$(rps "$path")
      if [ "$mode" = on ]; then
        on+=("$value")
        throttled=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^reportroot_throttled_responses_total/ {s += $2} END {print s + 0}')
        [ "$throttled" = 0 ] || echo "WARNING: $throttled requests were throttled" >&2
      else
        off+=("$value")
      fi
      stop_server
      echo "$path round $round $mode: $value req/s"
    done
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
  m_off=$(median "${off[@]}"); m_on=$(median "${on[@]}")
  echo "$path median: off $m_off, on $m_on req/s; on/off = $(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.3f", a / b}')"
done
echo "after: $(uptime)"
