#!/bin/bash
# test_web_unit.sh: the dashboard's JavaScript modules (web/js/) under
# node's test runner (tests/web/*.test.mjs): i18n, formats, CSV, the
# Connect client and its protobuf reader, the map's data and arithmetic,
# and the source rules that keep the page safe. No browser, no server.
# Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null 2>&1; then
    echo "test_web_unit: node is missing (scripts/deps.sh --web installs Debian's nodejs)"
    echo "0 passed, 1 failed"
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
node --test --test-reporter=tap tests/web/ >"$out" 2>&1
rc=$?
grep -E '^(not )?ok |^# Subtest' "$out" | grep -v '^# Subtest' | sed 's/^/  /'
grep -B2 -A30 '^not ok' "$out" | head -120
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
if [ -z "$pass" ]; then
    cat "$out"
    echo "0 passed, 1 failed"
    exit 1
fi
[ "$rc" != 0 ] && [ "${fail:-0}" = 0 ] && fail=1
echo "$pass passed, ${fail:-0} failed"
[ "${fail:-0}" = 0 ]
