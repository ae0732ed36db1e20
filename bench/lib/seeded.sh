# Sourced by bench scripts: a seeded database that is kept between runs.
# seeded_database NAME FILE SEED-ARGS…: sets DATABASE. With BACKEND=postgres, the database NAME
# on $BENCH_POSTGRES_URL's server, created and seeded (`$RR SEED-ARGS…`) if it does not exist;
# else the SQLite file FILE, seeded into a temporary file first if it does not exist.
seeded_database() {
  local name=$1 file=$2
  shift 2
  if [ "${BACKEND:-sqlite}" = postgres ]; then
    : "${BENCH_POSTGRES_URL:?BENCH_POSTGRES_URL is needed for BACKEND=postgres (scripts/postgres.sh prints one)}"
    DATABASE="${BENCH_POSTGRES_URL%/*}/$name"
    if ! psql "$BENCH_POSTGRES_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
      psql "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $name" >&2
      "$RR" "$@" --database "$DATABASE" >&2
      # What autovacuum does after a load, at once: statistics and the visibility map.
      psql "$DATABASE" -c "VACUUM ANALYZE" >&2
    fi
  else
    if [ ! -f "$file" ]; then
      "$RR" "$@" --database "sqlite://$file.tmp" >&2
      mv "$file.tmp" "$file"; rm -f "$file.tmp-wal" "$file.tmp-shm"
    fi
    DATABASE="sqlite://$file"
  fi
}
