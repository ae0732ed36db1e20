#!/usr/bin/env bash
# Scale-out under load (issue 18): reportroot on Citus while a third worker is added and the
# shards are rebalanced, then the same load on plain PostgreSQL for comparison.
#
#   1. A database of its own ($BENCH_DB) in the Citus cluster of scripts/citus.sh (coordinator
#      and two workers; the shared cluster is reused, never stopped), with its own node
#      metadata: Citus keeps pg_dist_node per database, so adding a worker here moves no shard
#      of any other database. A third worker is a PostgreSQL cluster this script starts (data
#      in $W3_DIR, port $W3_PORT) and stops again by its data directory.
#   2. `reportroot migrate --shard-count $SHARDS`, then `seed` of $TENANTS tenants × $DAYS days
#      of the reports the load uses ($SEED_REPORTS).
#   3. Two `reportroot serve` instances on the coordinator; one wrk per instance runs
#      bench/lua/readwrite.lua (report-function JSON, entity-set $filter, report-function CSV,
#      and one request in $WRITE_EVERY a POST of a new row), every acknowledged POST logged.
#   4. Phases of $PHASE seconds: "before"; "during": the worker is added and
#      citus_rebalance_start() runs while the load runs (more phases until the rebalance is
#      done); "after". req/s, p50, p99, non-2xx and socket errors per phase and instance.
#   5. Every acknowledged POST is looked up row by row (tenant, id, productType, assigned) in
#      the coordinator: lost writes are counted (goal: 0).
#   6. The same seed and load on plain PostgreSQL (scripts/postgres.sh's cluster, a database of
#      its own), two instances, one phase.
#   The bench databases are dropped at the end (KEEP=1 keeps them).
#
# Settings (environment): TENANTS=1000 DAYS=90 SHARDS=32 PHASE=20 CONNECTIONS=16 (per instance)
#   WRITE_EVERY=4 W3_PORT=54361 BENCH_DB=reportroot_bench_citus
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TENANTS=${TENANTS:-1000}; DAYS=${DAYS:-90}; SHARDS=${SHARDS:-32}; PHASE=${PHASE:-20}
CONNECTIONS=${CONNECTIONS:-16}; WRITE_EVERY=${WRITE_EVERY:-4}
W3_PORT=${W3_PORT:-54361}; BENCH_DB=${BENCH_DB:-reportroot_bench_citus}
SEED_REPORTS=${SEED_REPORTS:-office365ActiveUserCounts,office365ActivationsUserCounts}
WORK=${BENCH_WORK:-$ROOT/bench/work}/citus
W3_DIR=${W3_DIR:-/tmp/reportroot-bench-citus-w3}
PORT_A=${PORT_A:-18091}; PORT_B=${PORT_B:-18092}
export REPORTROOT_JWT_SECRET=bench-secret-bench-secret-bench-secret
rm -rf "$WORK"; mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
[ -n "${RR:-}" ] || { cargo build --release --locked -q -p reportroot; RR=$ROOT/target/release/reportroot; }

eval "$(scripts/citus.sh)"
eval "$(scripts/postgres.sh)"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
RUN_AS=(); [ "$(id -u)" = 0 ] && RUN_AS=(runuser -u postgres --)
COORD_PORT=$(sed -E 's|.*:([0-9]+)/.*|\1|' <<< "$REPORTROOT_TEST_CITUS_URL")
WORKER_PORTS=$(psql -X -qtA "$REPORTROOT_TEST_CITUS_URL" -c "SELECT nodeport FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeport")
CITUS_URL=postgres://reportroot@127.0.0.1:$COORD_PORT/$BENCH_DB
PG_URL=${REPORTROOT_TEST_POSTGRES_URL%/*}/${BENCH_DB}_pg
on() { psql -X -q -v ON_ERROR_STOP=1 -tA "postgres://reportroot@127.0.0.1:$1/$2" -c "$3"; }

SERVERS=()
stop_all() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVERS=()
}
cleanup() {
  stop_all
  if [ "${KEEP:-0}" != 1 ]; then
    on "$COORD_PORT" postgres "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" 2>/dev/null || true
    for port in $WORKER_PORTS; do
      on "$port" postgres "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" 2>/dev/null || true
    done
    psql -X -q "${REPORTROOT_TEST_POSTGRES_URL%/*}/postgres" -c "DROP DATABASE IF EXISTS ${BENCH_DB}_pg WITH (FORCE)" 2>/dev/null || true
  fi
  # Only the worker this script started, by its data directory.
  if [ -d "$W3_DIR" ] && "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$W3_DIR" status >/dev/null 2>&1; then
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$W3_DIR" -m fast -w stop >/dev/null
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$W3_DIR"
}
trap cleanup EXIT

# The third worker: a PostgreSQL cluster of our own, set up like scripts/citus.sh's nodes.
if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$W3_DIR" status >/dev/null 2>&1; then
  rm -rf "$W3_DIR"; mkdir -p "$W3_DIR"; [ "$(id -u)" = 0 ] && chown postgres "$W3_DIR"
  "${RUN_AS[@]}" "$BIN/initdb" -D "$W3_DIR" -U reportroot --auth=trust -E UTF8 >/dev/null
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$W3_DIR" -l "$W3_DIR/log" -w -o "-p $W3_PORT -k $W3_DIR \
    -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_preload_libraries=citus \
    -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 \
    -c shared_buffers=64MB -c fsync=off" start >/dev/null
fi

# The bench database on every node (Citus does not propagate CREATE DATABASE), workers
# registered in it only.
for port in "$COORD_PORT" $WORKER_PORTS "$W3_PORT"; do
  on "$port" postgres "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"
  on "$port" postgres "CREATE DATABASE $BENCH_DB"
  PGOPTIONS="-c client_min_messages=warning" on "$port" "$BENCH_DB" "CREATE EXTENSION citus"
done
on "$COORD_PORT" "$BENCH_DB" "SELECT citus_set_coordinator_host('127.0.0.1', $COORD_PORT)" >/dev/null
for port in $WORKER_PORTS; do
  on "$COORD_PORT" "$BENCH_DB" "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
done
psql -X -q "${REPORTROOT_TEST_POSTGRES_URL%/*}/postgres" -c "DROP DATABASE IF EXISTS ${BENCH_DB}_pg WITH (FORCE)" -c "CREATE DATABASE ${BENCH_DB}_pg"
# The Citus nodes run with fsync=off (throw-away clusters); the shared PostgreSQL with fsync=on.
# Commits that do not wait for the WAL flush make the comparison about the engines.
psql -X -q "${REPORTROOT_TEST_POSTGRES_URL%/*}/postgres" -c "ALTER DATABASE ${BENCH_DB}_pg SET synchronous_commit = off"

seed() { # url
  local start=$(date +%s)
  "$RR" migrate --database "$1" --shard-count "$SHARDS" >&2
  "$RR" seed --tenants "$TENANTS" --days "$DAYS" --periods D7 --reports "$SEED_REPORTS" --database "$1" >&2
  echo "seeded $1 in $(( $(date +%s) - start )) s" | tee -a "$WORK/log.txt" >&2
}

# Tokens of 200 tenants spread over the seeded ones: "<index> <token>".
: > "$WORK/tokens.txt"
for i in $(seq 0 199); do
  n=$(( (i * 7919) % TENANTS ))
  echo "$n $("$RR" token --tenant "$(printf '5eed0000-0000-0001-0000-%012x' "$n")" --role Reports.ReadWrite.All --ttl 1d)" >> "$WORK/tokens.txt"
done

start_servers() { # url
  local port
  for port in "$PORT_A" "$PORT_B"; do
    "$RR" serve --listen "127.0.0.1:$port" --database "$1" > "$WORK/server-$port.log" 2>&1 &
    SERVERS+=($!)
  done
  for port in "$PORT_A" "$PORT_B"; do
    for _ in $(seq 1 600); do
      curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
      sleep 0.1
    done
  done
}

# One phase: a wrk per instance for $PHASE seconds; "<phase> <port> <req/s> <p50> <p99> <non-2xx> <errors>" lines.
phase() { # name
  local pids=() port
  echo "phase $1: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for port in "$PORT_A" "$PORT_B"; do
    TOKENS=$WORK/tokens.txt ACKS=$WORK/acks-$1-$port WRITE_EVERY=$WRITE_EVERY \
      SINCE=$(date -u -d "-5 days" +%F) \
      wrk -t 1 -c "$CONNECTIONS" -d "${PHASE}s" --timeout 10s --latency -s bench/lua/readwrite.lua \
      "http://127.0.0.1:$port" > "$WORK/wrk-$1-$port.txt" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  for port in "$PORT_A" "$PORT_B"; do
    python3 - "$WORK/wrk-$1-$port.txt" "$1" "$port" "$(cut -d' ' -f1 /proc/loadavg)" >> "$WORK/phases.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(p):
    m = re.search(rf"\n\s+{p}%\s+([\d.]+)(us|ms|s)", t)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
err = sum(int(x) for x in errors.groups()) if errors else 0
print(sys.argv[2], sys.argv[3], f"{rps:.0f}", f"{ms(50):.2f}", f"{ms(99):.2f}", non2xx.group(1) if non2xx else 0, err, sys.argv[4])
PY
  done
  tail -n 2 "$WORK/phases.txt" >&2
}

# --- Citus ---
seed "$CITUS_URL"
on "$COORD_PORT" "$BENCH_DB" "SELECT nodeport, count(*) FROM pg_dist_shard_placement GROUP BY 1 ORDER BY 1" > "$WORK/placement-before.txt"
start_servers "$CITUS_URL"
phase citus-warm > /dev/null 2>&1 || true
sed -i '/^citus-warm /d' "$WORK/phases.txt"
phase before
# The rebalance starts 2 s into the "during" phase, and phases go on until it is done.
(
  sleep 2
  start=$(date +%s.%N)
  on "$COORD_PORT" "$BENCH_DB" "SELECT citus_add_node('127.0.0.1', $W3_PORT)" >/dev/null
  on "$COORD_PORT" "$BENCH_DB" "SELECT citus_rebalance_start()" > "$WORK/rebalance-job.txt"
  while on "$COORD_PORT" "$BENCH_DB" "SELECT state FROM citus_rebalance_status()" | grep -qE 'running|scheduled'; do
    sleep 1
  done
  on "$COORD_PORT" "$BENCH_DB" "SELECT state, details FROM citus_rebalance_status()" > "$WORK/rebalance-status.txt"
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' > "$WORK/rebalance-seconds.txt"
) &
REBALANCER=$!
n=1
while :; do
  phase "during$n"
  kill -0 "$REBALANCER" 2>/dev/null || break
  n=$((n + 1))
  [ "$n" -le 30 ] || { echo "the rebalance did not finish in 30 phases" >&2; break; }
done
wait "$REBALANCER" || true
phase after
stop_all
on "$COORD_PORT" "$BENCH_DB" "SELECT nodeport, count(*) FROM pg_dist_shard_placement GROUP BY 1 ORDER BY 1" > "$WORK/placement-after.txt"

# Lost writes: every acknowledged POST, row by row, against what the database holds.
check_writes() { # name url acks-glob
  psql -X -q "$2" -c "COPY (SELECT tenant_id, id, product_type, assigned FROM office365_activations_user_counts WHERE product_type LIKE 'BENCH %') TO STDOUT" > "$WORK/stored-$1.tsv"
  python3 - "$WORK/stored-$1.tsv" "$1" $3 > "$WORK/lost-$1.txt" <<'PY'
import sys
stored_file, name, *acks = sys.argv[1:]
stored = {}
for line in open(stored_file):
    tenant, id_, product, assigned = line.rstrip("\n").split("\t")
    stored[id_] = (tenant, product, int(assigned))
acked = lost = wrong = failed = 0
for path in acks:
    for line in open(path):
        status, tenant, id_, product = line.split()
        if status != "201":
            failed += 1
            continue
        acked += 1
        product = product.replace("_", " ")
        want = ("5eed0000-0000-0001-0000-%012x" % int(tenant), product, int(product.rsplit("-", 1)[1]))
        row = stored.get(id_)
        if row is None:
            lost += 1
        elif row != want:
            wrong += 1
print(f"{name}: {acked} acknowledged POSTs checked row by row: {lost} lost, {wrong} different; "
      f"{failed} answers other than 201 logged; {len(stored)} bench rows stored")
PY
  cat "$WORK/lost-$1.txt" >&2
}
check_writes citus "$CITUS_URL" "$(ls "$WORK"/acks-* | grep -v '/acks-pg' | tr '\n' ' ')"


# --- plain PostgreSQL ---
seed "$PG_URL"
start_servers "$PG_URL"
phase pg-warm > /dev/null 2>&1 || true
sed -i '/^pg-warm /d' "$WORK/phases.txt"
phase pg
stop_all
check_writes pg "$PG_URL" "$(ls "$WORK"/acks-pg* | tr '\n' ' ')"

{
  echo "| phase | instance | req/s | p50 ms | p99 ms | non-2xx | socket errors | load avg |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  awk '{printf "| %s | :%s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$WORK/phases.txt"
} > "$WORK/table.md"
cat "$WORK/table.md"
echo "rebalance: $(cat "$WORK/rebalance-seconds.txt" 2>/dev/null) s; $(cat "$WORK/rebalance-status.txt" 2>/dev/null | cut -c1-300)"
echo "shard placements before: $(tr '\n' ' ' < "$WORK/placement-before.txt"); after: $(tr '\n' ' ' < "$WORK/placement-after.txt")"
cat "$WORK/lost-citus.txt" "$WORK/lost-pg.txt"
