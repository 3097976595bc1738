#!/bin/bash
# run.sh: runs libFuzzer targets for a bounded time each (make fuzz).
#
#   tests/fuzz/run.sh BINDIR TARGET...     FUZZ_SECONDS (default 30) each
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>)
# plus what earlier runs found (BINDIR/<target>/corpus), which is kept so
# that runs build on each other; crash, leak and timeout inputs land in
# BINDIR/<target>/. Exit status 1 when any target found something.
#
# A crash found becomes a regression test: copy the input to
# tests/fuzz/regress/<target>/<short-name> and fix the bug; the unit test
# tests/unit/test_fuzz_regress.c replays every committed seed and
# regression input through the same target code on every `make test`.
set -u
cd "$(dirname "$0")/../.." || exit 1
BINDIR=${1:?usage: run.sh BINDIR TARGET...}
shift
SECS=${FUZZ_SECONDS:-30}
failed=""
for t in "$@"; do
    bin=$BINDIR/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 1; }
    work=$BINDIR/$t
    mkdir -p "$work/corpus"
    rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
    echo "fuzz: $t for ${SECS}s (seeds tests/fuzz/corpus/$t, corpus $work/corpus)"
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work/corpus" "tests/fuzz/corpus/$t" \
        >"$work/log" 2>&1
    rc=$?
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/log" | sed "s/^/fuzz: $t: /"
    found=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null)
    if [ $rc != 0 ] || [ -n "$found" ]; then
        echo "fuzz: $t FOUND A PROBLEM (exit $rc); input(s): ${found:-none saved}" >&2
        grep -E 'ERROR|SUMMARY|check failed|runtime error' "$work/log" | head -5 >&2
        echo "fuzz: full log: $work/log; reproduce: $bin <input>" >&2
        failed="$failed $t"
    else
        echo "fuzz: $t: no crash"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: problems found in:$failed" >&2
    exit 1
fi
exit 0
