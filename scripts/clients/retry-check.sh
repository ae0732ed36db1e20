#!/usr/bin/env bash
# msgraph-sdk's retry handler against Graph's throttling and chaos: starts `reportroot demo`
# with --throttle graph (small limits and window, so Retry-After stays short), a [chaos] table
# failing a fifth of the report calls with 429 or 503, and --metrics-listen; runs
# sdk-retry.py, which must complete every call; then reads the metrics to show that answers
# were throttled and failures injected. Stops the demo by its PID.
# Usage: scripts/clients/retry-check.sh [path/to/reportroot]  (needs scripts/clients/.venv, as
# check.sh installs it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RR=$(realpath "${1:-$ROOT/target/debug/reportroot}")
cd "$ROOT/scripts/clients"
HERE=$PWD
TENANT=6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK2=$(mktemp -d)
cat > "$WORK2/ops.toml" <<'TOML'
[throttle]
window_seconds = 2
csv_per_app = 2
csv_per_tenant = 40
json_per_app = 100

[chaos]
failure_rate = 0.2
statuses = [429, 503]
routes = ["/v1.0/reports/get*"]
methods = ["GET"]
seed = 1
retry_after_seconds = 1
TOML
PORT2=$(free_port); TLS_PORT2=$(free_port); METRICS_PORT=$(free_port)
(cd "$WORK2" && exec "$RR" --config ops.toml demo --listen "127.0.0.1:$PORT2" \
  --tls-listen "127.0.0.1:$TLS_PORT2" --metrics-listen "127.0.0.1:$METRICS_PORT" --days 30 \
  --throttle graph > demo.log 2>&1) &
PID2=$!
trap 'kill $PID2 2>/dev/null || true; wait $PID2 2>/dev/null || true; rm -rf "$WORK2"' EXIT
for _ in $(seq 1 300); do
  grep -q "read token" "$WORK2/demo.log" 2>/dev/null && break
  kill -0 $PID2 2>/dev/null || { cat "$WORK2/demo.log" >&2; exit 1; }
  sleep 0.1
done
(cd "$WORK2" && "$RR" app add --database sqlite://reportroot-demo.db --tenant $TENANT \
  --name retry-check --role Reports.Read.All --json > app.json)
CA2="$WORK2/reportroot-ca.pem"
HTTPS_BASE="https://127.0.0.1:$TLS_PORT2" APP_JSON="$WORK2/app.json" SSL_CERT_FILE=$CA2 \
  REQUESTS_CA_BUNDLE=$CA2 .venv/bin/python "$HERE/sdk-retry.py"
METRICS=$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics")
# The exposition format, checked by Prometheus' own promtool (Debian's `prometheus` package,
# about 19 MB, installed when missing and we are root; crates/api/tests/api/operation.rs checks
# the format with a small parser where promtool is not available).
if ! command -v promtool >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2 || true
fi
if command -v promtool >/dev/null; then
  echo "$METRICS" | promtool check metrics
  echo "promtool check metrics: ok"
else
  echo "promtool not available: the metrics text was not checked by it" >&2
fi
count() { echo "$METRICS" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {s += $2} END {print s + 0}'; }
THROTTLED=$(count reportroot_throttled_responses_total)
INJECTED=$(echo "$METRICS" | awk '$1 ~ /^reportroot_injected_faults_total\{status="(429|503)"\}/ {s += $2} END {print s + 0}')
echo "throttled answers: $THROTTLED, injected failures: $INJECTED"
[ "$THROTTLED" -gt 0 ] && [ "$INJECTED" -gt 0 ] || { echo "expected throttled and injected answers" >&2; exit 1; }
echo "msgraph-sdk's retry handler under --throttle graph and chaos: ok"
