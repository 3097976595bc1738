#!/bin/bash
# test_stream_connect.sh: SyncService/StreamChanges over Connect's streaming
# envelopes (application/connect+json and +proto, HTTP/1.1 chunked and
# HTTP/2 with prior knowledge), read by curl and by buf curl: the catch-up,
# the news of being caught up, a record written by another client arriving
# on the open stream, and the end of the stream with its status. Ends with
# "N passed, N failed".
#
# Environment (set by scripts/run-tests.sh): SENTRAD, SENTRA_TEST_PGDIR,
# SENTRA_TEST_SCRIPTS, SENTRA_MIGRATIONS.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
PGDIR=${SENTRA_TEST_PGDIR:-/tmp/sentra-test-streamc-pg}
SCRIPTS=${SENTRA_TEST_SCRIPTS:-$ROOT/scripts}
MIGRATIONS=${SENTRA_MIGRATIONS:-$ROOT/migrations}
NODE_DIR=$ROOT/build/interop
INTEROP=$ROOT/tests/interop

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-streamc.XXXXXX)
chmod 755 "$TMP"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2" | head -c 2000 && echo; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected [$2], got [$3]"; fi; }
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

for c in curl jq; do
    command -v $c >/dev/null || { bad "$c is installed (scripts/deps.sh)"; finish; }
done
"$SCRIPTS/pgcluster.sh" ensure "$PGDIR" >/dev/null || { bad "private PostgreSQL cluster"; finish; }
DB=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_streamc) || { bad "createdb"; finish; }

PF=$TMP/port
"$SENTRAD" serve --db "$DB" --port 0 --port-file "$PF" --migrations "$MIGRATIONS" \
    --log-level warn >"$TMP/sentrad.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 400); do [ -s "$PF" ] && break; sleep 0.05; done
[ -s "$PF" ] || { bad "sentrad started" "$(cat "$TMP/sentrad.log")"; finish; }
U=http://127.0.0.1:$(cat "$PF")
tok() { "$SENTRAD" token create --db "$DB" "$@" --label test_stream_connect 2>/dev/null | tail -1; }
PROV=$(tok --role province --region 18)
DIST=$(tok --role district --region 18.71)
[ -n "$PROV" ] && [ -n "$DIST" ] && ok "sentrad and tokens" || { bad "tokens"; finish; }

# create NAME REGENCY: a record through Connect (JSON); prints its id.
create() {
    curl -s -H "Authorization: Bearer $PROV" -H 'Content-Type: application/json' \
        -d "{\"sentra\":{\"regencyCode\":\"$2\",\"name\":\"$1\",\"kbliCode\":\"13912\",
             \"kbliVersion\":\"KBLI_VERSION_2020\",\"sectorGroup\":\"SECTOR_GROUP_TEXTILES\",
             \"status\":\"STATUS_FORMED\"}}" "$U/sentra.v1.SentraService/CreateSentra" | jq -r .id
}
for i in 1 2 3 4 5; do create "Sentra Connect $i" 18.71 >>"$TMP/ids"; done
create "Sentra Connect elsewhere" 18.72 >"$TMP/other"
[ "$(grep -c . "$TMP/ids")" = 5 ] && ok "five records in 18.71, one in 18.72" || bad "records" "$(cat "$TMP/ids")"

# envs FILE: one line per envelope, "FLAGS PAYLOAD".
envs() {
    /usr/bin/python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
i = 0
while i + 5 <= len(d):
    n = int.from_bytes(d[i + 1:i + 5], "big")
    print(d[i], d[i + 5:i + 5 + n].decode("utf-8", "replace"))
    i += 5 + n
' "$1"
}
# One enveloped request: {"limit":2}.
printf '\x00\x00\x00\x00\x0b{"limit":2}' >"$TMP/req"

for proto in 1.1 2; do
    flag=$([ $proto = 2 ] && echo --http2-prior-knowledge || echo --http1.1)
    out=$TMP/stream.$proto
    # The stream for 3 s (Connect-Timeout-Ms); a record made meanwhile by
    # another client must arrive on it before the end.
    curl -s -N $flag -D "$out.h" -o "$out" -H "Authorization: Bearer $DIST" \
        -H 'Content-Type: application/connect+json' -H 'Connect-Timeout-Ms: 3000' \
        --data-binary @"$TMP/req" "$U/sentra.v1.SyncService/StreamChanges" &
    cpid=$!
    PIDS+=($cpid)
    sleep 1
    NEW=$(create "Sentra Connect live $proto" 18.71)
    wait $cpid
    grep -qi '^content-type: application/connect+json' <(tr -d '\r' <"$out.h") &&
        ok "HTTP/$proto: 200 application/connect+json" || bad "HTTP/$proto content type" "$(cat "$out.h")"
    envs "$out" >"$out.e"
    # Messages (flags 0) then the end (flags 2).
    msgs=$(grep -c '^0 ' "$out.e")
    last=$(tail -1 "$out.e")
    check "HTTP/$proto: the stream ends at its deadline with the status in the last envelope" \
        "2 deadline_exceeded" "$(cut -c1 <<<"$last") $(cut -c3- <<<"$last" | jq -r .error.code)"
    sed -n 's/^0 //p' "$out.e" >"$out.m"
    got=$(jq -r '.changes[]?.id' "$out.m" | sort)
    want=$( (cat "$TMP/ids"; [ $proto = 2 ] && echo "$NEW1"; echo "$NEW") | sort)
    check "HTTP/$proto: every record of 18.71 once, the live one included, none of 18.72" "$want" "$got"
    check "HTTP/$proto: at most 2 records a message" "true" \
        "$(jq -s 'map((.changes // []) | length) | max <= 2' "$out.m")"
    check "HTTP/$proto: a message says the catch-up is done (more false) before the live record" "true" \
        "$(jq -s --arg id "$NEW" '(map(.more != true) | index(true)) < (map([(.changes // [])[].id] | index($id) != null) | index(true))' "$out.m")"
    [ -n "$(jq -r 'select(.nextCursor != null) | .nextCursor' "$out.m" | tail -1)" ] &&
        ok "HTTP/$proto: messages carry their cursor" || bad "HTTP/$proto: cursors"
    NEW1=$NEW
done

# Binary messages (application/connect+proto): the first is a
# StreamChangesResponse with two records.
printf '\x00\x00\x00\x00\x02\x18\x02' >"$TMP/req.bin"     # limit = 2
curl -s -o "$TMP/stream.bin" -H "Authorization: Bearer $DIST" -H 'Content-Type: application/connect+proto' \
    -H 'Connect-Timeout-Ms: 1000' --data-binary @"$TMP/req.bin" "$U/sentra.v1.SyncService/StreamChanges"
n=$(/usr/bin/python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
n = int.from_bytes(d[1:5], "big")
m = d[5:5 + n]
# count field 1 (changes, length-delimited) at the top level
i = c = 0
while i < len(m):
    tag = m[i]; i += 1
    ln = 0; s = 0
    while True:
        b = m[i]; i += 1; ln |= (b & 0x7f) << s; s += 7
        if b < 0x80: break
    if tag >> 3 == 1: c += 1
    i += ln if tag & 7 == 2 else 0
print(d[0], c)' "$TMP/stream.bin")
check "connect+proto: the first envelope holds two records" "0 2" "$n"

# A stock Connect client: buf curl, the schema from proto/.
if [ -x "$NODE_DIR/node_modules/.bin/buf" ] || { mkdir -p "$NODE_DIR" && cp "$INTEROP/package.json" "$INTEROP/package-lock.json" "$NODE_DIR/" &&
        (cd "$NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1; }; then
    export BUF_CACHE_DIR=$TMP/buf-cache
    timeout 30 "$NODE_DIR/node_modules/.bin/buf" curl --schema "$ROOT/proto" --timeout 2s \
        -H "Authorization: Bearer $DIST" -d '{"limit":3}' "$U/sentra.v1.SyncService/StreamChanges" \
        >"$TMP/buf.out" 2>"$TMP/buf.err"
    got=$(jq -r '.changes[]?.id' "$TMP/buf.out" 2>/dev/null | sort -u | grep -c .)
    check "buf curl reads the stream: every record of 18.71" 7 "$got"
else
    bad "buf installed in $NODE_DIR" "$(tail -3 "$TMP/npm.log")"
fi

# Refusals arrive in the end envelope (HTTP 200).
printf '\x00\x00\x00\x00\x0f{"cursor":"zz"}' >"$TMP/bad.req"
curl -s -o "$TMP/bad.out" -w '%{http_code}' -H "Authorization: Bearer $DIST" \
    -H 'Content-Type: application/connect+json' --data-binary @"$TMP/bad.req" \
    "$U/sentra.v1.SyncService/StreamChanges" >"$TMP/code"
check "a bad cursor: 200 and invalid_argument in the end envelope" "200 2 invalid_argument" \
    "$(cat "$TMP/code") $(envs "$TMP/bad.out" | cut -c1) $(envs "$TMP/bad.out" | cut -c3- | jq -r .error.code)"
curl -s -o "$TMP/unauth.out" -H 'Content-Type: application/connect+json' --data-binary @"$TMP/req" \
    "$U/sentra.v1.SyncService/StreamChanges"
check "no token: unauthenticated in the end envelope" "unauthenticated" \
    "$(envs "$TMP/unauth.out" | cut -c3- | jq -r .error.code)"

finish
