#!/bin/bash
# run-tests.sh: runs the whole test suite (`make test` calls it with BUILD,
# SENTRAD and SENTRA_CLI set).
#
# It creates a throwaway PostgreSQL cluster in a fresh temporary directory
# (never the `make run` one in var/pg), starts one shared sentrad on a free
# port for the tests that want a ready server, then runs every
# $BUILD/tests/test_* binary and every tests/integration/*.sh, each in its
# own process group under a time limit, and stops and deletes everything it
# started on every way out.
#
# Environment given to each test:
#   SENTRA_TEST_PGDIR    the test cluster's directory (scripts/pgcluster.sh)
#   SENTRA_TEST_SCRIPTS  absolute path of scripts/
#   SENTRA_TEST_TMP      a scratch directory for logs and port files
#   SENTRA_MIGRATIONS    absolute path of migrations/
#   SENTRAD, SENTRA_CLI  absolute paths of the programs under test
#   SENTRA_TEST_DB       conninfo of the shared server's database
#   SENTRA_TEST_ADDR     host:port of the shared server
#   SENTRA_PG_FAST=1     the cluster runs without fsync
#
# Counting: cmocka's "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)"
# summaries, and a shell test's "N passed, N failed" line (", N skipped" may
# follow: a test that cannot run here, such as the browser test without a
# browser, says why and counts as skipped). A program that exits non-zero
# (or crashes, or times out) without reporting a failure counts as one
# failed test. The last line is "N passed, N failed" (", N skipped" when
# any were); the exit status is non-zero when anything failed.
#
# VALGRIND=1 (`make valgrind-test`) runs every test program and every
# sentrad under valgrind's memcheck: any error or leak (definite or
# indirect) that valgrind reports, in any process, fails the run.
#
# Options (environment): TEST_TIMEOUT (seconds per program, default 300,
# 1200 under valgrind),
# TESTS (a shell pattern on program names, e.g. TESTS='test_migrate*'),
# KEEP_TEST_TMP=1 (keep the temporary directory and its logs).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
VALGRIND=${VALGRIND:-0}
if [ "$VALGRIND" = 1 ]; then
    TEST_TIMEOUT=${TEST_TIMEOUT:-1200}
else
    TEST_TIMEOUT=${TEST_TIMEOUT:-300}
fi
TESTS=${TESTS:-*}

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
sentrad=$(abspath "${SENTRAD:-bin/sentrad}")
cli=$(abspath "${SENTRA_CLI:-bin/sentra-cli}")
BUILD=$(abspath "$BUILD")

# Nothing from the caller's own sentra setup (SENTRA_DB_URL, SENTRA_ADDR,
# SENTRA_TOKEN, SENTRA_CONFIG, ...) may leak into the tests.
for v in $(compgen -e); do
    case "$v" in SENTRA_*|CMOCKA_*) unset "$v" ;; esac
done
SENTRAD=$sentrad
SENTRA_CLI=$cli

TMP=$(mktemp -d /tmp/sentra-test.XXXXXX) || { echo "run-tests: mktemp failed" >&2; exit 1; }
# The cluster runs as user postgres when we are root: let it through.
chmod 755 "$TMP"
PGDIR=$TMP/pg

# Under valgrind: every process writes its own log; a clean one stays empty.
VG=()
if [ "$VALGRIND" = 1 ]; then
    command -v valgrind >/dev/null ||
        { echo "run-tests: VALGRIND=1 needs valgrind (apt-get install valgrind)" >&2; exit 1; }
    VG=(valgrind --quiet --error-exitcode=99 --leak-check=full
        --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
        --child-silent-after-fork=yes --log-file="$TMP/valgrind.%p.log")
    printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${VG[*]}" "$sentrad" > "$TMP/sentrad-valgrind"
    chmod 755 "$TMP/sentrad-valgrind"
    SENTRAD=$TMP/sentrad-valgrind
fi
PIDS=$TMP/pids          # sentrad pids started by the harness, one a line
CUR_PGID=""             # the process group of the test running now
SHARED_PID=""

# Whether our child $1 still runs (kill -0 also succeeds on a zombie).
alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$st" ] && [ "$st" != Z ]
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM HUP
    [ -n "$CUR_PGID" ] && kill -KILL -- "-$CUR_PGID" 2>/dev/null
    [ -n "$SHARED_PID" ] && kill -TERM "$SHARED_PID" 2>/dev/null
    if [ -f "$PIDS" ]; then
        while read -r p; do
            [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
        done < "$PIDS"
    fi
    if [ -n "$SHARED_PID" ]; then
        for _ in $(seq 100); do alive "$SHARED_PID" || break; sleep 0.1; done
        alive "$SHARED_PID" && kill -KILL "$SHARED_PID" 2>/dev/null
        wait "$SHARED_PID" 2>/dev/null
    fi
    "$ROOT/scripts/pgcluster.sh" destroy "$PGDIR" >/dev/null 2>&1 ||
        echo "run-tests: could not delete the test cluster in $PGDIR" >&2
    if [ "${KEEP_TEST_TMP:-0}" = 1 ]; then
        echo "run-tests: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

export SENTRA_PG_FAST=1
export SENTRA_TEST_PGDIR=$PGDIR
export SENTRA_TEST_SCRIPTS=$ROOT/scripts
export SENTRA_TEST_TMP=$TMP
export SENTRA_TEST_PIDS=$PIDS
export SENTRA_MIGRATIONS=$ROOT/migrations
export SENTRAD SENTRA_CLI

# ---------------------------------------------------------------- cluster

if ! "$ROOT/scripts/pgcluster.sh" ensure "$PGDIR" >/dev/null; then
    echo "run-tests: cannot create the test cluster in $PGDIR" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# ---------------------------------------------------------------- shared server

start_shared() {
    local conn port=""
    conn=$("$ROOT/scripts/pgcluster.sh" createdb "$PGDIR" shared) || return 1
    # In a session of its own: a signal sent to our process group from
    # elsewhere on a shared machine (it happened) must not end it.
    setsid "$SENTRAD" --db "$conn" --host 127.0.0.1 --port 0 --port-file "$TMP/shared.port" \
        --enable-debug </dev/null >>"$TMP/shared.log" 2>&1 &
    SHARED_PID=$!
    for _ in $(seq 300); do
        if [ -s "$TMP/shared.port" ]; then
            port=$(cat "$TMP/shared.port")
            break
        fi
        alive "$SHARED_PID" || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "run-tests: the shared sentrad did not start; its log ($TMP/shared.log):" >&2
        tail -20 "$TMP/shared.log" >&2
        return 1
    fi
    export SENTRA_TEST_DB=$conn
    export SENTRA_TEST_ADDR=127.0.0.1:$port
}

if [ -x "$SENTRAD" ]; then
    start_shared || echo "run-tests: continuing without the shared server" >&2
else
    echo "run-tests: $SENTRAD is missing; tests that need a server will fail" >&2
fi

# ---------------------------------------------------------------- running

PASSED=0
FAILED=0
SKIPPED=0
declare -a FAILURES=()
declare -a SKIPS=()

# run_one NAME CMD...: runs a test program in its own process group with a
# time limit, shows its output, and adds its counts.
run_one() {
    local name=$1 out=$TMP/out.$1 rc p f
    shift
    echo "=== $name"
    # setsid: the test and anything it starts form one group, so nothing it
    # leaves behind outlives it. timeout signals the whole group on expiry.
    setsid timeout -k 10 "$TEST_TIMEOUT" "$@" >"$out" 2>&1 </dev/null &
    CUR_PGID=$!
    wait "$CUR_PGID"
    rc=$?
    kill -KILL -- "-$CUR_PGID" 2>/dev/null
    CUR_PGID=""
    cat "$out"

    p=0 f=0
    local sk=0
    local kind=cmocka
    case "$name" in *.sh) kind=shell ;; esac
    if [ $kind = cmocka ]; then
        p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    else
        local last
        last=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$out" | tail -1)
        if [ -n "$last" ]; then
            p=${last%% passed*}
            f=${last#*passed, }
            f=${f%% failed*}
            case "$last" in *skipped) sk=${last##*failed, }; sk=${sk%% skipped} ;; esac
        fi
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "run-tests: $name timed out after ${TEST_TIMEOUT}s" >&2
    elif [ "$rc" -gt 128 ]; then
        echo "run-tests: $name died of signal $((rc - 128))" >&2
    fi
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        # Crashed, timed out, or failed without a summary.
        f=1
        echo "run-tests: $name exited with status $rc" >&2
    elif [ "$rc" = 0 ] && [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$sk" = 0 ]; then
        f=1
        echo "run-tests: $name reported no results" >&2
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    SKIPPED=$((SKIPPED + sk))
    [ "$f" != 0 ] && FAILURES+=("$name ($f)")
    [ "$sk" != 0 ] && SKIPS+=("$name ($sk)")
    return 0
}

shopt -s nullglob
bins=()
built=0     # test programs built, whether TESTS picks them or not
for b in "$BUILD"/tests/test_*; do
    [ -f "$b" ] && [ -x "$b" ] || continue
    built=$((built + 1))
    n=$(basename "$b")
    # shellcheck disable=SC2053
    [[ $n == $TESTS ]] || continue
    bins+=("$b")
done
for b in "${bins[@]}"; do
    run_one "$(basename "$b")" "${VG[@]}" "$b"
done
scripts=0
for s in "$ROOT"/tests/integration/*.sh; do
    n=$(basename "$s")
    # shellcheck disable=SC2053
    [[ $n == $TESTS ]] || continue
    scripts=$((scripts + 1))
    run_one "$n" bash "$s"
done

# None built is a broken build; a subset picking only scripts
# (TESTS='test_http*') is not, but one picking nothing at all is a mistake.
if [ "$built" = 0 ]; then
    echo "run-tests: no test programs in $BUILD/tests (run make tests first)" >&2
    FAILED=$((FAILED + 1))
elif [ ${#bins[@]} = 0 ] && [ "$scripts" = 0 ]; then
    echo "run-tests: TESTS='$TESTS' names no test" >&2
    FAILED=$((FAILED + 1))
fi

# A server that died during the run is a failure of the run.
if [ -n "$SHARED_PID" ] && ! alive "$SHARED_PID"; then
    echo "run-tests: the shared sentrad died during the run; its log:" >&2
    tail -20 "$TMP/shared.log" >&2
    FAILED=$((FAILED + 1))
    FAILURES+=("shared sentrad")
fi

# Under valgrind, stop the shared server now so that its leak check runs,
# then count every process whose log is not empty.
if [ "$VALGRIND" = 1 ]; then
    if [ -n "$SHARED_PID" ] && alive "$SHARED_PID"; then
        kill -TERM "$SHARED_PID"
        for _ in $(seq 300); do alive "$SHARED_PID" || break; sleep 0.1; done
        wait "$SHARED_PID" 2>/dev/null
        SHARED_PID=""
    fi
    for log in "$TMP"/valgrind.*.log; do
        [ -s "$log" ] || continue
        echo "run-tests: valgrind reports in $(basename "$log"):" >&2
        head -60 "$log" >&2
        FAILED=$((FAILED + 1))
        FAILURES+=("valgrind $(basename "$log")")
    done
fi

echo
if [ ${#FAILURES[@]} -gt 0 ]; then
    echo "failed: ${FAILURES[*]}"
fi
if [ ${#SKIPS[@]} -gt 0 ]; then
    echo "skipped: ${SKIPS[*]}"
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
    echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ]
