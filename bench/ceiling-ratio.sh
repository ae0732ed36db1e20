#!/usr/bin/env bash
# An uncached page against the ceiling server (issue 16's goal: ≥ 0.3 × its req/s), in
# interleaved slices: reportroot, the ceiling (bench/ceiling: the same bytes from a bare tokio
# loop) and, if given, a second reportroot binary take turns, SLICE seconds each, SLICES times,
# so that the host's drift (this 2-core VM's req/s moved ±15 % between identical 5 s runs, and
# by a third over minutes) falls on all of them alike. Prints each one's req/s over its slices,
# its server CPU a request (utime + stime from /proc, every thread), and the ratio to the
# ceiling. The database is bench/history.sh's (1 tenant × 10 years, SQLite).
# Settings: QUERY (default `?$filter=reportDate ge 2020-01-01&$top=10`), SLICES=10 SLICE=1,
# CONNECTIONS=32 THREADS=2; REPORTROOT_BIN (else a release build); COMPARE_BIN (another
# reportroot binary, e.g. the commit before a change; it opens a copy of the database, as a
# binary of another schema version would migrate it); BENCH_WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-$ROOT/bench/work}
SLICES=${SLICES:-10}; SLICE=${SLICE:-1}; CONNECTIONS=${CONNECTIONS:-32}; THREADS=${THREADS:-2}
QUERY=${QUERY:-'?$filter=reportDate%20ge%202020-01-01&$top=10'}
mkdir -p "$WORK"
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
# shellcheck source=bench/lib/wrk_and_binary.sh
. bench/lib/wrk_and_binary.sh
cargo build --release --locked -q -p reportroot-bench-ceiling
CEILING=$ROOT/target/release/reportroot-bench-ceiling
SEED=(seed --tenants 1 --days 3650 --periods D7,D30,D90,D180 --reports office365ActiveUserCounts)
# shellcheck source=bench/lib/seeded.sh
. bench/lib/seeded.sh
seeded_database reportroot_bench_history "$WORK/bench-1x3650-D7_D30_D90_D180.db" "${SEED[@]}"
TOKEN=$("$RR" token --tenant 5eed0000-0000-0001-0000-000000000000 --role Reports.Read.All --ttl 1h)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || true; done' EXIT
# serve NAME PORT COMMAND…: starts a server in its own process group; its PID in PID_NAME.
serve() {
  local name=$1 port=$2
  shift 2
  setsid "$@" > "$WORK/ceiling-ratio-$name.log" 2>&1 &
  PIDS+=("$!")
  printf -v "PID_$name" '%s' "$!"
  until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.2; done
}
TARGETS=(reportroot ceiling)
serve reportroot 18086 "$RR" serve --listen 127.0.0.1:18086 --database "$DATABASE"
URL_reportroot="http://127.0.0.1:18086/v1.0/reports/office365ActiveUserCounts$QUERY"
BODY=$WORK/ceiling-ratio-body.json
curl -sf -H "Authorization: Bearer $TOKEN" "$URL_reportroot" > "$BODY"
serve ceiling 18087 "$CEILING" 127.0.0.1:18087 "$BODY"
URL_ceiling="http://127.0.0.1:18087/"
if [ -n "${COMPARE_BIN:-}" ]; then
  COPY=$WORK/ceiling-ratio-compare.db
  cp "${DATABASE#sqlite://}" "$COPY"
  serve compare 18088 "$COMPARE_BIN" serve --listen 127.0.0.1:18088 --database "sqlite://$COPY"
  URL_compare="http://127.0.0.1:18088/v1.0/reports/office365ActiveUserCounts$QUERY"
  TARGETS+=(compare)
fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { wrk -t "$THREADS" -c "$CONNECTIONS" -d "$2" -H "Authorization: Bearer $TOKEN" "$1"; }
for t in "${TARGETS[@]}"; do
  url=URL_$t
  load "${!url}" 2s > /dev/null
  printf -v "REQS_$t" 0; printf -v "TICKS_$t" 0
done
for _ in $(seq "$SLICES"); do
  for t in "${TARGETS[@]}"; do
    url=URL_$t; pid=PID_$t; reqs=REQS_$t; tk=TICKS_$t
    before=$(ticks "${!pid}")
    n=$(load "${!url}" "${SLICE}s" | awk '/requests in/ {print $1}')
    after=$(ticks "${!pid}")
    printf -v "$reqs" '%s' $(( ${!reqs} + n ))
    printf -v "$tk" '%s' $(( ${!tk} + after - before ))
  done
done
HZ=$(getconf CLK_TCK)
echo "query: $QUERY; $SLICES slices of ${SLICE} s each, $CONNECTIONS connections; uptime: $(uptime)"
echo
echo "| server | req/s | server CPU a request | / ceiling |"
echo "|---|---:|---:|---:|"
CEILING_RPS=$(python3 -c "print($REQS_ceiling / ($SLICES * $SLICE))")
for t in "${TARGETS[@]}"; do
  reqs=REQS_$t; tk=TICKS_$t
  python3 -c "
reqs, ticks, hz, seconds, ceiling = $((${!reqs})), $((${!tk})), $HZ, $SLICES * $SLICE, $CEILING_RPS
rps = reqs / seconds
print(f'| $t | {rps:,.0f} | {ticks / hz / reqs * 1e6:.1f} µs | {rps / ceiling:.3f} |')"
done
