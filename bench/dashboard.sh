#!/usr/bin/env bash
# The dashboard's benchmark (issue 17), in Debian's Chromium via playwright-core
# (scripts/browser/bench.mjs): render time of the tenant overview and of a report page over
# 3 years of daily rows (Performance API: ms from navigation start until the page is drawn),
# the first view's transfer, and the report function's throughput (wrk, 16 connections)
# alone and while 5 dashboards refresh their data every second (a real dashboard's series calls,
# recorded in Chromium, replayed at a fixed rate), over ROUNDS alternating rounds. With 2 or
# more cores the server runs on core 0 and wrk on core 1, so that neither starves the other
# (Chromium and the replay, idle or light while wrk runs, are not pinned). Prints JSON; the
# numbers go into bench/RESULTS.md by hand. The machine is shared: run it on a quiet one.
#   TENANTS=2 DAYS=1095 RUNS=5 WRK_SECONDS=10 ROUNDS=3 [RR=path/to/reportroot] bench/dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TENANTS=${TENANTS:-2}; DAYS=${DAYS:-1095}
command -v chromium >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
# RR=path/to/reportroot uses that binary instead of building one.
[ -n "${RR:-}" ] || cargo build --release --locked -q -p reportroot
(cd scripts/browser && npm ci --no-audit --no-fund --silent)
rr=$(realpath "${RR:-$root/target/release/reportroot}")
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
db="sqlite://$work/bench.db"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
# Every report (the overview reads each family's), D7 only: 3 years of daily rows each.
"$rr" seed --tenants "$TENANTS" --days "$DAYS" --periods D7 --database "$db" >&2
password="bench-$RANDOM-$RANDOM-$RANDOM"
printf '%s\n' "$password" | "$rr" user add --name bench --all-tenants --password-stdin --database "$db" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pin_server=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_server=(taskset -c 0)
  export WRK_CPU=1
fi
"${pin_server[@]}" "$rr" serve --listen "127.0.0.1:$port" --database "$db" --key-file "$work/reportroot.key" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
tenant=$(printf '5eed0000-0000-0001-0000-%012x' 0)
token=$("$rr" token --tenant "$tenant" --role Reports.Read.All --ttl 1h --key-file "$work/reportroot.key")
SERVER_PID=$pid DASHBOARD_URL="http://127.0.0.1:$port" OPERATOR_NAME=bench OPERATOR_PASSWORD=$password TENANT=$tenant TOKEN=$token \
  node scripts/browser/bench.mjs
