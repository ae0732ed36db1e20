#!/usr/bin/env bash
# Microsoft's own clients against a real reportroot: installs them (npm packages pinned in
# package.json into scripts/clients/node_modules; PyPI packages pinned in requirements.txt into
# scripts/clients/.venv), starts `reportroot demo` on free loopback ports (HTTP and HTTPS) in a
# temporary directory, registers an app with `reportroot app add`, runs each check, and stops
# the demo by its PID.
# Usage: scripts/clients/check.sh [path/to/reportroot]   (default: <repository>/target/debug/reportroot)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The binary's path is taken from where the script was called.
RR=$(realpath "${1:-$ROOT/target/debug/reportroot}")
cd "$ROOT/scripts/clients"
HERE=$PWD
[ -x "$RR" ] || { echo "no reportroot binary at $RR (cargo build -p reportroot)" >&2; exit 1; }
if [ ! -d node_modules/@azure/identity ] || [ ! -d node_modules/@microsoft/microsoft-graph-client ]; then
  npm install --no-audit --no-fund --loglevel=error >&2
fi
if [ ! -x .venv/bin/python ] || ! diff -q <(.venv/bin/pip freeze 2>/dev/null | sort) <(sort requirements.txt) >/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt >&2
fi
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
TLS_PORT=$(free_port)
(cd "$WORK" && exec "$RR" demo --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TLS_PORT" --days 30 > demo.log 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  grep -q "read token" "$WORK/demo.log" 2>/dev/null && break
  kill -0 $PID 2>/dev/null || { cat "$WORK/demo.log" >&2; exit 1; }
  sleep 0.1
done
TOKEN=$(grep -m1 "read token" "$WORK/demo.log" | awk '{print $3}')
BASE="http://127.0.0.1:$PORT/v1.0" TOKEN=$TOKEN node "$HERE/js-batch.mjs"

# Sign-in over HTTPS with the SDKs' own credential classes, trusting the demo's CA.
TENANT=6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01
(cd "$WORK" && "$RR" app add --database sqlite://reportroot-demo.db --tenant $TENANT \
  --name sdk-check --role Reports.Read.All --json > app.json)
CA="$WORK/reportroot-ca.pem"
export HTTPS_BASE="https://127.0.0.1:$TLS_PORT" APP_JSON="$WORK/app.json"
SSL_CERT_FILE=$CA REQUESTS_CA_BUNDLE=$CA .venv/bin/python "$HERE/sdk-signin.py"
NODE_EXTRA_CA_CERTS=$CA node "$HERE/js-signin.mjs"

# README's SDK snippet, literally: the ```python block after the line <!-- sdk-check -->, run
# where app.json and the demo's CA are, as README says to run it.
awk '/^<!-- sdk-check -->$/ {armed = 1; next} armed && /^```python/ {inblock = 1; next}
     inblock && /^```/ {exit} inblock {print}' "$ROOT/README.md" > "$WORK/sdk.py"
[ -s "$WORK/sdk.py" ] || { echo "README has no <!-- sdk-check --> python block" >&2; exit 1; }
(cd "$WORK" && REPORTROOT_URL=$HTTPS_BASE SSL_CERT_FILE=$CA REQUESTS_CA_BUNDLE=$CA \
  "$HERE/.venv/bin/python" sdk.py > sdk.out)
head -c 20 "$WORK/sdk.out" | grep -q "Report Refresh Date" || { echo "README's SDK snippet printed:" >&2; cat "$WORK/sdk.out" >&2; exit 1; }
echo "README's SDK snippet (ClientSecretCredential + msgraph-sdk over HTTPS): ok"


# Graph's throttling and chaos against msgraph-sdk's retry handler.
"$HERE/retry-check.sh" "$RR"
