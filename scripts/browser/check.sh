#!/usr/bin/env bash
# The dashboard's tests in a real browser (Debian's Chromium, driven by playwright-core from npm,
# pinned in scripts/browser/package.json; axe-core for accessibility), against a reportroot demo
# this script starts on free ports with its own temporary database and stops by its PID.
# Screenshots of each page go to target/screenshots/. "Sign in with Entra ID" is tested against a
# second server on the same database, configured with a real OpenID provider (npm's oidc-provider,
# scripts/browser/oidc-provider.mjs), also started here and stopped by PID.
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
entra_pid=
provider_pid=
cleanup() {
  for p in $entra_pid $provider_pid $pid; do
    kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  done
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

# "Sign in with Entra ID": the provider, and a server that offers it (its accounts are in Fabrikam).
provider_port=$(free_port)
entra_port=$(free_port)
client_secret="browser-test-secret-$RANDOM$RANDOM"
PORT=$provider_port REDIRECT_URI="http://127.0.0.1:$entra_port/dashboard/signin/oidc" \
  CLIENT_ID=reportroot-dashboard CLIENT_SECRET=$client_secret TENANT=$tenant_a \
  node scripts/browser/oidc-provider.mjs >"$work/provider.out" 2>&1 &
provider_pid=$!
REPORTROOT_DASHBOARD_OIDC_CLIENT_SECRET=$client_secret "$root/$bin" serve --listen "127.0.0.1:$entra_port" \
  --database "$db" --key-file "$work/reportroot.key" \
  --dashboard-oidc-issuer "http://127.0.0.1:$provider_port" --dashboard-oidc-client-id reportroot-dashboard \
  >"$work/entra.out" 2>"$work/entra.err" &
entra_pid=$!
entra_base="http://127.0.0.1:$entra_port"
for _ in $(seq 1 240); do
  curl -sf "$entra_base/readyz" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$provider_port/.well-known/openid-configuration" >/dev/null 2>&1 && break
  if ! kill -0 "$entra_pid" 2>/dev/null; then cat "$work/entra.err" >&2; exit 1; fi
  if ! kill -0 "$provider_pid" 2>/dev/null; then cat "$work/provider.out" >&2; exit 1; fi
  sleep 0.5
done
if grep -q "$client_secret" "$work/entra.out" "$work/entra.err"; then
  echo "the client secret was logged" >&2; exit 1
fi

mkdir -p target/screenshots
ENTRA_DASHBOARD_URL=$entra_base DASHBOARD_URL=$base DASHBOARD_HTTPS_URL="https://127.0.0.1:$https_port" \
  OPERATOR_NAME=admin OPERATOR_PASSWORD=$operator_password \
  USER_A_NAME=fabrikam-viewer USER_A_PASSWORD=$user_password TENANT_A=$tenant_a TENANT_B=$tenant_b \
  SCREENSHOTS="$root/target/screenshots" \
  node --test --test-concurrency=1 scripts/browser/dashboard.test.mjs scripts/browser/entra.test.mjs
if grep -q "$client_secret" "$work/entra.out" "$work/entra.err"; then
  echo "the client secret was logged" >&2; exit 1
fi
echo "screenshots: $(ls target/screenshots | tr '\n' ' ')"
