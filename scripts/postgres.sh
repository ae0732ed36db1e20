#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster for reportroot's tests and prints its URL.
# Installs PostgreSQL from Debian's packages when it is missing. Idempotent: a cluster already
# running in $PGDIR is reused. Usage: eval "$(scripts/postgres.sh)"  # sets REPORTROOT_TEST_POSTGRES_URL
set -euo pipefail
PGDIR=${PGDIR:-/tmp/reportroot-pg}
PGPORT=${PGPORT:-54329}

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
BIN=$(find_bin)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN=$(find_bin)
fi

# PostgreSQL refuses to run as root: run it as the 'postgres' user (created by the package).
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home "$PGDIR" postgres
  RUN_AS=(runuser -u postgres --)
fi

if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
  rm -rf "$PGDIR"
  mkdir -p "$PGDIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
  "${RUN_AS[@]}" "$BIN/initdb" -D "$PGDIR" -U reportroot --auth=trust -E UTF8 >/dev/null
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/log" -w \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >&2
fi
"${RUN_AS[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U reportroot -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'reportroot_test'" | grep -q 1 ||
  "${RUN_AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U reportroot reportroot_test
echo "export REPORTROOT_TEST_POSTGRES_URL=postgres://reportroot@127.0.0.1:$PGPORT/reportroot_test"
