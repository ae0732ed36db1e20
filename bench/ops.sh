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
# shared counters (far from the limits, in leases: a statement per lease, not per request; the
# split is printed when metrics are on); its window is WINDOW seconds (default 600, Graph's:
# leases then last 10 s; WINDOW=3 makes them 750 ms, a statement per window 4 times as often).
# Settings (environment): TENANTS=100 DAYS=30 DURATION=5 ROUNDS=5 WARMUP=1 CONNECTIONS=32
#   THREADS=2 PIN WINDOW PATHS (default: beta JSON and v1.0 CSV without redirect)
#   ON=both|throttle|metrics: what "on" turns on (to tell their costs apart)
#   PAIRED=1: off and on served at the same time on the same core, each under its own wrk
#     (see measure_pair): the round's ratio then compares them under the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BACKEND=${BACKEND:-sqlite}
TENANTS=${TENANTS:-100}; DAYS=${DAYS:-30}; DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-5}
ON=${ON:-both}; WARMUP=${WARMUP:-1}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
WINDOW=${WINDOW:-600}
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
# REPORTROOT_BIN: a binary built elsewhere (e.g. of another commit, to compare), else this tree's.
if [ -n "${REPORTROOT_BIN:-}" ]; then
  RR=$REPORTROOT_BIN
else
  cargo build --release --locked -q -p reportroot
  RR=$ROOT/target/release/reportroot
fi
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

SERVER_PID=; PAIR_PIDS=()
stop_server() {
  local pid
  for pid in $SERVER_PID "${PAIR_PIDS[@]}"; do
    kill -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  done
  SERVER_PID=; PAIR_PIDS=()
}
cleanup() {
  stop_server
  if [ -n "$DROP_DB" ]; then
    psql -q "$REPORTROOT_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $DROP_DB WITH (FORCE)" || true
  fi
}
trap cleanup EXIT
launch() { # mode port → sets LAUNCHED (the server's PID) once it answers /healthz
  local config=() extra=() log=$WORK/ops-server-$1.log
  if [ "$1" = on ]; then
    config=(--config "$WORK/ops.toml")
    case "$ON" in
      both) extra=(--throttle graph --metrics-listen "127.0.0.1:$METRICS_PORT") ;;
      throttle) extra=(--throttle graph) ;;
      metrics) config=(); extra=(--metrics-listen "127.0.0.1:$METRICS_PORT") ;;
    esac
  fi
  setsid "${SERVER_CPU[@]}" "$RR" "${config[@]}" serve "${extra[@]}" --listen "127.0.0.1:$2" --database "$DATABASE" > "$log" 2>&1 &
  LAUNCHED=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$2/healthz" && return 0
    kill -0 "$LAUNCHED" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
start() { # mode
  launch "$1" "$PORT"; SERVER_PID=$LAUNCHED
}
rps() { # path seconds [port] → "req/s requests"
  WRK_PATH=$1 "${WRK_CPU[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${2}s" -s bench/lua/get.lua \
    "http://127.0.0.1:${3:-$PORT}" | awk '/requests in/ {n = $1} /Requests\/sec/ {r = $2} /Non-2xx/ {print "NON2XX " $0 > "/dev/stderr"} END {print r, n}'
}
TICK=$(getconf CLK_TCK)
# CPU time a server (default: the one started) used so far (user + system, all its threads),
# in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/${1:-$SERVER_PID}/stat"; }
# Warns when "on" throttled anything; prints the shared counters' statements against the
# decisions made without one (leases, standing refusals).
report_on() {
  [ "$ON" != throttle ] || return 0
  local scrape throttled
  scrape=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics")
  throttled=$(echo "$scrape" | awk '/^reportroot_(throttled_responses|throttle_store_failures)_total/ {s += $2} END {print s + 0}')
  [ "$throttled" = 0 ] || echo "WARNING: $throttled requests were throttled or undecided" >&2
  echo "$scrape" | awk '/^reportroot_storage_operation_duration_seconds_count\{operation="throttle_admit"\}/ {s = $2}
    /^reportroot_throttle_local_decisions_total/ {l = $2}
    END {if (s + l > 0) printf "  throttle decisions: %d statements, %d local (%.2f%% statements)\n", s, l, 100 * s / (s + l)}' >&2
}
measure() { # mode path → "req/s cpu-µs-per-request"
  start "$1"
  rps "$2" "$WARMUP" > /dev/null
  local before out after
  before=$(cpu_ticks)
  out=$(rps "$2" "$DURATION")
  after=$(cpu_ticks)
  local value
  value=$(echo "$out" | awk -v b="$before" -v a="$after" -v t="$TICK" '{printf "%s %.1f", $1, (a - b) * 1e6 / t / $2}')
  if [ "$1" = on ]; then report_on; fi
  stop_server
  echo "$value"
}
# PAIRED=1: off and on run at the same time, both on the server core, each under its own wrk
# (both on the wrk core), so whatever else the machine does falls on both alike within the
# round; rounds alternate which starts first and which port each gets. → "off-req/s
# off-cpu-µs on-req/s on-cpu-µs"
measure_pair() { # round path
  local first=off second=on
  if [ $(( $1 % 2 )) = 0 ]; then first=on; second=off; fi
  local -A pid port
  launch "$first" "$PORT"; pid[$first]=$LAUNCHED; port[$first]=$PORT; PAIR_PIDS+=("$LAUNCHED")
  launch "$second" "$(( PORT + 1 ))"; pid[$second]=$LAUNCHED; port[$second]=$(( PORT + 1 )); PAIR_PIDS+=("$LAUNCHED")
  # `wait` for the two loads by PID: a bare `wait` would wait for the servers too.
  local loads=()
  rps "$2" "$WARMUP" "${port[off]}" > /dev/null & loads+=($!)
  rps "$2" "$WARMUP" "${port[on]}" > /dev/null & loads+=($!)
  wait "${loads[@]}"
  local b_off b_on a_off a_on
  b_off=$(cpu_ticks "${pid[off]}"); b_on=$(cpu_ticks "${pid[on]}")
  loads=()
  rps "$2" "$DURATION" "${port[off]}" > "$WORK/ops-pair-off.txt" & loads+=($!)
  rps "$2" "$DURATION" "${port[on]}" > "$WORK/ops-pair-on.txt" & loads+=($!)
  wait "${loads[@]}"
  a_off=$(cpu_ticks "${pid[off]}"); a_on=$(cpu_ticks "${pid[on]}")
  report_on
  stop_server
  local cpu='{printf "%s %.1f", $1, (a - b) * 1e6 / t / $2}'
  echo "$(awk -v b="$b_off" -v a="$a_off" -v t="$TICK" "$cpu" "$WORK/ops-pair-off.txt") $(awk -v b="$b_on" -v a="$a_on" -v t="$TICK" "$cpu" "$WORK/ops-pair-on.txt")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
PATHS=${PATHS:-"/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json /v1.0/reports/getOffice365ActiveUserCounts(period='D7')?redirect=false"}
echo "on = $ON; backend $BACKEND, pinned $PIN, paired ${PAIRED:-0}, window ${WINDOW}s, $ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up)"
echo "before: $(uptime)"
# Besides req/s, the server's CPU time per request: unlike req/s it does not depend on how much
# of the core the machine's other processes leave the server, so on a loaded machine it is
# the steadier measure of the cost (on/off of req/s on a core of its own = off/on of CPU).
for path in $PATHS; do
  off=(); on=(); ratios=(); cpu_ratios=()
  for round in $(seq 1 "$ROUNDS"); do
    if [ $(( round % 2 )) = 1 ]; then order="off on"; else order="on off"; fi
    if [ "${PAIRED:-0}" = 1 ]; then
      order="together, $order first"
      read -r b bc a ac < <(measure_pair "$round" "$path")
      on+=("$a"); off+=("$b")
    else
      for mode in $order; do
        read -r value cpu < <(measure "$mode" "$path")
        if [ "$mode" = on ]; then a=$value; ac=$cpu; on+=("$value"); else b=$value; bc=$cpu; off+=("$value"); fi
      done
    fi
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')
    cpu_ratio=$(awk -v a="$ac" -v b="$bc" 'BEGIN {printf "%.3f", b / a}')
    ratios+=("$ratio"); cpu_ratios+=("$cpu_ratio")
    echo "$path round $round ($order): off $b req/s ${bc} CPU µs/req, on $a req/s ${ac} CPU µs/req; on/off req/s $ratio, off/on CPU $cpu_ratio"
  done
  echo "$path: median off $(median "${off[@]}"), median on $(median "${on[@]}") req/s; median of the rounds' on/off = $(median "${ratios[@]}") (rounds: ${ratios[*]}); median off/on CPU per request = $(median "${cpu_ratios[@]}") (rounds: ${cpu_ratios[*]})"
done
echo "after: $(uptime)"
