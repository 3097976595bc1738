#!/bin/bash
# test_strict_decoder.sh: the shared server's answers to hostile method
# names and update masks decode in Python's strict protobuf (issue 13,
# item 14; tests/integration/strict_decoder.py says why and how). Ends with
# "N passed, N failed".
#
# Environment (set by scripts/run-tests.sh): SENTRA_TEST_ADDR,
# SENTRA_TEST_DB, SENTRAD.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d /tmp/sentra-test-strict.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL - $1"; echo "0 passed, 1 failed"; exit 1; }

[ -n "${SENTRA_TEST_ADDR:-}" ] && [ -n "${SENTRA_TEST_DB:-}" ] ||
    fail "run through scripts/run-tests.sh (make test)"
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null ||
    fail "python3-protobuf is missing (scripts/deps.sh --install)"
protoc --python_out="$TMP" -I"$ROOT/proto" "$ROOT"/proto/sentra/v1/*.proto ||
    fail "protoc --python_out"
TOKEN=$("${SENTRAD:-$ROOT/bin/sentrad}" token create --db "$SENTRA_TEST_DB" --role district \
    --region 18.71 --label test_strict_decoder 2>/dev/null | tail -1)
[ -n "$TOKEN" ] || fail "token create"
/usr/bin/python3 "$ROOT/tests/integration/strict_decoder.py" "$SENTRA_TEST_ADDR" "$TOKEN" "$TMP"
