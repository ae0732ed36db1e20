#!/usr/bin/env bash
# The dashboard's tests in a real browser (Debian's Chromium, driven by playwright-core from npm,
# pinned in scripts/browser/package.json; axe-core for accessibility), against a reportroot demo
# this script starts on free ports with its own temporary database and stops by its PID.
# Screenshots of each page go to target/screenshots/.
#
#   scripts/browser/check.sh [path/to/reportroot]     (default: target/release/reportroot, built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${1:-target/release/reportroot}

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing Debian's chromium and chromium-driver (apt, as root)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
fi
if [ ! -x "$bin" ]; then
  cargo build --release --locked -q -p reportroot
fi
(cd scripts/browser && npm ci --no-audit --no-fund --silent)

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
https_port=$(free_port)
db="sqlite://$work/demo.db"
"$root/$bin" demo --days 400 --listen "127.0.0.1:$http_port" --tls-listen "127.0.0.1:$https_port" \
  --database "$db" --key-file "$work/reportroot.key" >"$work/demo.out" 2>"$work/demo.err" &
pid=$!
base="http://127.0.0.1:$http_port"
for _ in $(seq 1 1200); do
  curl -sf "$base/readyz" >/dev/null 2>&1 && [ -s "$work/reportroot-demo-admin.txt" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/demo.err" >&2; exit 1; fi
  sleep 0.5
done
curl -sf "$base/readyz" >/dev/null

# The demo's operator, as it printed it; and a user of one tenant only (Fabrikam).
operator_password=$(tr -d '\n' <"$work/reportroot-demo-admin.txt")
grep -q "$operator_password" "$work/demo.out"
tenant_a=2b8d4e71-0c3f-4a96-b5d2-7e19c6a83f02
tenant_b=6f3c1a52-8b7e-4d0a-9c11-2f5e8a4b7c01
user_password="browser-test-$(date +%s)-$RANDOM"
printf '%s\n' "$user_password" | "$root/$bin" user add --name fabrikam-viewer --tenant "$tenant_a" \
  --password-stdin --database "$db" >/dev/null

mkdir -p target/screenshots
DASHBOARD_URL=$base DASHBOARD_HTTPS_URL="https://127.0.0.1:$https_port" OPERATOR_NAME=admin OPERATOR_PASSWORD=$operator_password \
  USER_A_NAME=fabrikam-viewer USER_A_PASSWORD=$user_password TENANT_A=$tenant_a TENANT_B=$tenant_b \
  SCREENSHOTS="$root/target/screenshots" \
  node --test --test-concurrency=1 scripts/browser/dashboard.test.mjs
echo "screenshots: $(ls target/screenshots | tr '\n' ' ')"
