#!/usr/bin/env bash
# Times a selective $filter over one tenant with about a million rows (10 years × every period
# of active users), and prints SQLite's EXPLAIN QUERY PLAN of the SQL it compiles to.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${BENCH_WORK:-$PWD/bench/work}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=18081
cargo build --release --locked -q -p reportroot
RR=$PWD/target/release/reportroot
DB=$WORK/bench-1x3650-D7_D30_D90_D180.db
if [ ! -f "$DB" ]; then
  "$RR" seed --tenants 1 --days 3650 --periods D7,D30,D90,D180 --reports office365ActiveUserCounts --database "sqlite://$DB.tmp"
  mv "$DB.tmp" "$DB"
fi
TOKEN=$("$RR" token --tenant 5eed0000-0000-0001-0000-000000000000 --role Reports.Read.All --ttl 1h)
RUST_LOG=reportroot_sqlite=debug "$RR" serve --listen "127.0.0.1:$PORT" --database "sqlite://$DB" > "$WORK/filter-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; do sleep 0.2; done
YEAR=$(( $(date +%Y) - 1 ))
FILTER="reportDate%20ge%20$YEAR-01-01%20and%20reportDate%20le%20$YEAR-03-31%20and%20reportPeriod%20eq%20'7'"
PATH_Q="/v1.0/reports/office365ActiveUserCounts?\$filter=$FILTER&\$select=reportDate,teams&\$top=100"
ROWS=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from office365_active_user_counts').fetchone()[0])" "$DB")
echo "tenant rows (active users): $ROWS"
echo "query: GET $PATH_Q"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$PATH_Q" | python3 -c "import json,sys; v=json.load(sys.stdin)['value']; print(f'{len(v)} rows, first {v[0]}')"
echo "wrk, 4 connections, 5 s:"
TOKENS= WRK_PATH=$PATH_Q wrk -t 2 -c 4 -d 5s --latency -s bench/lua/get.lua -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT" |
  grep -E "Requests/sec|^ +(50|99)%|Non-2xx"
SQL=$(grep -o 'sql=SELECT.*' "$WORK/filter-server.log" | tail -n 1 | sed 's/^sql=//')
echo "SQL: $SQL"
echo "EXPLAIN QUERY PLAN:"
python3 - "$DB" "$SQL" <<'PY'
import sqlite3, sys
import re
params = max(int(n) for n in re.findall(r"\?(\d+)", sys.argv[2]))
for row in sqlite3.connect(sys.argv[1]).execute("EXPLAIN QUERY PLAN " + sys.argv[2], [None] * params):
    print("  ", row[3])
PY
