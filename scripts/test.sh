#!/usr/bin/env bash
# The whole test suite: on SQLite always, and on PostgreSQL and Citus too when they can be
# started (scripts/postgres.sh installs PostgreSQL from Debian's packages when it is missing and
# we are root; scripts/citus.sh builds Citus from the vendored source once and starts a
# coordinator and two workers).
# Ends with one summary line: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${REPORTROOT_TEST_POSTGRES_URL:-}" ]; then
  if pg_env=$(scripts/postgres.sh); then
    eval "$pg_env"
  else
    echo "WARNING: could not start PostgreSQL; the PostgreSQL tests will report SKIPPED" >&2
  fi
fi
if [ -z "${REPORTROOT_TEST_CITUS_URL:-}" ]; then
  if citus_env=$(scripts/citus.sh); then
    eval "$citus_env"
  else
    echo "WARNING: could not start Citus; the Citus tests will report SKIPPED" >&2
  fi
fi
echo "REPORTROOT_TEST_POSTGRES_URL=${REPORTROOT_TEST_POSTGRES_URL:-<unset>}"
echo "REPORTROOT_TEST_CITUS_URL=${REPORTROOT_TEST_CITUS_URL:-<unset>}"
log=$(mktemp)
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
summary=$(awk '/^test result:/ {p += $4; f += $6} END {printf "tests: %d passed, %d failed", p, f}' "$log")
rm -f "$log"
echo "$summary"
exit "$status"
