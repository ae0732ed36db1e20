#!/usr/bin/env bash
# Import throughput: a large Graph CSV export (BOM, CRLF, as Graph writes it) imported into a
# new SQLite file RUNS times, then once more into the filled file (nothing changes). Wall time
# of the whole `reportroot import` process, checkpoint included. Prints a table and writes
# $WORK/import.md (bench/report.py puts it in RESULTS.md). Settings (environment):
#   DAYS=3650  refresh dates in the generated file: 1,120,550 office365ActiveUserCounts rows
#   RUNS=5     fresh imports; the median is the figure
#   RR=path    the reportroot binary to measure (another build, say) [default: built here]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DAYS=${DAYS:-3650}; RUNS=${RUNS:-5}
WORK=${BENCH_WORK:-$ROOT/bench/work}
mkdir -p "$WORK"
if [ -z "${RR:-}" ]; then
  cargo build --release --locked -q -p reportroot
  RR=$ROOT/target/release/reportroot
fi
TENANT=5eed0000-0000-0001-0000-000000000000
CSV=$WORK/import-active-$DAYS.csv
if [ ! -f "$CSV" ]; then
  echo "generating $CSV from seeded data" >&2
  SOURCE=$WORK/import-source.db
  rm -f "$SOURCE" "$SOURCE-wal" "$SOURCE-shm"
  "$RR" seed --tenants 1 --days "$DAYS" --reports office365ActiveUserCounts --database "sqlite://$SOURCE" >&2
  "$RR" export --tenant "$TENANT" --report office365ActiveUserCounts --database "sqlite://$SOURCE" -o "$CSV.tmp"
  mv "$CSV.tmp" "$CSV"
  rm -f "$SOURCE" "$SOURCE-wal" "$SOURCE-shm"
fi
# Start with no dirty pages of earlier work (a seeded database, say) for the kernel to flush
# while we measure.
sync
python3 - "$RR" "$CSV" "$WORK" "$RUNS" "$TENANT" <<'PY'
import os, statistics, subprocess, sys, time

rr, csv, work, runs, tenant = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
db = os.path.join(work, "import-target.db")
rows = sum(1 for _ in open(csv, "rb")) - 1

def clear():
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)

def run():
    start = time.monotonic()
    child = subprocess.Popen([rr, "import", "--tenant", tenant, "--database", "sqlite://" + db, csv],
                             stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - start
    if status != 0:
        sys.exit(f"import failed: {out}")
    return seconds, usage.ru_maxrss / 1024, out.strip().splitlines()[-1]

results = []
for i in range(runs):
    clear()
    seconds, rss, summary = run()
    results.append(("new file", seconds, rss))
    print(f"fresh {i + 1}/{runs}: {seconds:.2f} s, {rows / seconds:,.0f} rows/s, peak RSS {rss:.0f} MiB", file=sys.stderr)
seconds, rss, summary = run()
assert "0 inserted, 0 updated" in summary, summary
results.append(("same file again (nothing changes)", seconds, rss))
print(f"re-import: {seconds:.2f} s, {rows / seconds:,.0f} rows/s", file=sys.stderr)
clear()

fresh = [rows / s for what, s, _ in results if what == "new file"]
lines = [
    "## Bulk import (SQLite)",
    "",
    f"`bench/import.sh`: one office365ActiveUserCounts CSV as Graph writes it, {rows:,} rows "
    f"({os.path.getsize(csv) / 2**20:.1f} MiB), imported with `reportroot import` into a new file, "
    f"{runs} run(s), then once more into the filled file. Wall time of the whole process.",
    "",
    "| run | into | seconds | rows/s | peak RSS MiB |",
    "|---:|---|---:|---:|---:|",
]
for n, (what, s, rss) in enumerate(results, 1):
    lines.append(f"| {n} | {what} | {s:.2f} | {rows / s:,.0f} | {rss:.0f} |")
lines += ["", f"**Median of the fresh imports: {statistics.median(fresh):,.0f} rows/s** "
          f"(min {min(fresh):,.0f}, max {max(fresh):,.0f}; goal ≥ 200,000)."]
text = "\n".join(lines) + "\n"
open(os.path.join(work, "import.md"), "w").write(text)
print(text)
PY
