#!/usr/bin/env bash
# Side-by-side benchmark: reportroot against an HTTP ceiling, json-server and Prism, on loopback.
# Writes bench/RESULTS.md. Settings (environment):
#   TENANTS=10000 DAYS=365  data of the main database (seeded once, kept in $WORK)
#   DURATION=10 CONNECTIONS=32 THREADS=2  wrk settings per scenario
#   MOCKS=1      also run json-server and Prism (installed from npm into bench/)
#   SCALE=1      also measure the scale curve (100/1,000/10,000 tenants; 1/3/10 years of one tenant)
#   IMPORT=1     also measure bulk import (bench/import.sh; with SMOKE, a small file once)
#   MEMORY=1     also measure RSS under 60 s of distinct query strings (bench/memory.sh)
#   REPORTROOT_BIN, CEILING_BIN  binaries to run instead of building this checkout's
#   SMOKE=1      a few seconds on small data, no mocks, no scale curve, a small import
#                (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  TENANTS=${TENANTS:-20}; DAYS=${DAYS:-10}; DURATION=${DURATION:-2}; MOCKS=${MOCKS:-0}; SCALE=${SCALE:-0}
fi
TENANTS=${TENANTS:-10000}; DAYS=${DAYS:-365}; DURATION=${DURATION:-10}
# The reports the scenarios below read and write (seeding all 61 would make the database
# dozens of times larger than what is measured).
BENCH_REPORTS=${BENCH_REPORTS:-office365ActiveUserCounts,office365ActivationsUserCounts}
CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}; MOCKS=${MOCKS:-1}; SCALE=${SCALE:-1}
WORK=${BENCH_WORK:-$ROOT/bench/work}
OUT=${BENCH_OUT:-$ROOT/bench/RESULTS.md}
[ "$SMOKE" = 1 ] && OUT=${BENCH_OUT:-$WORK/RESULTS-smoke.md}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
PORT=18080

if ! command -v wrk >/dev/null; then
  echo "installing wrk from Debian's packages" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
# REPORTROOT_BIN (and CEILING_BIN) run binaries built elsewhere instead, e.g. main's and a
# branch's in turns, on the same data and settings.
if [ -z "${REPORTROOT_BIN:-}" ]; then
  cargo build --release --locked -q -p reportroot -p reportroot-bench-ceiling
fi
RR=${REPORTROOT_BIN:-$ROOT/target/release/reportroot}
CEILING=${CEILING_BIN:-$ROOT/target/release/reportroot-bench-ceiling}

tenant_id() { printf '5eed0000-0000-0001-0000-%012x' "$1"; }

seed_db() { # tenants days periods file
  if [ ! -f "$4" ]; then
    echo "seeding $1 tenants × $2 days ($3) into $4" >&2
    "$RR" seed --tenants "$1" --days "$2" --periods "$3" --reports "$BENCH_REPORTS" --database "sqlite://$4.tmp" >&2
    mv "$4.tmp" "$4"; rm -f "$4.tmp-wal" "$4.tmp-shm"
  fi
}

# Each server runs in a session of its own (setsid), so that its process group holds it and
# every child it starts (npm-launched servers fork node children): stopping kills that group,
# by the PID we started, and nothing else on the machine.
# Rows in every report table of a SQLite file (not the side tables: refresh dates, journal).
report_rows() {
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); ts=[r[0] for r in c.execute(\"select name from sqlite_master where type='table' and name not like 'reportroot%' and name not like '%_refreshes' and name not like 'sqlite%'\")]; print(sum(c.execute(f'select count(*) from {t}').fetchone()[0] for t in ts))" "$1"
}

SERVER_PID=
stop_group() { [ -n "$SERVER_PID" ] && kill -- "-$SERVER_PID" 2>/dev/null || true; }
trap 'stop_group' EXIT
start() { # command... ; waits for the port to answer
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
    echo "port $PORT is already taken; stop what listens there first" >&2; exit 1
  fi
  setsid "$@" > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  # Up to 10 minutes: a first start on a large database may build a new index.
  for _ in $(seq 1 6000); do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited: $*" >&2; cat "$WORK/server.log" >&2; exit 1; }
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server did not start: $*" >&2; cat "$WORK/server.log" >&2; exit 1
}
peak_rss() { awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
stop() { # prints the peak RSS (KiB) of the server tree's main process
  local rss; rss=$(peak_rss)
  stop_group; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  echo "$rss"
}
load() { # name script path [extra env]
  local name=$1 script=$2 path=$3
  WRK_PATH=$path wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "bench/lua/$script" \
    "http://127.0.0.1:$PORT" > "$WORK/$name.txt" 2>&1 || true
  grep -E "Requests/sec|Non-2xx|Socket errors" "$WORK/$name.txt" | sed "s/^/$name: /" >&2 || true
}
tokens_for() { # count file role
  : > "$2"
  for i in $(seq 0 $(( $1 - 1 ))); do
    "$RR" token --tenant "$(tenant_id $(( (i * 7919) % TENANTS )))" --role "$3" --ttl 1d >> "$2"
  done
}

DB=$WORK/bench-${TENANTS}x${DAYS}.db
seed_db "$TENANTS" "$DAYS" D7 "$DB"
ROWS=$(report_rows "$DB")
tokens_for 100 "$WORK/tokens.txt" Reports.Read.All
WRITE_TOKEN=$("$RR" token --tenant "$(tenant_id 1)" --role Reports.ReadWrite.All --ttl 1d)
export TOKENS=$WORK/tokens.txt WRITE_TOKEN

# --- reportroot (its POSTs add a few thousand rows to the seeded file; harmless for reruns)
start "$RR" serve --listen "127.0.0.1:$PORT" --database "sqlite://$DB"
SINCE=$(date -u -d "-5 days" +%F)
load rr_json get.lua "/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json"
load rr_csv get.lua "/v1.0/reports/getOffice365ActiveUserCounts(period='D7')?redirect=false"
load rr_filter get.lua "/v1.0/reports/office365ActiveUserCounts?\$filter=reportDate%20ge%20$SINCE%20and%20teams%20gt%200&\$top=10"
load rr_post post.lua "/v1.0/reports/office365ActivationsUserCounts"
PATCH_ID=$(curl -s -X POST -H "Authorization: Bearer $WRITE_TOKEN" -H "Content-Type: application/json" \
  "http://127.0.0.1:$PORT/v1.0/reports/office365ActivationsUserCounts" \
  -d '{"reportRefreshDate":"2024-01-01","productType":"PATCH TARGET '"$$-$RANDOM"'","assigned":1,"activated":1,"sharedComputerActivation":0}' |
  python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
load rr_patch patch.lua "/v1.0/reports/office365ActivationsUserCounts/$PATCH_ID"
# The JSON every other server returns: the report of the first token's tenant.
curl -s -H "Authorization: Bearer $(head -n1 "$TOKENS")" \
  "http://127.0.0.1:$PORT/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json" > "$WORK/body.json"
RSS_RR=$(stop)

# --- ceiling
start "$CEILING" "127.0.0.1:$PORT" "$WORK/body.json"
TOKENS= load ceiling_json get.lua "/report"
RSS_CEILING=$(stop)

RSS_JSONSERVER=0; RSS_PRISM=0
if [ "$MOCKS" = 1 ]; then
  if [ ! -x bench/node_modules/.bin/json-server ] || [ ! -x bench/node_modules/.bin/prism ]; then
    echo "installing json-server and Prism from npm into bench/" >&2
    (cd bench && npm install --no-audit --no-fund --loglevel=error --no-save json-server@0.17.4 @stoplight/prism-cli@5 >&2)
  fi
  python3 -c "import json,sys; print(json.dumps({'report': json.load(open(sys.argv[1]))}))" "$WORK/body.json" > "$WORK/db.json"
  start node bench/node_modules/.bin/json-server --port "$PORT" --quiet "$WORK/db.json"
  TOKENS= load jsonserver_json get.lua "/report"
  RSS_JSONSERVER=$(stop)
  python3 - "$WORK/body.json" "$WORK/openapi.json" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
spec = {"openapi": "3.0.0", "info": {"title": "report", "version": "1"},
        "paths": {"/report": {"get": {"responses": {"200": {"description": "report",
            "content": {"application/json": {"example": body}}}}}}}}
json.dump(spec, open(sys.argv[2], "w"))
PY
  start node bench/node_modules/.bin/prism mock -p "$PORT" -h 127.0.0.1 "$WORK/openapi.json"
  TOKENS= load prism_json get.lua "/report"
  RSS_PRISM=$(stop)
fi

# --- scale curve: the same report GET and $filter query as data grows
if [ "$SCALE" = 1 ]; then
  rm -f "$WORK/scale.md"
  {
    echo "## Scale curve (${CONNECTIONS} connections, 3 s each; p99 in ms)"
    echo
    echo "| database | rows | report JSON req/s | report p99 | \$filter req/s | \$filter p99 |"
    echo "|---|---:|---:|---:|---:|---:|"
  } > "$WORK/scale.md"
  for spec in "100 365 D7" "1000 365 D7" "$TENANTS $DAYS D7" "1 365 D7,D30,D90,D180" "1 1095 D7,D30,D90,D180" "1 3650 D7,D30,D90,D180"; do
    set -- $spec
    file=$WORK/bench-$1x$2-${3//,/_}.db
    [ "$1 $2 $3" = "$TENANTS $DAYS D7" ] && file=$DB
    seed_db "$1" "$2" "$3" "$file"
    rows=$(report_rows "$file")
    start "$RR" serve --listen "127.0.0.1:$PORT" --database "sqlite://$file"
    tokens_for 20 "$WORK/scale-tokens.txt" Reports.Read.All
    saved=$DURATION; DURATION=3
    TOKENS=$WORK/scale-tokens.txt load scale_json get.lua "/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json"
    TOKENS=$WORK/scale-tokens.txt load scale_filter get.lua "/v1.0/reports/office365ActiveUserCounts?\$filter=reportDate%20ge%20$SINCE%20and%20teams%20gt%200&\$top=10"
    DURATION=$saved
    stop > /dev/null
    python3 - "$WORK" "$1 tenants × $2 days ($3)" "$rows" >> "$WORK/scale.md" <<'PY'
import re, sys
work, label, rows = sys.argv[1:4]
def get(name):
    t = open(f"{work}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    m = re.search(r"\n\s+99%\s+([\d.]+)(us|ms|s)", t)
    v = float(m.group(1)); v = v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    return rps, v
a, b = get("scale_json"), get("scale_filter")
print(f"| {label} | {rows} | {a[0]:.0f} | {a[1]:.2f} | {b[0]:.0f} | {b[1]:.2f} |")
PY
  done
fi

if [ "${MEMORY:-1}" = 1 ]; then
  if [ "$SMOKE" = 1 ]; then
    BENCH_WORK=$WORK DURATION=3 MEMORY_TENANTS=20 MEMORY_DAYS=10 bench/memory.sh > /dev/null
  else
    BENCH_WORK=$WORK bench/memory.sh > /dev/null
  fi
fi

if [ "${IMPORT:-1}" = 1 ]; then
  if [ "$SMOKE" = 1 ]; then
    BENCH_WORK=$WORK DAYS=30 RUNS=1 bench/import.sh > /dev/null
  else
    BENCH_WORK=$WORK bench/import.sh > /dev/null
  fi
fi

python3 - "$WORK/meta.json" <<PY
import json, subprocess, platform, os
meta = {
  "date": subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip(),
  "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
  "machine": f"{os.cpu_count()} cores, " + open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip() + f", {platform.system()} {platform.release()}",
  "tenants": $TENANTS, "days": $DAYS, "rows": $ROWS, "db_mib": round(os.path.getsize("$DB") / 2**20),
  "connections": $CONNECTIONS, "threads": $THREADS, "duration": $DURATION,
  "scale_from_earlier_run": "$SCALE" != "1",
  "rss_kib": {"reportroot": $RSS_RR, "ceiling": $RSS_CEILING, "json-server": $RSS_JSONSERVER, "prism": $RSS_PRISM},
}
json.dump(meta, open("$WORK/meta.json", "w"))
PY
python3 bench/report.py "$WORK" "$OUT"
