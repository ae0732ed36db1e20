#!/usr/bin/env bash
# API writes during a large import (SQLite): a `reportroot serve` on a new file answers
# single-row POSTs, one after another from one client, while `reportroot import` loads the
# 1.1M-row CSV of bench/import.sh into the same file from another process. Prints the
# import's rows/s and the POSTs' count, failures (anything but 201) and latency (p50, p99,
# max) during the import, and the same POSTs without an import for reference.
# Settings (environment):
#   RR=path     the reportroot binary to measure [default: target/release/reportroot, built]
#   DAYS=3650   refresh dates of the CSV (bench/import.sh generates and keeps it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DAYS=${DAYS:-3650}
WORK=${BENCH_WORK:-$ROOT/bench/work}
mkdir -p "$WORK"
if [ -z "${RR:-}" ]; then
  cargo build --release --locked -q -p reportroot
  RR=$ROOT/target/release/reportroot
fi
CSV=$WORK/import-active-$DAYS.csv
TENANT=5eed0000-0000-0001-0000-000000000000
if [ ! -f "$CSV" ]; then
  echo "generating $CSV from seeded data" >&2
  SOURCE=$WORK/import-source.db
  rm -f "$SOURCE" "$SOURCE-wal" "$SOURCE-shm"
  "$RR" seed --tenants 1 --days "$DAYS" --reports office365ActiveUserCounts --database "sqlite://$SOURCE" >&2
  "$RR" export --tenant "$TENANT" --report office365ActiveUserCounts --database "sqlite://$SOURCE" -o "$CSV.tmp"
  mv "$CSV.tmp" "$CSV"
  rm -f "$SOURCE" "$SOURCE-wal" "$SOURCE-shm"
fi
python3 - "$RR" "$CSV" "$WORK" "$TENANT" <<'PY'
import http.client, json, os, socket, statistics, subprocess, sys, time, uuid

rr, csv, work, tenant = sys.argv[1:5]
db = os.path.join(work, "contention.db")
key = os.path.join(work, "contention.key")
rows = sum(1 for _ in open(csv, "rb")) - 1
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(db + suffix):
        os.remove(db + suffix)

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
writer_tenant = str(uuid.uuid4())
token = subprocess.check_output([rr, "token", "--tenant", writer_tenant, "--role", "Reports.ReadWrite.All",
                                 "--ttl", "1h", "--key-file", key], text=True).strip()
server = subprocess.Popen([rr, "serve", "--listen", f"127.0.0.1:{port}", "--database", "sqlite://" + db,
                           "--key-file", key], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.05)
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n = 0

    def post():
        global n
        n += 1
        body = json.dumps({"reportRefreshDate": "2025-01-31", "productType": f"BENCH {n}",
                           "assigned": n, "activated": 1, "sharedComputerActivation": 0})
        start = time.monotonic()
        client.request("POST", "/v1.0/reports/office365ActivationsUserCounts", body,
                       {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        response = client.getresponse()
        response.read()
        return time.monotonic() - start, response.status

    def summary(samples):
        ms = sorted(s * 1000 for s, _ in samples)
        failed = sum(1 for _, status in samples if status != 201)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return (f"{len(ms)} POSTs, {failed} failed; latency p50 {statistics.median(ms):.1f} ms, "
                f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")

    idle = []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        idle.append(post())
    start = time.monotonic()
    importer = subprocess.Popen([rr, "import", "--tenant", tenant, "--database", "sqlite://" + db, csv],
                                stdout=subprocess.PIPE, text=True)
    during = []
    while importer.poll() is None:
        during.append(post())
    seconds = time.monotonic() - start
    out = importer.stdout.read()
    if importer.returncode != 0:
        sys.exit(f"import failed: {out}")
    print(f"binary: {rr}")
    print(f"import: {rows:,} rows in {seconds:.2f} s, {rows / seconds:,.0f} rows/s (wall time, server writing beside it)")
    print(f"POSTs during the import: {summary(during)}")
    print(f"POSTs without an import:  {summary(idle)}")
finally:
    server.terminate()
    server.wait()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
PY
