#!/usr/bin/env bash
# Starts a throw-away Citus cluster for reportroot's tests — a coordinator and two workers, each
# its own PostgreSQL cluster on a loopback port — and prints its URL. Builds and installs Citus
# from the vendored source once (apt for the build dependencies); later runs reuse the install,
# or the cached build tree when only the install is missing. Idempotent: clusters already
# running are reused.
#
#   eval "$(scripts/citus.sh)"   # sets REPORTROOT_TEST_CITUS_URL
#   scripts/citus.sh stop        # stops the clusters this script starts (by data directory)
#
# Environment: CITUS_TARBALL (the vendored source), CITUS_CACHE (build cache, outside the
# repository), CITUS_DIR (data directories' prefix), CITUS_PORT (coordinator; workers take the
# next ports), CITUS_WORKERS (how many workers, 2).
set -euo pipefail
cd "$(dirname "$0")/.."

CITUS_VERSION=13.0.5
CITUS_DIR=${CITUS_DIR:-/tmp/reportroot-citus}
CITUS_PORT=${CITUS_PORT:-54340}
CITUS_WORKERS=${CITUS_WORKERS:-2}
DB=reportroot_test
if [ -z "${CITUS_TARBALL:-}" ]; then
  for candidate in ../shared/vendor /work/shared/vendor; do
    if [ -f "$candidate/citus-$CITUS_VERSION.tar.gz" ]; then
      CITUS_TARBALL=$candidate/citus-$CITUS_VERSION.tar.gz
      break
    fi
  done
fi
if [ "$(id -u)" = 0 ]; then
  CITUS_CACHE=${CITUS_CACHE:-/var/cache/reportroot-citus}
else
  CITUS_CACHE=${CITUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reportroot-citus}
fi

# The nodes: name, port. The coordinator first.
NODES=("coord:$CITUS_PORT")
for i in $(seq 1 "$CITUS_WORKERS"); do
  NODES+=("w$i:$((CITUS_PORT + i))")
done

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# PostgreSQL refuses to run as root: run it as the 'postgres' user (created by the package).
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  RUN_AS=(runuser -u postgres --)
fi

if [ "${1:-}" = stop ]; then
  BIN=$(find_bin)
  # Only the data directories this script creates, each stopped by its own pg_ctl: the machine
  # is shared, so nothing is stopped by process name.
  for node in "${NODES[@]}" w3:0 w4:0; do
    dir="$CITUS_DIR-${node%%:*}"
    if [ -d "$dir" ] && "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$dir" -m fast -w stop >&2
    fi
  done
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
BIN=$(find_bin)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN=$(find_bin)
fi
PGVER=$(basename "$(dirname "$BIN")")
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home /tmp postgres
fi

# Citus for this PostgreSQL: its library names the version ("Citus 13.0.5 on …").
citus_installed() {
  local lib=/usr/lib/postgresql/$PGVER/lib/citus.so
  [ -f "$lib" ] && [ -f "/usr/share/postgresql/$PGVER/extension/citus.control" ] &&
    grep -aq "Citus $CITUS_VERSION " "$lib"
}
if ! citus_installed; then
  build="$CITUS_CACHE/pg$PGVER/citus-$CITUS_VERSION"
  if [ ! -f "$build/.built" ]; then
    [ -n "${CITUS_TARBALL:-}" ] || {
      echo "citus-$CITUS_VERSION.tar.gz not found (set CITUS_TARBALL)" >&2
      exit 1
    }
    echo "building Citus $CITUS_VERSION for PostgreSQL $PGVER in $build (once)" >&2
    # The server headers must match the installed server exactly: pin them to its version
    # rather than let apt upgrade a PostgreSQL that other clusters on the machine run from.
    server_version=$(dpkg-query -W -f='${Version}' "postgresql-$PGVER" 2>/dev/null || true)
    dev="postgresql-server-dev-$PGVER${server_version:+=$server_version}"
    deps=(libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev autoconf flex bison make gcc)
    missing=0
    for package in "postgresql-server-dev-$PGVER" "${deps[@]}"; do
      dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing=1
    done
    if [ "$missing" = 1 ]; then
      apt-get update -qq >&2
      apt-get install -y -qq --no-upgrade "$dev" "${deps[@]}" >&2 || {
        # The archive no longer has the running server's exact version: take the newest.
        echo "WARNING: installing postgresql-server-dev-$PGVER unpinned" >&2
        apt-get install -y -qq "postgresql-server-dev-$PGVER" "${deps[@]}" >&2
      }
    fi
    rm -rf "$build"
    mkdir -p "$build"
    tar xzf "$CITUS_TARBALL" -C "$build" --strip-components=1
    (
      cd "$build"
      ./configure --without-libcurl PG_CONFIG="$BIN/pg_config" >"$build/configure.log" 2>&1
      # with_llvm=no: no LLVM bitcode for JIT inlining, which would double the build time.
      make -j"$(nproc)" with_llvm=no >"$build/make.log" 2>&1
    ) || {
      echo "Citus build failed: see $build/configure.log and $build/make.log" >&2
      exit 1
    }
    touch "$build/.built"
  fi
  echo "installing Citus $CITUS_VERSION from $build" >&2
  make -C "$build" with_llvm=no install >"$build/install.log" 2>&1
  citus_installed || {
    echo "Citus $CITUS_VERSION is not installed after 'make install'" >&2
    exit 1
  }
fi

psql_on() { # port, database, SQL
  PGOPTIONS="-c client_min_messages=warning" "${RUN_AS[@]}" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U reportroot -d "$2" -tAc "$3"
}

start_node() { # name, port
  local name=$1 port=$2
  local dir="$CITUS_DIR-$name"
  if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${RUN_AS[@]}" "$BIN/initdb" -D "$dir" -U reportroot --auth=trust -E UTF8 >/dev/null
    # wal_level=logical: Citus's rebalancer moves shards by logical replication.
    # fsync=off: throw-away test clusters.
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$dir" -l "$dir/log" -w -o "-p $port -k $dir \
      -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_preload_libraries=citus \
      -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 \
      -c shared_buffers=64MB -c fsync=off" start >&2
  fi
  psql_on "$port" postgres "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    psql_on "$port" postgres "CREATE DATABASE $DB"
  psql_on "$port" "$DB" "CREATE EXTENSION IF NOT EXISTS citus"
}

# The nodes are independent until registered: set them up at once (initdb and CREATE EXTENSION
# take most of the time).
pids=()
for node in "${NODES[@]}"; do
  start_node "${node%%:*}" "${node#*:}" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || {
    echo "a Citus node did not start: see $CITUS_DIR-*/log" >&2
    exit 1
  }
done

# Register the nodes (idempotent: citus_add_node returns the id of a node already added).
psql_on "$CITUS_PORT" "$DB" "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT)" >/dev/null
for node in "${NODES[@]:1}"; do
  psql_on "$CITUS_PORT" "$DB" "SELECT citus_add_node('127.0.0.1', ${node#*:})" >/dev/null
done
echo "export REPORTROOT_TEST_CITUS_URL=postgres://reportroot@127.0.0.1:$CITUS_PORT/$DB"
