# Sourced by the wrk benchmarks (run from the repository root, ROOT set): fails early without
# wrk, and sets RR to the binary under test, REPORTROOT_BIN if given, else a release build.
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${REPORTROOT_BIN:-}" ]; then
  cargo build --release --locked -q -p reportroot
  REPORTROOT_BIN=$ROOT/target/release/reportroot
fi
RR=$REPORTROOT_BIN
