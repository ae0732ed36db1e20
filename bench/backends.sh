#!/usr/bin/env bash
# A short load run of the same server on SQLite and on PostgreSQL, side by side: GET of the JSON
# report function (random tenant per request) and single-row POST. PostgreSQL comes from
# scripts/postgres.sh (installed and started when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${BENCH_WORK:-$PWD/bench/work}; mkdir -p "$WORK"
TENANTS=${TENANTS:-200}; DAYS=${DAYS:-90}; DURATION=${DURATION:-10}; CONNECTIONS=${CONNECTIONS:-32}
# The reports the scenarios below read and write (seeding all 61 would make the database
# dozens of times larger than what is measured).
BENCH_REPORTS=${BENCH_REPORTS:-office365ActiveUserCounts,office365ActivationsUserCounts}
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release --locked -q -p reportroot
RR=$PWD/target/release/reportroot
eval "$(scripts/postgres.sh)"
PG_BENCH=${REPORTROOT_TEST_POSTGRES_URL%/*}/reportroot_bench
psql "${REPORTROOT_TEST_POSTGRES_URL}" -qc "DROP DATABASE IF EXISTS reportroot_bench" -c "CREATE DATABASE reportroot_bench" >/dev/null
rm -f "$WORK/backends.db"*
: > "$WORK/backend-tokens.txt"
for i in $(seq 0 49); do
  "$RR" token --tenant "$(printf '5eed0000-0000-0001-0000-%012x' $(( i % TENANTS )))" --role Reports.Read.All --ttl 1h >> "$WORK/backend-tokens.txt"
done
export TOKENS=$WORK/backend-tokens.txt
export WRITE_TOKEN=$("$RR" token --tenant 5eed0000-0000-0001-0000-000000000001 --role Reports.ReadWrite.All --ttl 1h)
printf '| backend | report JSON req/s | p99 ms | POST req/s | p99 ms |\n|---|---:|---:|---:|---:|\n' > "$WORK/backends.md"
for db in "sqlite://$WORK/backends.db" "$PG_BENCH"; do
  "$RR" seed --tenants "$TENANTS" --days "$DAYS" --periods D7 --reports "$BENCH_REPORTS" --database "$db" >&2
  "$RR" serve --listen 127.0.0.1:18086 --database "$db" > "$WORK/backends-server.log" 2>&1 &
  pid=$!
  until curl -s -o /dev/null http://127.0.0.1:18086/healthz; do sleep 0.2; done
  WRK_PATH="/beta/reports/getOffice365ActiveUserCounts(period='D7')?\$format=application/json" \
    wrk -t 2 -c "$CONNECTIONS" -d "${DURATION}s" --latency -s bench/lua/get.lua http://127.0.0.1:18086 > "$WORK/backends-get.txt"
  WRK_PATH=/v1.0/reports/office365ActivationsUserCounts \
    wrk -t 2 -c "$CONNECTIONS" -d "${DURATION}s" --latency -s bench/lua/post.lua http://127.0.0.1:18086 > "$WORK/backends-post.txt"
  kill $pid; wait $pid 2>/dev/null || true
  python3 - "$db" "$WORK" >> "$WORK/backends.md" <<'PY'
import re, sys
db, work = sys.argv[1:3]
def get(name):
    t = open(f"{work}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    m = re.search(r"\n\s+99%\s+([\d.]+)(us|ms|s)", t)
    v = float(m.group(1)); v = v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return rps, v, int(bad.group(1)) if bad else 0
g, p = get("backends-get"), get("backends-post")
name = "SQLite" if db.startswith("sqlite") else "PostgreSQL"
print(f"| {name} | {g[0]:.0f} | {g[1]:.2f} | {p[0]:.0f}{' (' + str(p[2]) + ' non-2xx)' if p[2] else ''} | {p[1]:.2f} |")
PY
done
cat "$WORK/backends.md"
