#!/usr/bin/env bash
# Do heavy bounded reads hold up the pages beside them? (issue 16: reads run in place on the
# runtime's workers unless a recent one was heavy or read the disk, crates/sqlite/src/
# in_place.rs). One tenant with 10 years of office365ActiveUserCounts (1.12M rows, the
# database of bench/history.sh): HEAVY connections ask for the 10-year daily series (~27 ms
# each on SQLite) while CONNECTIONS connections read an indexed page (`reportDate ge
# 2020-01-01&$top=10`); then the page alone. Prints a Markdown table: req/s, p50, p99.
# Settings: DURATION=5 CONNECTIONS=28 HEAVY=4; REPORTROOT_BIN (else a release build);
# BENCH_WORK; BACKEND=sqlite|postgres (postgres: BENCH_POSTGRES_URL, as bench/history.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-$ROOT/bench/work}
DURATION=${DURATION:-5}; CONNECTIONS=${CONNECTIONS:-28}; HEAVY=${HEAVY:-4}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=18084
# shellcheck source=bench/lib/wrk_and_binary.sh
. bench/lib/wrk_and_binary.sh
SEED=(seed --tenants 1 --days 3650 --periods D7,D30,D90,D180 --reports office365ActiveUserCounts)
# shellcheck source=bench/lib/seeded.sh
. bench/lib/seeded.sh
seeded_database "${BENCH_DATABASE:-reportroot_bench_history}" \
  "$WORK/bench-1x3650-D7_D30_D90_D180.db" "${SEED[@]}"
TOKEN_FILE=$WORK/heavy-tokens.txt
"$RR" token --tenant 5eed0000-0000-0001-0000-000000000000 --role Reports.Read.All --ttl 1h \
  > "$TOKEN_FILE"
setsid "$RR" serve --listen "127.0.0.1:$PORT" --database "$DATABASE" > "$WORK/heavy-server.log" 2>&1 &
PID=$!
trap 'kill -- "-$PID" 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; do sleep 0.2; done
REPORT=/v1.0/reports/office365ActiveUserCounts
SERIES="$REPORT/reportroot.series(from=$(date -u -d '-10 years' +%F),to=$(date -u +%F))"
PAGE="$REPORT?\$filter=reportDate%20ge%202020-01-01&\$top=10"
# wrk's figures of one run: req/s | p50 | p99.
figures() { awk '/Requests\/sec/ {r=$2} $1 == "50%" {m=$2} $1 == "99%" {p=$2} END {print r " | " m " | " p}'; }
run() { TOKENS=$TOKEN_FILE WRK_PATH=$1 wrk -t 1 -c "$2" -d "$3s" --latency -s bench/lua/get.lua \
  "http://127.0.0.1:$PORT"; }
echo "backend: ${BACKEND:-sqlite}; uptime: $(uptime)"
echo
echo "| run | pages: req/s | p50 | p99 | series: req/s | p50 | p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run "$SERIES" "$HEAVY" $((DURATION + 1)) > "$WORK/heavy-series.txt" &
SERIES_PID=$!
sleep 0.5
pages=$(run "$PAGE" "$CONNECTIONS" "$DURATION" | figures)
wait $SERIES_PID
echo "| pages beside $HEAVY series connections | $pages | $(figures < "$WORK/heavy-series.txt") |"
echo "| pages alone | $(run "$PAGE" "$CONNECTIONS" "$DURATION" | figures) | | | |"
