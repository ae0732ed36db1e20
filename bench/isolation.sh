#!/usr/bin/env bash
# Does one tenant's scanning queries raise another tenant's latency? (issue 16, "a scanning
# query never raises another tenant's p99 above 10 ms"). Two tenants with 10 years of
# office365ActiveUserCounts each (2.24M rows, seeded once into $BENCH_WORK): tenant 2 reads
# indexed pages (`reportDate ge <30 days ago>&$top=10`) under wrk; meanwhile tenant 1 sends
# queries that scan its whole history (`teams gt 100000`, no index) from SCANNERS connections
# that honour Retry-After. Three runs: tenant 2 alone; with the scans under the default scan
# limits; with the limits lifted (--scans-per-tenant/--scans 64). Prints a Markdown table.
# Settings: DURATION=10 CONNECTIONS=32 THREADS=2 SCANNERS=4; REPORTROOT_BIN (else a release
# build); BENCH_WORK; BACKEND=sqlite|postgres (postgres: BENCH_POSTGRES_URL, a server URL whose
# database reportroot_bench_isolation is created and seeded once).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-$ROOT/bench/work}
DURATION=${DURATION:-10}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
SCANNERS=${SCANNERS:-4}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=18083
# shellcheck source=bench/lib/wrk_and_binary.sh
. bench/lib/wrk_and_binary.sh
SEED=(seed --tenants 2 --days 3650 --periods D7,D30,D90,D180 --reports office365ActiveUserCounts)
# shellcheck source=bench/lib/seeded.sh
. bench/lib/seeded.sh
seeded_database reportroot_bench_isolation "$WORK/isolation-2x3650.db" "${SEED[@]}"
SCANNER=$("$RR" token --tenant 5eed0000-0000-0001-0000-000000000000 --role Reports.Read.All --ttl 1h)
READER=$("$RR" token --tenant 5eed0000-0000-0001-0000-000000000001 --role Reports.Read.All --ttl 1h)
SINCE=$(date -u -d '-30 days' +%F)
PAGE="/v1.0/reports/office365ActiveUserCounts?\$filter=reportDate%20ge%20$SINCE&\$top=10"
SCAN='/v1.0/reports/office365ActiveUserCounts?$filter=teams%20gt%20100000&$top=10'
PID=
stop_server() { [ -n "$PID" ] && kill -- "-$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; PID=; }
trap stop_server EXIT
start_server() {
  setsid "$RR" serve --listen "127.0.0.1:$PORT" --database "$DATABASE" "$@" \
    > "$WORK/isolation-server.log" 2>&1 &
  PID=$!
  until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; do sleep 0.2; done
  curl -s -o /dev/null -H "Authorization: Bearer $READER" "http://127.0.0.1:$PORT$PAGE"
}
# Tenant 2's pages under wrk; prints "req/s | p50 | p99 | p99.9 | non-2xx".
reader() {
  local out
  out=$(WRK_PATH=$PAGE TOKENS= wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency \
    -s bench/lua/get.lua -H "Authorization: Bearer $READER" "http://127.0.0.1:$PORT")
  awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx/ {n=$NF}
       END {printf "%s | %s | %s | %s", r, p50, p99, (n == "" ? 0 : n)}' <<<"$out"
}
scanner() {
  WRK_PATH=$SCAN wrk -t 1 -c "$SCANNERS" -d "$((DURATION + 2))s" -s bench/lua/scanner.lua \
    -H "Authorization: Bearer $SCANNER" "http://127.0.0.1:$PORT" > "$WORK/isolation-scanner.txt"
}
scans_done() {
  awk '/requests in/ {r=$1} /Non-2xx/ {n=$NF} END {printf "%d answered, %d not (429/503: refused, or stopped at the 2 s read limit)", r - n, n}' \
    "$WORK/isolation-scanner.txt"
}
echo "$(nproc) cores, backend ${BACKEND:-sqlite}; uptime before: $(uptime)"
echo
echo "| tenant 2's indexed pages ($CONNECTIONS conn.) | req/s | p50 | p99 | non-2xx | tenant 1's scans ($SCANNERS conn.) |"
echo "|---|---:|---:|---:|---:|---|"
start_server
echo "| alone | $(reader) | none |"
scanner & SCAN_PID=$!; sleep 1
line=$(reader); wait "$SCAN_PID"
echo "| with tenant 1 scanning, default scan limits | $line | $(scans_done) |"
stop_server
start_server --scans-per-tenant 64 --scans 64
scanner & SCAN_PID=$!; sleep 1
line=$(reader); wait "$SCAN_PID"
echo "| with tenant 1 scanning, limits lifted (64/64) | $line | $(scans_done) |"
echo
echo "uptime after: $(uptime)"
