#!/usr/bin/env python3
"""Turns the wrk outputs of bench/run.sh into bench/RESULTS.md (and prints it)."""
import json, os, re, sys

work, out = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(work, "meta.json")))

def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

def parse(name):
    path = os.path.join(work, name + ".txt")
    if not os.path.exists(path):
        return None
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"\n\s+50%\s+(\S+)", text)
    p99 = re.search(r"\n\s+99%\s+(\S+)", text)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms(p50.group(1)) if p50 else None,
        "p99": ms(p99.group(1)) if p99 else None,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket": socket.group(1) if socket else "",
    }

rss = meta.get("rss_kib", {})
rows = [
    ("reportroot: JSON report function (token of a random tenant each request)", "rr_json", "reportroot"),
    ("reportroot: CSV download (?redirect=false)", "rr_csv", "reportroot"),
    ("reportroot: entity-set GET, selective $filter + $top", "rr_filter", "reportroot"),
    ("reportroot: single-row POST", "rr_post", "reportroot"),
    ("reportroot: PATCH with If-Match", "rr_patch", "reportroot"),
    ("ceiling: same JSON bytes from memory", "ceiling_json", "ceiling"),
    ("json-server: same JSON", "jsonserver_json", "json-server"),
    ("Prism mock: same JSON", "prism_json", "prism"),
]
lines = [
    "# Benchmark results",
    "",
    f"- date: {meta['date']}; commit: {meta['commit']}",
    f"- machine: {meta['machine']}",
    f"- data: {meta['tenants']} tenants × {meta['days']} days (seeded with `reportroot seed --periods D7`), {meta['rows']} rows, SQLite file {meta['db_mib']} MiB",
    f"- load: wrk, {meta['connections']} connections, {meta['threads']} threads, {meta['duration']} s per scenario, all on loopback; server and load generator share the 2 cores",
    "",
    "| scenario | requests/s | p50 ms | p99 ms | non-2xx | peak RSS MiB |",
    "|---|---:|---:|---:|---:|---:|",
]
results = {}
for title, key, server in rows:
    r = parse(key)
    results[key] = r
    if r is None:
        lines.append(f"| {title} | not run | | | | |")
        continue
    peak = rss.get(server)
    lines.append(
        f"| {title} | {r['rps']:.0f} | {r['p50'] or 0:.2f} | {r['p99'] or 0:.2f} | {r['non2xx']} | {peak / 1024:.1f} |"
        if peak else f"| {title} | {r['rps']:.0f} | {r['p50'] or 0:.2f} | {r['p99'] or 0:.2f} | {r['non2xx']} | |"
    )

def ratio(a, b):
    ra, rb = results.get(a), results.get(b)
    if not ra or not rb or not rb["rps"]:
        return "n/a"
    return f"{ra['rps'] / rb['rps']:.2f}"

lines += [
    "",
    "## Ratios (same run)",
    "",
    f"- JSON report function: reportroot / ceiling = {ratio('rr_json', 'ceiling_json')} (goal ≥ 0.5)",
    f"- reportroot / json-server = {ratio('rr_json', 'jsonserver_json')} (goal ≥ 20)",
    f"- reportroot / Prism = {ratio('rr_json', 'prism_json')} (goal ≥ 20)",
]
scale = os.path.join(work, "scale.md")
if os.path.exists(scale):
    text = open(scale).read().strip()
    if meta.get("scale_from_earlier_run"):
        text += "\n\n(The scale curve is from the previous run with SCALE=1; this run used SCALE=0.)"
    lines += ["", text]
memory = os.path.join(work, "memory.md")
if os.path.exists(memory):
    lines += ["", open(memory).read().strip()]
imported = os.path.join(work, "import.md")
if os.path.exists(imported):
    lines += ["", open(imported).read().strip()]
notes = os.path.join(os.path.dirname(out), "NOTES.md")
if os.path.exists(notes):
    lines += ["", open(notes).read().strip()]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
