#!/bin/bash
# test_web_browser.sh: the web dashboard in real headless Chromium
# (Debian's chromium and chromium-driver, driven by Debian's
# python3-selenium) against a real sentrad on its own database with the
# synthetic Lampung demo data (73 sentra, 54 designated, 15 regencies).
# tests/web/browser_test.py holds the steps; screenshots are saved under
# $BUILD/web-test/. Where Chromium, its driver or selenium is missing (and
# scripts/deps.sh --web could not install them) the test says so and counts
# as skipped. Ends with "N passed, N failed" (", 1 skipped").
#
# Environment (set by the test runner; defaults for a manual run from the
# repository root): SENTRAD, SENTRA_CLI, SENTRA_TEST_PGDIR,
# SENTRA_TEST_SCRIPTS, SENTRA_MIGRATIONS, BUILD.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
CLI=${SENTRA_CLI:-$ROOT/bin/sentra-cli}
PGDIR=${SENTRA_TEST_PGDIR:-/tmp/sentra-test-web-pg}
SCRIPTS=${SENTRA_TEST_SCRIPTS:-$ROOT/scripts}
MIGRATIONS=${SENTRA_MIGRATIONS:-$ROOT/migrations}
BUILD=${BUILD:-$ROOT/build}
OUT=$BUILD/web-test

skip() {
    echo "test_web_browser: skipped: $1 (scripts/deps.sh --web installs it as root on Debian)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}
CHROMIUM=${SENTRA_TEST_CHROMIUM:-/usr/bin/chromium}   # another path: to see the skip
[ -x "$CHROMIUM" ] || skip "no $CHROMIUM"
[ -x /usr/bin/chromedriver ] || skip "no /usr/bin/chromedriver"
/usr/bin/python3 -c 'import selenium' 2>/dev/null || skip "no python3-selenium"

FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-web.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
die() { echo "FAIL - $1"; [ -f "$TMP/sentrad.log" ] && tail -20 "$TMP/sentrad.log"; echo "0 passed, 1 failed"; exit 1; }

"$SCRIPTS/pgcluster.sh" ensure "$PGDIR" >/dev/null || die "private PostgreSQL cluster"
DB=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_web) || die "createdb"

"$SENTRAD" serve --port 0 --port-file "$TMP/port" --host 127.0.0.1 --db "$DB" \
    --migrations "$MIGRATIONS" --web-root "$ROOT/web" --log-level warn >"$TMP/sentrad.log" 2>&1 &
PID=$!
for _ in $(seq 1 400); do
    [ -s "$TMP/port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
[ -s "$TMP/port" ] || die "sentrad did not start"
PORT=$(cat "$TMP/port")

"$SCRIPTS/demo-data.sh" "$DB" || die "demo data"
token() { "$SENTRAD" token create --role "$1" --region "$2" --label test_web --db "$DB" 2>/dev/null | tail -1; }
PROVINCE_TOKEN=$(token province 18)
DISTRICT_TOKEN=$(token district 18.04)
NATIONAL_TOKEN=$("$SENTRAD" token create --role national --label test_web --db "$DB" 2>/dev/null | tail -1)
ADMIN_TOKEN=$("$SENTRAD" token create --role admin --label test_web --db "$DB" 2>/dev/null | tail -1)
[ -n "$PROVINCE_TOKEN" ] && [ -n "$DISTRICT_TOKEN" ] && [ -n "$NATIONAL_TOKEN" ] && [ -n "$ADMIN_TOKEN" ] ||
    die "tokens"
# The numbers sentra-cli stats prints (its TOTAL row), for the overview.
CLI_TOTAL=$("$CLI" --addr "127.0.0.1:$PORT" --token "$PROVINCE_TOKEN" stats --csv | tail -1)
[ -n "$CLI_TOTAL" ] || die "sentra-cli stats"

mkdir -p "$OUT"
rm -f "$OUT"/*.png "$OUT"/*.csv
BASE="http://127.0.0.1:$PORT" PROVINCE_TOKEN=$PROVINCE_TOKEN DISTRICT_TOKEN=$DISTRICT_TOKEN \
NATIONAL_TOKEN=$NATIONAL_TOKEN ADMIN_TOKEN=$ADMIN_TOKEN \
CLI_TOTAL=$CLI_TOTAL SENTRA_CLI=$CLI ADDR="127.0.0.1:$PORT" OUT=$OUT \
    timeout 280 /usr/bin/python3 "$ROOT/tests/web/browser_test.py"
rc=$?
kill -0 "$PID" 2>/dev/null || { echo "FAIL - sentrad died during the test"; tail -20 "$TMP/sentrad.log"; FAIL=1; }
echo "screenshots: $OUT"
[ "$rc" = 0 ] && [ "$FAIL" = 0 ]
