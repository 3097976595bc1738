#!/bin/bash
# test_grpc_interop.sh: sentrad's gRPC side against stock clients nobody
# here wrote (tests/interop/): Python grpcio (Debian python3-grpcio, stubs
# generated from proto/ at test time with grpc_tools), Node @grpc/grpc-js
# with @grpc/proto-loader (npm, pinned by tests/interop/package-lock.json,
# installed into $BUILD/interop), `buf curl --protocol grpc` finding every
# method through server reflection alone, and nghttp (Debian
# nghttp2-client). Plus hand-made HTTP/2 frames (h2_raw.py: ping flood,
# rapid reset, bad frames, a client that never reads) and a graceful stop
# seen from a client (grpc_drain.py). Ends with "N passed, N failed".
#
# Environment (set by scripts/run-tests.sh): SENTRAD, SENTRA_CLI,
# SENTRA_TEST_PGDIR, SENTRA_TEST_SCRIPTS, SENTRA_MIGRATIONS.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
CLI=${SENTRA_CLI:-$ROOT/bin/sentra-cli}
PGDIR=${SENTRA_TEST_PGDIR:-/tmp/sentra-test-grpc-pg}
SCRIPTS=${SENTRA_TEST_SCRIPTS:-$ROOT/scripts}
MIGRATIONS=${SENTRA_MIGRATIONS:-$ROOT/migrations}
INTEROP=$ROOT/tests/interop
NODE_DIR=$ROOT/build/interop
PY=/usr/bin/python3
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -1)
GRPC_PROTO=/usr/share/grpc-proto

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-grpc.XXXXXX)
chmod 755 "$TMP"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; }
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}
# run_suite NAME CMD...: runs a client suite, shows its lines, adds its counts.
run_suite() {
    local name=$1 out=$TMP/suite.out last p f
    shift
    echo "--- $name"
    timeout 240 "$@" >"$out" 2>&1
    local rc=$?
    cat "$out"
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
    if [ -z "$last" ]; then
        bad "$name reported no summary (exit $rc)"
        return
    fi
    p=${last%% passed*}
    f=${last#*passed, }
    f=${f%% failed}
    PASS=$((PASS + p))
    FAIL=$((FAIL + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || bad "$name exited $rc"
}

# ---------------------------------------------------------------- tools

"$PY" -c 'import grpc, grpc_tools' 2>/dev/null ||
    { bad "python3-grpcio and python3-grpc-tools installed (scripts/deps.sh --install)"; finish; }
command -v node >/dev/null && command -v npm >/dev/null || { bad "nodejs and npm installed"; finish; }
command -v nghttp >/dev/null || { bad "nghttp (nghttp2-client) installed"; finish; }
[ -f "$GRPC_PROTO/grpc/health/v1/health.proto" ] || { bad "grpc-proto installed"; finish; }

# Stubs from our .proto files (and the standard ones), generated now.
STUBS=$TMP/stubs
mkdir -p "$STUBS"
if "$PY" -m grpc_tools.protoc -I"$ROOT/proto" -I"$GRPC_PROTO/grpc/health/v1" -I/usr/include \
    --python_out="$STUBS" --grpc_python_out="$STUBS" "$ROOT"/proto/sentra/v1/*.proto \
    "$ROOT"/proto/google/rpc/*.proto "$GRPC_PROTO/grpc/health/v1/health.proto" 2>"$TMP/protoc.err"; then
    ok "python stubs generated from proto/"
else
    bad "python stubs generated" "$(cat "$TMP/protoc.err")"
    finish
fi

# Node packages, pinned by the lock file; installed again only when it changed.
mkdir -p "$NODE_DIR"
if ! cmp -s "$INTEROP/package-lock.json" "$NODE_DIR/package-lock.json" || [ ! -d "$NODE_DIR/node_modules" ]; then
    cp "$INTEROP/package.json" "$INTEROP/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
        { bad "npm ci in $NODE_DIR" "$(tail -5 "$TMP/npm.log")"; finish; }
fi
BUF=$NODE_DIR/node_modules/.bin/buf
[ -x "$BUF" ] && ok "node packages installed (@grpc/grpc-js, @grpc/proto-loader, @bufbuild/buf)" ||
    { bad "buf in $NODE_DIR"; finish; }

# ---------------------------------------------------------------- servers

"$SCRIPTS/pgcluster.sh" ensure "$PGDIR" >/dev/null || { bad "PostgreSQL cluster"; finish; }
DB=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_grpc) || { bad "createdb"; finish; }
DB2=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_grpc_drain) || { bad "createdb drain"; finish; }

# start_server DB NAME [FLAG...]: sentrad on a free port; sets PORT and PID.
start_server() {
    local pf="$TMP/$2.port" db=$1 name=$2
    shift 2
    rm -f "$pf"
    "$SENTRAD" --port 0 --port-file "$pf" --db "$db" --migrations "$MIGRATIONS" --enable-debug \
        --log-level warn "$@" >"$TMP/$name.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 1 400); do
        if [ -s "$pf" ]; then PORT=$(cat "$pf"); return 0; fi
        sleep 0.05
    done
    echo "sentrad did not start:"; cat "$TMP/$name.log"
    return 1
}
start_server "$DB" main || { bad "start server"; finish; }
ADDR=127.0.0.1:$PORT
MAIN_PID=$PID
ADMIN=$("$SENTRAD" token create --role admin --label test_grpc --db "$DB" 2>/dev/null)
PROV=$("$SENTRAD" token create --role province --region 18 --label test_grpc --db "$DB" 2>/dev/null)
[ -n "$ADMIN" ] && [ -n "$PROV" ] && ok "tokens" || { bad "tokens"; finish; }

# ---------------------------------------------------------------- clients

run_suite "python grpcio" env ADDR="$ADDR" ADMIN="$ADMIN" DB="$DB" PSQL="$PSQL" STUBS="$STUBS" \
    SENTRAD_PID="$MAIN_PID" "$PY" "$INTEROP/grpc_python.py"
run_suite "node @grpc/grpc-js" env ADDR="$ADDR" TOKEN="$PROV" PROTO_DIR="$ROOT/proto" \
    HEALTH_DIR="$GRPC_PROTO/grpc/health/v1" NODE_PATH="$NODE_DIR/node_modules" node "$INTEROP/grpc_node.js"

# buf curl: no .proto files, only server reflection (v1, then v1alpha).
echo "--- buf curl"
BC=("$BUF" curl --protocol grpc --http2-prior-knowledge)
out=$(timeout 60 "${BC[@]}" --list-services "http://$ADDR" 2>&1)
for svc in sentra.v1.SentraService sentra.v1.StatsService sentra.v1.SyncService sentra.v1.TokenService \
    sentra.v1.SystemService sentra.v1.Health grpc.health.v1.Health grpc.reflection.v1.ServerReflection; do
    grep -qx "$svc" <<<"$out" && ok "buf curl: reflection lists $svc" || bad "buf curl lists $svc" "$out"
done
out=$(timeout 60 "${BC[@]}" --reflect-protocol grpc-v1alpha --list-methods "http://$ADDR" 2>&1)
grep -qx "sentra.v1.SentraService/GetSentra" <<<"$out" && ok "buf curl: reflection v1alpha lists methods" ||
    bad "buf curl v1alpha" "$out"
out=$(timeout 60 "${BC[@]}" -d '{"data":"YnVm"}' "http://$ADDR/sentra.v1.SystemService/Ping" 2>&1)
grep -q '"data": "YnVm"' <<<"$out" && ok "buf curl: Ping through reflection" || bad "buf curl Ping" "$out"
out=$(timeout 60 "${BC[@]}" -H "authorization: Bearer $PROV" \
    -d '{"sentra":{"regencyCode":"18.71","name":"Sentra Buf Curl","commodity":"kopi","mainProduct":"kopi",
        "kbliCode":"10761","kbliVersion":"KBLI_VERSION_2020","sectorGroup":"SECTOR_GROUP_FOOD",
        "status":"STATUS_FORMED","formedOn":"2020-05-05"}}' \
    "http://$ADDR/sentra.v1.SentraService/CreateSentra" 2>&1)
ID=$(sed -n 's/.*"id": "\([0-9a-f-]*\)".*/\1/p' <<<"$out" | head -1)
[ -n "$ID" ] && ok "buf curl: CreateSentra with a token" || bad "buf curl CreateSentra" "$out"
out=$(timeout 60 "${BC[@]}" -H "authorization: Bearer $PROV" -d "{\"id\":\"$ID\"}" \
    "http://$ADDR/sentra.v1.SentraService/GetSentra" 2>&1)
grep -q '"name": "Sentra Buf Curl"' <<<"$out" && ok "buf curl: GetSentra" || bad "buf curl GetSentra" "$out"
out=$(timeout 60 "${BC[@]}" -H "authorization: Bearer $PROV" -d '{"id":"00000000-0000-4000-8000-000000000000"}' \
    "http://$ADDR/sentra.v1.SentraService/GetSentra" 2>&1)
rc=$?
[ "$rc" != 0 ] && grep -q '"code": "not_found"' <<<"$out" && ok "buf curl: NOT_FOUND as an error" ||
    bad "buf curl NOT_FOUND" "rc=$rc $out"
out=$(timeout 60 "${BC[@]}" -d '{}' "http://$ADDR/grpc.health.v1.Health/Check" 2>&1)
grep -q '"status": "SERVING"' <<<"$out" && ok "buf curl: grpc.health.v1.Health/Check" || bad "buf curl health" "$out"

# The request log: one line per call, with the code its client got. A
# unary answer made after a query (GetSentra) once closed its stream while
# the call was still being answered: the close cancelled the answered
# call, which logged CANCELLED and then OK.
echo "--- request log"
start_server "$DB" rlog --request-log --log-level info || { bad "start request-log server"; finish; }
RLOG_PID=$PID
printf '\x00\x00\x00\x00\x26\x0a\x24%s' "$ID" >"$TMP/get.bin"
out=$(timeout 30 nghttp -v -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $PROV" \
    -d "$TMP/get.bin" "http://127.0.0.1:$PORT/sentra.v1.SentraService/GetSentra" 2>&1)
grep -q 'grpc-status: 0' <<<"$out" && ok "nghttp: gRPC GetSentra answers grpc-status 0" || bad "nghttp GetSentra" "$(tail -5 <<<"$out")"
out=$(timeout 30 curl -sS --http2-prior-knowledge -H 'content-type: application/json' -H "authorization: Bearer $PROV" \
    -d "{\"id\":\"$ID\"}" "http://127.0.0.1:$PORT/sentra.v1.SentraService/GetSentra" 2>&1)
grep -q '"name":"Sentra Buf Curl"' <<<"$out" && ok "curl: Connect GetSentra over HTTP/2" || bad "curl h2 GetSentra" "$out"
sleep 0.3
lines=$(grep -c 'event=request method=/sentra.v1.SentraService/GetSentra' "$TMP/rlog.log")
oks=$(grep -c 'event=request method=/sentra.v1.SentraService/GetSentra code=OK' "$TMP/rlog.log")
[ "$lines" = 2 ] && [ "$oks" = 2 ] && ok "request log: one OK line per call over HTTP/2 (gRPC and Connect)" ||
    bad "request log over HTTP/2" "$(grep 'event=request' "$TMP/rlog.log")"
kill "$RLOG_PID"
wait "$RLOG_PID" 2>/dev/null

# nghttp: a content-type that is not gRPC gets HTTP 415.
echo "--- nghttp"
printf 'x' >"$TMP/body"
out=$(timeout 30 nghttp -v -H ':method: POST' -H 'content-type: text/plain' -d "$TMP/body" \
    "http://$ADDR/sentra.v1.SystemService/Ping" 2>&1)
grep -q ':status: 415' <<<"$out" && ok "nghttp: text/plain gets 415" || bad "nghttp 415" "$(tail -5 <<<"$out")"

# The native protocol on the same port, beside HTTP/2.
"$CLI" --addr "$ADDR" ping -c 1 >/dev/null 2>&1 && ok "the native protocol still works on the same port" ||
    bad "native on the same port"

# A server with short keepalive and idle timeouts, for h2_raw.py's last part.
start_server "$DB2" idle --keepalive 300 --idle-timeout 1000 || { bad "start idle server"; finish; }
IDLE_PID=$PID
run_suite "raw HTTP/2 frames" env ADDR="$ADDR" SENTRAD_PID="$MAIN_PID" STUBS="$STUBS" \
    IDLE_ADDR="127.0.0.1:$PORT" "$PY" "$INTEROP/h2_raw.py"
kill "$IDLE_PID"
wait "$IDLE_PID" 2>/dev/null

kill -0 "$MAIN_PID" 2>/dev/null && ok "sentrad survived every client" || bad "sentrad survived"

# ---------------------------------------------------------------- graceful stop

start_server "$DB2" drain || { bad "start drain server"; finish; }
run_suite "graceful stop" env ADDR="127.0.0.1:$PORT" SENTRAD_PID="$PID" STUBS="$STUBS" "$PY" "$INTEROP/grpc_drain.py"
wait "$PID"
rc=$?
[ "$rc" = 0 ] && ok "the drained server exited 0" || bad "drained server exit status" "$rc; $(tail -5 "$TMP/drain.log")"

finish
