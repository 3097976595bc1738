#!/bin/bash
# test_token_cli.sh: `sentrad token create|list|revoke` against the test
# database: stdout of create holds only the secret, the database only its
# SHA-256, list shows the token, revoke marks it (twice is harmless), and
# bad input is refused with the documented exit codes (1 failed, 2 usage)
# and changes nothing. Whether a token is accepted is asked of the shared
# server itself (sentra-cli), never of a copy of its SQL: a token check
# that drifts from what the CLI stores fails here. Ends with "N passed, N
# failed".
#
# Environment (set by scripts/run-tests.sh): SENTRAD, SENTRA_CLI,
# SENTRA_TEST_DB (the shared server's database, already migrated),
# SENTRA_TEST_ADDR (the shared server).
set -u

SENTRAD=${SENTRAD:-bin/sentrad}
CLI=${SENTRA_CLI:-bin/sentra-cli}
DB=${SENTRA_TEST_DB:-}
ADDR=${SENTRA_TEST_ADDR:-}
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-token.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; }
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected [$2], got [$3]"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}
sql() { "$PSQL" -X -Atq -d "$DB" -c "$1"; }

[ -n "$DB" ] || { bad "SENTRA_TEST_DB is set"; finish; }
[ -n "$ADDR" ] || { bad "SENTRA_TEST_ADDR is set"; finish; }

# What the server answers a request with token $1: sentra-cli's exit code,
# 15 (NOT_FOUND: the token was accepted; nobody has that id) or 26
# (UNAUTHENTICATED).
served() {
    "$CLI" --addr "$ADDR" --token "$1" --quiet get 00000000-0000-4000-8000-000000000001 \
        >/dev/null 2>&1
    echo $?
}
# The same, until it says $2 (a revocation reaches the server by NOTIFY:
# give it up to 10 s).
served_becomes() {
    local i got
    for i in $(seq 50); do
        got=$(served "$1")
        [ "$got" = "$2" ] && break
        sleep 0.2
    done
    echo "$got"
}
count() { sql "SELECT count(*) FROM api_token"; }
before=$(count)

# ---------------------------------------------------------------- create

LABEL="token cli test $$"
"$SENTRAD" token create --db "$DB" --role district --region 18.71 --label "$LABEL" \
    >"$TMP/out" 2>"$TMP/err"
check "create exits 0" 0 $?
SECRET=$(cat "$TMP/out")
check "stdout is one line" 1 "$(wc -l <"$TMP/out")"
if [[ "$SECRET" =~ ^snt_[a-z2-7]{52}$ ]]; then ok "secret is snt_ + 52 base32"; else bad "secret shape" "$SECRET"; fi
ID=$(sed -n 's/^created token \([0-9a-f-]*\) .*/\1/p' "$TMP/err")
[ -n "$ID" ] && ok "details on stderr" || bad "details on stderr" "$(cat "$TMP/err")"
if grep -q -- "$SECRET" "$TMP/err"; then bad "secret not on stderr"; else ok "secret not on stderr"; fi
check "the server accepts it" 15 "$(served "$SECRET")"
check "as a district token (not admin)" 17 \
    "$("$CLI" --addr "$ADDR" --token "$SECRET" --quiet tokens list >/dev/null 2>&1; echo $?)"
check "stored as its SHA-256" "$ID|district|18.71" \
    "$(sql "SELECT id, role, coalesce(region_code,'') FROM api_token WHERE secret_hash = sha256(convert_to('$SECRET','UTF8'))")"
check "a secret never made is refused" 26 "$(served "snt_$(printf 'a%.0s' $(seq 52))")"
check "only the hash is stored" 0 \
    "$(sql "SELECT count(*) FROM api_token WHERE position('$SECRET' in encode(secret_hash, 'escape')) > 0 OR label LIKE '%$SECRET%'")"

SECRET2=$("$SENTRAD" token create --db "$DB" --role national 2>/dev/null)
[ -n "$SECRET2" ] && [ "$SECRET2" != "$SECRET" ] && ok "secrets differ" || bad "secrets differ"

# ---------------------------------------------------------------- list

"$SENTRAD" token list --db "$DB" >"$TMP/list" 2>"$TMP/err"
check "list exits 0" 0 $?
if grep -q "^$ID  district  18.71 .*$LABEL\$" "$TMP/list"; then ok "list shows the token"; else bad "list shows the token" "$(cat "$TMP/list")"; fi

# ---------------------------------------------------------------- revoke

"$SENTRAD" token revoke "$ID" --db "$DB" 2>"$TMP/err"
check "revoke exits 0" 0 $?
check "revoked" "t" "$(sql "SELECT revoked_at IS NOT NULL FROM api_token WHERE id = '$ID'")"
first=$(sql "SELECT revoked_at FROM api_token WHERE id = '$ID'")
"$SENTRAD" token revoke "$ID" --db "$DB" 2>/dev/null
check "revoking again exits 0" 0 $?
check "revocation time kept" "$first" "$(sql "SELECT revoked_at FROM api_token WHERE id = '$ID'")"
check "the server refuses it" 26 "$(served_becomes "$SECRET" 26)"
check "the other token still works" 15 "$(served "$SECRET2")"

# ---------------------------------------------------------------- refused

after_good=$(count)
run() { "$SENTRAD" token "$@" --db "$DB" >"$TMP/out" 2>"$TMP/err"; echo $?; }
check "unknown role: usage" 2 "$(run create --role king)"
check "district without region: usage" 2 "$(run create --role district)"
check "national with region: usage" 2 "$(run create --role national --region 18)"
check "district on a province: failed" 1 "$(run create --role district --region 18)"
check "province on a regency: failed" 1 "$(run create --role province --region 18.71)"
check "unknown region: failed" 1 "$(run create --role district --region 18.99)"
check "nothing printed on failure" "" "$(cat "$TMP/out")"
check "revoke of an unknown id: failed" 1 "$(run revoke 00000000-0000-4000-8000-000000000000)"
check "revoke without id: usage" 2 "$(run revoke)"
check "unknown command: usage" 2 "$(run frobnicate)"
check "bad input stored nothing" "$after_good" "$(count)"
check "two tokens made in all" $((before + 2)) "$(count)"

"$SENTRAD" token list --db "host=/nonexistent-sentra-socket dbname=x" >/dev/null 2>&1
check "unreachable database: failed" 1 $?

finish
