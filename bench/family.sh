#!/usr/bin/env bash
# The whole report family under load (issue 13's benchmark): a SQLite database seeded with
# EVERY report of the registry, then
#   (a) the report functions' beta JSON, a random report × a random tenant each request
#       (bench/lua/paths.lua over the paths derived from `reportroot reports --json`), and
#   (a') the same over only the registry's first three reports (the seed documents'), and
#   (b) entity-set `$filter` queries over random reports and tenants
#       (reportDate ge … on per-day reports, reportRefreshDate ge … on the others; $top=10),
# printing req/s, p50 and p99 of each, and the load average next to them. No report list
# here: everything comes from the binary's registry.
# Settings (environment):
#   TENANTS=1000 DAYS=90 PERIODS=D7  the data (seeded once, kept in $BENCH_WORK)
#   DURATION=10 CONNECTIONS=32 THREADS=2  wrk settings per scenario
#   REPORTROOT_BIN  the binary (else a release build of the checkout)
#   ANSWER_CACHE_BYTES  the server's answer cache (0: every request reads the database)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TENANTS=${TENANTS:-1000}; DAYS=${DAYS:-90}; PERIODS=${PERIODS:-D7}
DURATION=${DURATION:-10}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
WORK=${BENCH_WORK:-$ROOT/bench/work}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=${PORT:-18081}
# shellcheck source=bench/lib/wrk_and_binary.sh
. bench/lib/wrk_and_binary.sh
tenant_id() { printf '5eed0000-0000-0001-0000-%012x' "$1"; }

DB=$WORK/family-${TENANTS}x${DAYS}-${PERIODS//,/_}.db
if [ ! -f "$DB" ]; then
  echo "seeding every report: $TENANTS tenants × $DAYS days ($PERIODS) into $DB" >&2
  start=$(date +%s)
  "$RR" seed --tenants "$TENANTS" --days "$DAYS" --periods "$PERIODS" --database "sqlite://$DB.tmp" >&2
  mv "$DB.tmp" "$DB"; rm -f "$DB.tmp-wal" "$DB.tmp-shm"
  echo "seeded in $(( $(date +%s) - start )) s" >&2
fi
python3 - "$DB" > "$WORK/family-db.txt" <<'PY'
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
ts = [r[0] for r in c.execute("select name from sqlite_master where type='table' and name not like 'reportroot%' and name not like '%!_refreshes' escape '!' and name not like '%!_days' escape '!' and name not like 'sqlite%'")]
rows = sum(c.execute(f"select count(*) from {t}").fetchone()[0] for t in ts)
print(f"{len(ts)} report tables, {rows} rows, {os.path.getsize(sys.argv[1]) / 2**20:.0f} MiB")
PY
echo "database: $(cat "$WORK/family-db.txt")" >&2

# Paths from the registry, as the binary prints it.
SINCE=$(date -u -d "-5 days" +%F)
"$RR" reports --json | python3 -c '
import json, sys, urllib.parse
since, functions, filters = sys.argv[1], open(sys.argv[2], "w"), open(sys.argv[3], "w")
for r in json.load(sys.stdin):
    name = r["function"].split("(")[0]
    args = "(period=%27D7%27)" if r["period"] else "()"
    functions.write(f"/beta/reports/{name}{args}?$format=application/json\n")
    date = "reportDate" if r["grain"].startswith("per day") else "reportRefreshDate"
    q = urllib.parse.quote(f"{date} ge {since}")
    entity_set = r["entitySet"]
    filters.write(f"/beta/reports/{entity_set}?$filter={q}&$top=10\n")
' "$SINCE" "$WORK/family-functions.txt" "$WORK/family-filters.txt"
echo "$(wc -l < "$WORK/family-functions.txt") report paths" >&2
# The registry lists the seed documents' three reports first: the same load over only those
# is the "3-report figure" of this database, server and moment.
head -n 3 "$WORK/family-functions.txt" > "$WORK/family-functions-3.txt"
: > "$WORK/family-tokens.txt"
for i in $(seq 0 99); do
  "$RR" token --tenant "$(tenant_id $(( (i * 7919) % TENANTS )))" --role Reports.Read.All --ttl 1d >> "$WORK/family-tokens.txt"
done

SERVER_PID=
stop_group() { [ -n "$SERVER_PID" ] && kill -- "-$SERVER_PID" 2>/dev/null || true; }
trap 'stop_group' EXIT
if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
  echo "port $PORT is already taken" >&2; exit 1
fi
CACHE=()
[ -n "${ANSWER_CACHE_BYTES:-}" ] && CACHE=(--answer-cache-bytes "$ANSWER_CACHE_BYTES")
setsid "$RR" serve --listen "127.0.0.1:$PORT" --database "sqlite://$DB" "${CACHE[@]}" > "$WORK/family-server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 6000); do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/family-server.log" >&2; exit 1; }
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
  sleep 0.1
done

load() { # name paths-file
  echo "load before $1: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  TOKENS=$WORK/family-tokens.txt PATHS=$2 wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" \
    --latency -s bench/lua/paths.lua "http://127.0.0.1:$PORT" > "$WORK/$1.txt" 2>&1 || true
  python3 - "$WORK/$1.txt" "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(p):
    m = re.search(rf"\n\s+{p}%\s+([\d.]+)(us|ms|s)", t)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{sys.argv[2]}: {rps:.0f} req/s, p50 {ms(50):.2f} ms, p99 {ms(99):.2f} ms, non-2xx {non2xx.group(1) if non2xx else 0}")
PY
}
# One pass to warm the page cache, then the measured runs.
DURATION=3 load family_warm "$WORK/family-functions.txt" > /dev/null
load family_functions "$WORK/family-functions.txt"
load family_functions_first_3 "$WORK/family-functions-3.txt"
load family_filter "$WORK/family-filters.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peak RSS: $(awk '/VmHWM/ {print $2 / 1024 " MiB"}' "/proc/$SERVER_PID/status")"
