#!/usr/bin/env bash
# Microsoft's own Graph clients against a real reportroot: installs them from npm (pinned in
# package.json) into scripts/clients/node_modules, starts `reportroot demo` on a free loopback
# port in a temporary directory, runs each check, and stops the demo by its PID.
# Usage: scripts/clients/check.sh [path/to/reportroot]   (default: <repository>/target/debug/reportroot)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The binary's path is taken from where the script was called.
RR=$(realpath "${1:-$ROOT/target/debug/reportroot}")
cd "$ROOT/scripts/clients"
HERE=$PWD
[ -x "$RR" ] || { echo "no reportroot binary at $RR (cargo build -p reportroot)" >&2; exit 1; }
if [ ! -d node_modules/@microsoft/microsoft-graph-client ]; then
  npm install --no-audit --no-fund --loglevel=error >&2
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && exec "$RR" demo --listen "127.0.0.1:$PORT" --days 30 > demo.log 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  grep -q "read token" "$WORK/demo.log" 2>/dev/null && break
  kill -0 $PID 2>/dev/null || { cat "$WORK/demo.log" >&2; exit 1; }
  sleep 0.1
done
TOKEN=$(grep -m1 "read token" "$WORK/demo.log" | awk '{print $3}')
BASE="http://127.0.0.1:$PORT/v1.0" TOKEN=$TOKEN node "$HERE/js-batch.mjs"
