#!/usr/bin/env bash
# History at interactive speed (issue 16): the issue's queries and the daily series
# (reportroot.series) over 1, 3 and 10 years, on one tenant with 10 years of
# office365ActiveUserCounts (1.12M rows), one at a time (curl, best and median of 5) and under
# wrk at 32 connections (req/s, p50, p99). Prints a Markdown table.
# Settings: BACKEND=sqlite|postgres (postgres: BENCH_POSTGRES_URL, a server URL whose
# database reportroot_bench_history[_TxD] is created and seeded once), DURATION=5
# CONNECTIONS=32 THREADS=2; TENANTS=1 DAYS=3650 (with several tenants, wrk picks one of 100 at
# random each request, and the one-at-a-time column is the first tenant's); REPORTROOT_BIN
# (else a release build); BENCH_WORK (the seeded SQLite database is kept there);
# BENCH_DATABASE (the PostgreSQL database's name; a copy, to measure a binary that migrates it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-$ROOT/bench/work}
DURATION=${DURATION:-5}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
BACKEND=${BACKEND:-sqlite}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=18082
TENANTS=${TENANTS:-1}; DAYS=${DAYS:-3650}
# shellcheck source=bench/lib/wrk_and_binary.sh
. bench/lib/wrk_and_binary.sh
SEED=(seed --tenants "$TENANTS" --days "$DAYS" --periods D7,D30,D90,D180 --reports office365ActiveUserCounts)
NAME=${BENCH_DATABASE:-reportroot_bench_history}
[ "$TENANTS/$DAYS" = 1/3650 ] || NAME=${NAME}_${TENANTS}x${DAYS}
# shellcheck source=bench/lib/seeded.sh
. bench/lib/seeded.sh
seeded_database "$NAME" "$WORK/bench-${TENANTS}x${DAYS}-D7_D30_D90_D180.db" "${SEED[@]}"
TOKEN=$("$RR" token --tenant 5eed0000-0000-0001-0000-000000000000 --role Reports.Read.All --ttl 1h)
# The tokens wrk picks from: one tenant, or 100 spread over the tenants.
TOKEN_FILE=$WORK/history-tokens.txt
: > "$TOKEN_FILE"
for i in $(seq 0 $(( TENANTS > 100 ? 99 : TENANTS - 1 ))); do
  "$RR" token --tenant "$(printf '5eed0000-0000-0001-0000-%012x' $(( (i * 7919) % TENANTS )))" \
    --role Reports.Read.All --ttl 1h >> "$TOKEN_FILE"
done
setsid "$RR" serve --listen "127.0.0.1:$PORT" --database "$DATABASE" > "$WORK/history-server.log" 2>&1 &
PID=$!
trap 'kill -- "-$PID" 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; do sleep 0.2; done
Q="'"
TODAY=$(date -u +%F)
QUERIES=(
  '?$top=10'
  '?$filter=reportDate ge 2025-01-01&$top=10'
  '?$filter=reportDate ge 2020-01-01&$top=10'
  '?$filter=reportDate ge 2020-01-01 and reportDate le 2020-01-31&$top=10'
  '?$filter=reportDate ge 2020-01-01 and reportDate le 2020-12-31&$top=10'
  "?\$filter=reportDate ge $(date -u -d '-10 years' +%F) and reportDate le $TODAY&\$top=10"
  "?\$filter=reportDate ge 2020-01-01 and reportPeriod eq ${Q}7${Q}&\$top=10"
  "?\$filter=reportDate ge $(date +%Y)-10-01 and reportPeriod eq ${Q}7${Q}&\$top=10"
  '?$orderby=reportDate desc&$top=10'
  '?$filter=teams gt 100&$top=10'
  '?$filter=reportDate ge 2020-01-01&$count=true&$top=1'
  '?$count=true&$top=1'
  "/reportroot.series(from=$(date -u -d '-1 year' +%F),to=$TODAY)"
  "/reportroot.series(from=$(date -u -d '-3 years' +%F),to=$TODAY)"
  "/reportroot.series(from=$(date -u -d '-10 years' +%F),to=$TODAY)"
  "/reportroot.series(from=$(date -u -d '-10 years' +%F),to=$TODAY,interval=${Q}week${Q})"
)
echo "backend: $BACKEND; $TENANTS tenant(s) × $DAYS days; uptime: $(uptime)"
echo
echo "| query | one at a time (best / median of 5) | status | req/s ($CONNECTIONS conn.) | p50 | p99 | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for query in "${QUERIES[@]}"; do
  path="/v1.0/reports/office365ActiveUserCounts${query// /%20}"
  path=${path//\'/%27}
  times=()
  for _ in 1 2 3 4 5; do
    times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path")")
  done
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path")
  single=$(python3 -c "import sys; v=sorted(float(x)*1000 for x in sys.argv[1:]); print(f'{v[0]:.1f} / {v[2]:.1f} ms')" "${times[@]}")
  out=$(TOKENS=$TOKEN_FILE WRK_PATH=$path wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency \
    -s bench/lua/get.lua -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "| \`$query\` | $single | $status | $rps | $p50 | $p99 | ${non2xx:-0} |"
done
