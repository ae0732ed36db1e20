#!/usr/bin/env bash
# Runs README.md's examples literally, as a reader would copy-paste them on a fresh machine.
#
# A ```sh block is run when the line just before its opening fence is exactly
#     <!-- readme-check -->
# Unmarked blocks (servers that run forever, the test suite, benchmarks, outside credentials)
# are not run.
#
# What it does, following README's "Run it with demo data":
#   1. builds the release binary (what `cargo run --release -- demo` builds);
#   2. refuses to run if 127.0.0.1:8080 or 8443 is taken (README hard-codes those ports);
#   3. starts `target/release/reportroot demo` from the repository root, in its own session
#      (setsid), and waits until it answers;
#   4. runs every marked block, in README order, in ONE bash process (so TENANT, TOKEN, ID ...
#      carry over) with `set -euo pipefail`; `curl` is a function adding --fail-with-body (an
#      HTTP error fails the run) and printing each request's HTTP status on stderr;
#   5. on exit, stops the demo by its process group and removes the files the examples and the
#      demo created (those that did not exist before the run).
# On failure it exits non-zero naming the failing block (number, README line) and its text.
#
# Environment: README_CHECK_TIMEOUT (seconds for all blocks, default 300),
#              README_CHECK_SKIP_BUILD=1 (use the existing target/release/reportroot),
#              README_CHECK_README (another file to check, relative to the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
README=${README_CHECK_README:-README.md}
MARK='<!-- readme-check -->'
PORT=8080
TLS_PORT=8443   # the demo's HTTPS port, which README's HTTPS example hard-codes
TIMEOUT=${README_CHECK_TIMEOUT:-300}

say() { printf '== readme-check: %s\n' "$*" >&2; }
die() { printf '== readme-check: FAILED: %s\n' "$*" >&2; exit 1; }

# --- tools the examples use (a fresh Debian has apt; install what is missing) ----------------
need=()
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v setsid >/dev/null || need+=(util-linux)
command -v timeout >/dev/null || need+=(coreutils)
if ((${#need[@]})); then
    say "installing ${need[*]} from apt"
    if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# --fail-with-body needs curl >= 7.76, %{stderr} in --write-out >= 7.63.
curl_help=$(curl --help all 2>/dev/null || true)
[[ $curl_help == *--fail-with-body* ]] || die "curl $(curl --version | head -n1 | cut -d' ' -f2) has no --fail-with-body (needs >= 7.76)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/readme-check.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT   # replaced by cleanup() below, once the demo can exist

# --- extract the marked blocks -----------------------------------------------------------------
# Each block goes to $WORK/block.N; $WORK/blocks lists "N LINE" (LINE: the fence's line in README).
awk -v mark="$MARK" -v dir="$WORK" '
    function fail(msg) { print FILENAME ":" NR ": " msg > "/dev/stderr"; bad = 1; exit 1 }
    inblock {                                   # inside a marked block: copy it
        if ($0 ~ /^```[ \t]*$/) { inblock = 0; close(file) } else print > file
        prev = ""; next
    }
    infence {                                   # inside an unmarked block: skip it
        if ($0 ~ /^```[ \t]*$/) infence = 0
        prev = ""; next
    }
    /^```/ {
        if (prev == mark) {
            if ($0 !~ /^```sh[ \t]*$/) fail("readme-check marker before a block that is not ```sh: " $0)
            n++; file = dir "/block." n; printf "" > file
            print n, NR > (dir "/blocks")
            inblock = 1
        } else infence = 1
        prev = ""; next
    }
    prev == mark { fail("readme-check marker not directly followed by a ```sh fence") }
    { prev = $0 }
    END {
        if (bad) exit 1
        if (inblock) { print FILENAME ": marked block " n " is not closed" > "/dev/stderr"; exit 1 }
        if (!n) { print FILENAME ": no block is marked " mark > "/dev/stderr"; exit 1 }
    }
' "$README" || die "could not extract the marked blocks of $README"
nblocks=$(wc -l <"$WORK/blocks")

# --- files the demo and the examples create (removed at exit unless they existed before) --------
created_candidates=(reportroot.key reportroot-demo-admin.txt cookies.txt reportroot-ca.pem reportroot-tls.pem reportroot-tls.key reportroot-demo.db reportroot-demo.db-wal reportroot-demo.db-shm
    active.csv mine.db mine.db-wal mine.db-shm bench.db bench.db-wal bench.db-shm
    reportroot.db reportroot.db-wal reportroot.db-shm)
preexisting=()
for f in "${created_candidates[@]}"; do [ -e "$f" ] && preexisting+=("$f"); done
ls -A "$ROOT" | sort >"$WORK/top-before"

DEMO_PID=
cleanup() {
    local rc=$?
    if [ -n "$DEMO_PID" ]; then
        kill -TERM -- "-$DEMO_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 -- "-$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$DEMO_PID" 2>/dev/null || true
        wait "$DEMO_PID" 2>/dev/null || true
    fi
    cd "$ROOT"
    for f in "${created_candidates[@]}"; do
        [ -e "$f" ] || continue
        case " ${preexisting[*]-} " in *" $f "*) continue ;; esac
        rm -f -- "$f"
    done
    ls -A "$ROOT" | sort >"$WORK/top-after" 2>/dev/null || true
    local extra
    extra=$(comm -13 "$WORK/top-before" "$WORK/top-after" 2>/dev/null || true)
    [ -z "$extra" ] || say "note: new files in the repository root, left in place: $(echo $extra)"
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build --------------------------------------------------------------------------------------
if [ "${README_CHECK_SKIP_BUILD:-}" != 1 ]; then
    say "building (cargo build --release --locked -q -p reportroot)"
    cargo build --release --locked -q -p reportroot
fi
[ -x target/release/reportroot ] || die "target/release/reportroot is missing"

# --- start the demo as README says --------------------------------------------------------------
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" "$TLS_PORT"; do
    if port_taken "$p"; then
        die "127.0.0.1:$p is already in use; README's examples hard-code that port, so stop whatever listens there and run again"
    fi
done
# A fresh machine has none of the caller's reportroot settings, and README's own `export PATH=`
# is what must put target/release on PATH.
for v in $(compgen -e | grep '^REPORTROOT_' || true); do unset "$v"; done
PATH=$(printf '%s\n' "$PATH" | tr ':' '\n' | grep -vxF -e "$ROOT/target/release" -e "$ROOT/target/debug" | paste -sd: -)

say "starting the demo (target/release/reportroot demo, from $ROOT)"
setsid target/release/reportroot demo >"$WORK/demo.log" 2>&1 </dev/null &
DEMO_PID=$!
# setsid runs the demo in a new session whose process group id is its pid (a background job of
# a non-interactive shell is never a group leader, so setsid does not fork): cleanup stops that
# whole group.
started=$(date +%s)
until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/v1.0/\$metadata"; do
    if ! kill -0 "$DEMO_PID" 2>/dev/null; then
        cat "$WORK/demo.log" >&2
        DEMO_PID=
        die "the demo exited before it answered (its output is above)"
    fi
    (($(date +%s) - started < 120)) || { tail -n 20 "$WORK/demo.log" >&2; die "the demo did not answer within 120 s"; }
    sleep 0.2
done
kill -0 "$DEMO_PID" 2>/dev/null || die "something else answers on 127.0.0.1:$PORT"
[ "$(ps -o pgid= -p "$DEMO_PID" | tr -d ' ')" = "$DEMO_PID" ] || die "the demo (pid $DEMO_PID) is not the leader of its own process group"
say "demo answering after $(($(date +%s) - started)) s (pid/pgid $DEMO_PID)"

# --- run the marked blocks in one bash ----------------------------------------------------------
runner=$WORK/runner.sh
{
    cat <<'PRELUDE'
set -euo pipefail
shopt -s inherit_errexit
# Every curl of the examples fails on an HTTP error (printing the body) and reports its status.
curl() {
    command curl --fail-with-body --show-error \
        --write-out '%{stderr}\n[readme-check: HTTP %{http_code} %{method} %{url_effective}]\n' "$@"
}
PRELUDE
    while read -r n line; do
        printf '\necho %q >"$READMECHECK_CURRENT"\n' "$n"
        printf 'printf "\\n--- block %s of %s (%s line %s)\\n"\n' "$n" "$nblocks" "$README" "$line"
        printf "sed 's/^/\$ /' %q\n" "$WORK/block.$n"
        printf 'echo "--- output"\n'
        cat "$WORK/block.$n"
        printf '\n'
    done <"$WORK/blocks"
    printf '\necho done >"$READMECHECK_CURRENT"\n'
} >"$runner"

say "running $nblocks marked blocks of $README"
status=0
# A clean environment, as a new terminal would have it: README sets PATH, TENANT and TOKEN itself.
timeout -k 5 "$TIMEOUT" \
    env -u TENANT -u TOKEN -u ID -u SINCE READMECHECK_CURRENT="$WORK/current" \
    bash --noprofile --norc "$runner" </dev/null 2>&1 || status=$?
current=$(cat "$WORK/current" 2>/dev/null || echo 0)
if [ "$status" != 0 ] || [ "$current" != done ]; then
    echo >&2
    if [ "$status" = 124 ]; then say "timed out after $TIMEOUT s"; fi
    if [ "$current" = 0 ] || [ "$current" = done ]; then
        die "the runner failed (exit $status) outside any block"
    fi
    line=$(awk -v n="$current" '$1 == n { print $2 }' "$WORK/blocks")
    {
        printf '== readme-check: FAILED: block %s of %s (%s line %s), exit %s:\n' "$current" "$nblocks" "$README" "$line" "$status"
        sed 's/^/    /' "$WORK/block.$current"
        kill -0 "$DEMO_PID" 2>/dev/null || { echo "the demo is no longer running; its last output:"; tail -n 20 "$WORK/demo.log"; }
    } >&2
    exit 1
fi
kill -0 "$DEMO_PID" 2>/dev/null || die "the demo stopped during the examples"
say "OK: all $nblocks marked blocks of $README ran"
