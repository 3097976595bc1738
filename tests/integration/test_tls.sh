#!/bin/bash
# test_tls.sh: sentrad's TLS against peers nobody here wrote: the openssl
# command (s_client for versions, ALPN, ciphers, resumption; s_server as a
# server with an expired certificate), Python's ssl module and hand-made
# records (tests/interop/tls_raw.py), Python grpcio in its secure mode
# (tests/interop/grpc_tls.py), and sentra-cli (libsentra) over tls://.
# Certificates come from tests/lib/tls_pki.sh (a root, an intermediate,
# servers, clients, a rogue CA). Also: --tls-only, mutual TLS, certificate
# reloads on SIGHUP (good, bad, mismatched and expired files) and a server
# that will not start with a bad certificate. libsentra's own checks,
# reloads under load and the memory of idle TLS connections are in
# test_tls.c. Ends with "N passed, N failed".
#
# Environment (set by scripts/run-tests.sh): SENTRAD, SENTRA_CLI,
# SENTRA_TEST_PGDIR, SENTRA_TEST_SCRIPTS, SENTRA_MIGRATIONS.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
CLI=${SENTRA_CLI:-$ROOT/bin/sentra-cli}
PGDIR=${SENTRA_TEST_PGDIR:-/tmp/sentra-test-tls-pg}
SCRIPTS=${SENTRA_TEST_SCRIPTS:-$ROOT/scripts}
MIGRATIONS=${SENTRA_MIGRATIONS:-$ROOT/migrations}
INTEROP=$ROOT/tests/interop
PY=/usr/bin/python3
GRPC_PROTO=/usr/share/grpc-proto

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-tls.XXXXXX)
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
check() { # NAME CONDITION-COMMAND... (true: ok)
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}
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
# log_since FILE OFFSET: what FILE got after OFFSET bytes.
log_since() { tail -c +$(($2 + 1)) "$1"; }
size() { stat -c %s "$1"; }
# wait_log FILE OFFSET TEXT: up to 5 s for TEXT to appear after OFFSET.
wait_log() {
    for _ in $(seq 100); do
        log_since "$1" "$2" | grep -q -- "$3" && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- tools, certificates

command -v openssl >/dev/null || { bad "the openssl command installed"; finish; }
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null || { bad "python3-grpcio installed"; finish; }
PKI=$TMP/pki
"$ROOT/tests/lib/tls_pki.sh" "$PKI" >"$TMP/pki.log" 2>&1 && ok "test certificates made (tests/lib/tls_pki.sh)" ||
    { bad "tls_pki.sh" "$(tail -5 "$TMP/pki.log")"; finish; }
STUBS=$TMP/stubs
mkdir -p "$STUBS"
"$PY" -m grpc_tools.protoc -I"$ROOT/proto" -I"$GRPC_PROTO/grpc/health/v1" -I/usr/include \
    --python_out="$STUBS" --grpc_python_out="$STUBS" "$ROOT"/proto/sentra/v1/*.proto \
    "$GRPC_PROTO/grpc/health/v1/health.proto" 2>"$TMP/protoc.err" ||
    { bad "python stubs" "$(cat "$TMP/protoc.err")"; finish; }

# ---------------------------------------------------------------- servers

"$SCRIPTS/pgcluster.sh" ensure "$PGDIR" >/dev/null || { bad "PostgreSQL cluster"; finish; }
DB=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_tls) || { bad "createdb"; finish; }
DBM=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_tls_mtls) || { bad "createdb"; finish; }

# start_server DB NAME [FLAG...]: sentrad on a free port; sets PORT and PID.
start_server() {
    local pf="$TMP/$2.port" db=$1 name=$2
    shift 2
    rm -f "$pf"
    "$SENTRAD" --port 0 --port-file "$pf" --db "$db" --migrations "$MIGRATIONS" --enable-debug \
        "$@" >"$TMP/$name.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 1 400); do
        if [ -s "$pf" ]; then PORT=$(cat "$pf"); return 0; fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "sentrad did not start:"; tail -5 "$TMP/$name.log"
    return 1
}

# The main one reads its certificate from files the test replaces (reloads).
LIVE=$TMP/live
mkdir -p "$LIVE"
cp "$PKI/server.pem" "$LIVE/cert.pem"
cp "$PKI/server.key" "$LIVE/key.pem"
start_server "$DB" main --tls-cert "$LIVE/cert.pem" --tls-key "$LIVE/key.pem" --tls-handshake-timeout 1500 \
    --web-root "$ROOT/web" ||
    { bad "start the TLS server"; finish; }
MAIN_PID=$PID
MAIN=127.0.0.1:$PORT
MAINLOG=$TMP/main.log
start_server "$DBM" mtls --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem" \
    --unix "$TMP/mtls.sock" || { bad "start the mutual TLS server"; finish; }
MTLS_PID=$PID
MTLS=127.0.0.1:$PORT
MTLSLOG=$TMP/mtls.log
start_server "$DB" wrong --tls-cert "$PKI/wrongname.pem" --tls-key "$PKI/wrongname.key" --no-migrate ||
    { bad "start the wrong-name server"; finish; }
WRONG=127.0.0.1:$PORT
grep -q 'event=listening.*tls="on (plaintext too)"' "$MAINLOG" && ok "the listening line says TLS is on" ||
    bad "listening line" "$(grep listening "$MAINLOG")"
grep -q 'event=listening.*tls="required, with client certificates"' "$MTLSLOG" &&
    ok "--tls-client-ca implies --tls-only (listening line)" || bad "mtls listening line" "$(grep listening "$MTLSLOG")"

PROV=$("$SENTRAD" token create --role province --region 18 --label test_tls --db "$DB" 2>/dev/null)
MPROV=$("$SENTRAD" token create --role province --region 18 --label test_tls --db "$DBM" 2>/dev/null)
[ -n "$PROV" ] && [ -n "$MPROV" ] && ok "tokens" || { bad "tokens"; finish; }

# ---------------------------------------------------------------- openssl s_client

# sc ADDR ARGS...: a short s_client session (stdin open 0.5 s: tickets
# arrive), its output.
sc() {
    local addr=$1
    shift
    (sleep 0.5) | timeout 10 openssl s_client -connect "$addr" -CAfile "$PKI/ca.pem" -verify_return_error "$@" 2>&1
}
out=$(sc "$MAIN" -tls1_3 -servername localhost)
grep -q "^New, TLSv1.3" <<<"$out" && grep -q "Verify return code: 0 (ok)" <<<"$out" &&
    ok "s_client: TLS 1.3, chain through the intermediate verified" || bad "s_client TLS 1.3" "$(tail -20 <<<"$out")"
out=$(sc "$MAIN" -tls1_2)
grep -q "^New, TLSv1.2, Cipher is ECDHE-" <<<"$out" && ok "s_client: TLS 1.2 with ECDHE" ||
    bad "s_client TLS 1.2" "$(tail -20 <<<"$out")"
grep -q "Compression: NONE" <<<"$out" && ok "s_client: no compression" || bad "compression" "$(grep -i compression <<<"$out")"
for v in tls1 tls1_1; do
    mark=$(size "$MAINLOG")
    # The client is made willing (security level 0): the refusal is the server's.
    out=$(sc "$MAIN" -$v -cipher 'DEFAULT@SECLEVEL=0')
    if grep -q "^New, TLSv1" <<<"$out" && ! grep -q "Cipher is (NONE)" <<<"$out"; then
        bad "s_client -$v refused" "$(tail -5 <<<"$out")"
    elif wait_log "$MAINLOG" "$mark" 'event=tls_handshake_failed.*unsupported protocol'; then
        ok "s_client: -$v refused by the server (and logged)"
    else
        bad "s_client -$v refused and logged" "$(log_since "$MAINLOG" "$mark" | tail -3)"
    fi
done
out=$(sc "$MAIN" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:AES128-SHA')
grep -q "Cipher is (NONE)\|alert handshake failure" <<<"$out" && ok "s_client: CBC and RSA key exchange refused" ||
    bad "weak ciphers refused" "$(grep -E 'Cipher|alert' <<<"$out")"
for alpn in h2 http/1.1 sentra/1; do
    out=$(sc "$MAIN" -alpn "$alpn")
    grep -qx "ALPN protocol: $alpn" <<<"$out" && ok "s_client: ALPN $alpn selected" ||
        bad "ALPN $alpn" "$(grep ALPN <<<"$out")"
done
out=$(sc "$MAIN" -alpn "h2,sentra/1")
grep -qx "ALPN protocol: h2" <<<"$out" && ok "s_client: ALPN h2,sentra/1: h2 (server order)" || bad "ALPN order"
out=$(sc "$MAIN" -alpn "http/1.1,h2")
grep -qx "ALPN protocol: h2" <<<"$out" && ok "s_client: ALPN http/1.1,h2 (a browser's list): h2" ||
    bad "ALPN browser order" "$(grep ALPN <<<"$out")"
out=$(sc "$MAIN" -alpn "spdy/3")
grep -q "No ALPN negotiated" <<<"$out" && grep -q "^New, TLSv1.3" <<<"$out" &&
    ok "s_client: an unknown ALPN gets no ALPN, and the handshake goes on" || bad "unknown ALPN" "$(grep ALPN <<<"$out")"
sc "$MAIN" -tls1_2 -sess_out "$TMP/sess12" >/dev/null
out=$(sc "$MAIN" -tls1_2 -sess_in "$TMP/sess12")
grep -q "^Reused, TLSv1.2" <<<"$out" && ok "s_client: TLS 1.2 session resumed from its ticket" ||
    bad "TLS 1.2 resumption" "$(grep -E '^(New|Reused)' <<<"$out")"
sc "$MAIN" -tls1_3 -sess_out "$TMP/sess13" >/dev/null
out=$(sc "$MAIN" -tls1_3 -sess_in "$TMP/sess13")
grep -q "^Reused, TLSv1.3" <<<"$out" && ok "s_client: TLS 1.3 session resumed from its ticket" ||
    bad "TLS 1.3 resumption" "$(grep -E '^(New|Reused)' <<<"$out")"

# ---------------------------------------------------------------- curl over HTTPS

echo "--- curl"
U=https://localhost:${MAIN##*:}
CURL=(curl -sS --max-time 20 --cacert "$PKI/ca.pem")
for v in --http2 --http1.1; do
    want=${v#--http}
    want=${want%.0}
    out=$("${CURL[@]}" $v -w ' %{http_code} %{http_version}' "$U/healthz" 2>&1)
    grep -q "\"status\":\"SERVING_STATUS_SERVING\".* 200 $want\$" <<<"$out" &&
        ok "curl $v: GET /healthz over HTTPS" || bad "curl $v healthz" "$out"
    out=$("${CURL[@]}" $v -D "$TMP/hdr" -o "$TMP/index" -w '%{http_code} %{content_type}' "$U/" 2>&1)
    grep -q "^200 text/html" <<<"$out" && grep -qi "^content-security-policy: default-src 'self'" "$TMP/hdr" &&
        ok "curl $v: the web page over HTTPS, with its security headers" || bad "curl $v GET /" "$out"
    etag=$(sed -n 's/^etag: *//Ip' "$TMP/hdr" | tr -d '\r')
    out=$("${CURL[@]}" $v -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$U/" 2>&1)
    [ "$out" = 304 ] && ok "curl $v: If-None-Match gets 304" || bad "curl $v 304" "$out etag=$etag"
done
out=$("${CURL[@]}" -v -o /dev/null "$U/healthz" 2>&1)
grep -q "ALPN: server accepted h2" <<<"$out" && grep -q "SSL connection using TLSv1.3" <<<"$out" &&
    ok "curl: TLS 1.3, ALPN h2, certificate verified" || bad "curl -v" "$(grep -E 'ALPN|SSL' <<<"$out")"
out=$("${CURL[@]}" -w ' %{http_code}' -H 'Content-Type: application/json' -d '{"data":"aGFsbw=="}' \
    "$U/sentra.v1.SystemService/Ping" 2>&1)
[ "$out" = '{"data":"aGFsbw=="} 200' ] && ok "curl: a Connect JSON call over HTTPS (Ping)" || bad "curl Ping" "$out"
out=$("${CURL[@]}" -w ' %{http_code}' -H "Authorization: Bearer $PROV" -H 'Content-Type: application/json' \
    -d '{"filter":{},"pageSize":1}' "$U/sentra.v1.SentraService/ListSentra" 2>&1)
grep -q ' 200$' <<<"$out" && ok "curl: a Connect JSON call with a token over HTTPS (ListSentra)" || bad "curl List" "$out"
# The same HTTP/2 without TLS (h2c, prior knowledge): GET /healthz and the
# page are served there too (they were 404 before HTTP/2 served them).
out=$(curl -sS --max-time 20 --http2-prior-knowledge -w ' %{http_code} %{http_version}' "http://$MAIN/healthz" 2>&1)
grep -q '"status":"SERVING_STATUS_SERVING".* 200 2$' <<<"$out" && ok "curl h2c: GET /healthz over plaintext HTTP/2" ||
    bad "h2c healthz" "$out"
out=$(curl -sS --max-time 20 --http2-prior-knowledge -I -w '%{http_code}' -o /dev/null "http://$MAIN/" 2>&1)
[ "$out" = 200 ] && ok "curl h2c: HEAD / over plaintext HTTP/2" || bad "h2c HEAD /" "$out"
out=$(curl -sS --max-time 20 --http2-prior-knowledge -w '%{http_code}' -o /dev/null "http://$MAIN/no/such/file" 2>&1)
[ "$out" = 404 ] && ok "curl h2c: a file that is not there is 404" || bad "h2c 404" "$out"
for p in /no/such/file /healthz; do
    out=$(curl -sS --max-time 20 --http2-prior-knowledge -I -w '%{http_code}' -o /dev/null "http://$MAIN$p" 2>&1)
    case $p in /healthz) want=200 ;; *) want=404 ;; esac
    [ "$out" = "$want" ] && ok "curl h2c: HEAD $p is $want, without a body" || bad "h2c HEAD $p" "$out"
done
out=$("${CURL[@]}" --http1.1 -w ' %{http_code} %{http_version}' -H 'Content-Type: application/json' \
    -d '{"data":"aDE="}' "$U/sentra.v1.SystemService/Ping" 2>&1)
[ "$out" = '{"data":"aDE="} 200 1.1' ] && ok "curl --http1.1: Connect over HTTP/1.1 over TLS" || bad "curl h1" "$out"
out=$(curl -sS --max-time 20 "$U/healthz" 2>&1)
[ $? = 60 ] && ok "curl: the system store does not trust the test CA (exit 60)" || bad "curl untrusted" "$out"
out=$("${CURL[@]}" --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0' "$U/healthz" 2>&1)
rc=$?
[ "$rc" = 35 ] && ok "curl: TLS 1.1 refused (exit 35)" || bad "curl TLS 1.1" "rc=$rc $out"
out=$(curl -sS --max-time 20 --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key" \
    -w ' %{http_code}' "https://localhost:${MTLS##*:}/healthz" 2>&1)
grep -q ' 200$' <<<"$out" && ok "curl: mutual TLS with a client certificate" || bad "curl mtls" "$out"
out=$(curl -sS --max-time 20 --cacert "$PKI/ca.pem" "https://localhost:${MTLS##*:}/healthz" 2>&1)
[ $? != 0 ] && ok "curl: mutual TLS without a client certificate is refused" || bad "curl mtls no cert" "$out"

# buf curl (Go's TLS): gRPC (ALPN h2) and Connect over HTTPS, methods found
# by reflection over TLS. Pinned by tests/interop's lock file, as in
# test_grpc_interop.sh.
NODE_DIR=$ROOT/build/interop
if ! cmp -s "$INTEROP/package-lock.json" "$NODE_DIR/package-lock.json" || [ ! -d "$NODE_DIR/node_modules" ]; then
    mkdir -p "$NODE_DIR"
    cp "$INTEROP/package.json" "$INTEROP/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
        bad "npm ci in $NODE_DIR" "$(tail -5 "$TMP/npm.log")"
fi
BUF=$NODE_DIR/node_modules/.bin/buf
if [ -x "$BUF" ]; then
    out=$(timeout 60 "$BUF" curl --protocol grpc --cacert "$PKI/ca.pem" -d '{"data":"YnVm"}' \
        "$U/sentra.v1.SystemService/Ping" 2>&1)
    grep -q '"data": "YnVm"' <<<"$out" && ok "buf curl: gRPC over TLS, through reflection" || bad "buf curl grpc" "$out"
    out=$(timeout 60 "$BUF" curl --schema "$ROOT/proto" --cacert "$PKI/ca.pem" -H "authorization: Bearer $PROV" \
        -d '{"pageSize":1}' "$U/sentra.v1.SentraService/ListSentra" 2>&1)
    [ $? = 0 ] && ok "buf curl: Connect over TLS with a token" || bad "buf curl connect" "$out"
    out=$(timeout 60 "$BUF" curl --schema "$ROOT/proto" --protocol grpcweb --cacert "$PKI/ca.pem" -d '{}' \
        "$U/sentra.v1.SystemService/Ping" 2>&1)
    [ $? != 0 ] && ok "buf curl: gRPC-Web is not served (refused, not hung)" || bad "buf curl grpcweb" "$out"
    out=$(timeout 60 "$BUF" curl --schema "$ROOT/proto" --protocol grpc --cacert "$PKI/rogue-ca.pem" -d '{}' \
        "$U/sentra.v1.SystemService/Ping" 2>&1)
    grep -q "certificate" <<<"$out" && ok "buf curl: an unknown CA is refused" || bad "buf curl rogue" "$out"
else
    bad "buf installed in $NODE_DIR"
fi

# ---------------------------------------------------------------- Python ssl, raw records

run_suite "python ssl and raw records" env ADDR="$MAIN" CA="$PKI/ca.pem" LOG="$MAINLOG" STALL_ADDR="$MAIN" \
    STALL_MS=1500 SENTRAD_PID="$MAIN_PID" "$PY" "$INTEROP/tls_raw.py"

# ---------------------------------------------------------------- grpcio secure channels

run_suite "python grpcio over TLS" env ADDR="$MAIN" MTLS_ADDR="$MTLS" WRONG_ADDR="$WRONG" PKI="$PKI" TOKEN="$PROV" \
    MTLS_TOKEN="$MPROV" STUBS="$STUBS" "$PY" "$INTEROP/grpc_tls.py"

# ---------------------------------------------------------------- sentra-cli

echo "--- sentra-cli"
out=$("$CLI" --addr "tls://localhost:${MAIN##*:}" --ca "$PKI/ca.pem" ping -c 2 2>&1)
[ $? = 0 ] && grep -q "2 pings" <<<"$out" && ok "sentra-cli: ping over tls://localhost" || bad "cli ping" "$out"
out=$(SENTRA_CA=$PKI/ca.pem "$CLI" --addr "$MAIN" --tls --token "$PROV" list 2>&1)
[ $? = 0 ] && ok "sentra-cli: --tls with SENTRA_CA, a listing with a token (IP address checked)" || bad "cli --tls" "$out"
out=$(SENTRA_ADDR="tls://$MAIN" SENTRA_CA=$PKI/ca.pem "$CLI" health 2>&1)
grep -q "serving" <<<"$out" && ok "sentra-cli: SENTRA_ADDR=tls://..." || bad "cli SENTRA_ADDR" "$out"
out=$("$CLI" --addr "tls://$MAIN" --ca "$PKI/rogue-ca.pem" ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && grep -q "not accepted" <<<"$out" && ok "sentra-cli: an unknown CA is refused (exit 24)" ||
    bad "cli unknown CA" "rc=$rc $out"
out=$("$CLI" --addr "tls://$MAIN" ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && ok "sentra-cli: the system store does not trust a private CA" || bad "cli system store" "rc=$rc $out"
out=$("$CLI" --addr "tls://$WRONG" --ca "$PKI/ca.pem" ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && grep -qi "mismatch" <<<"$out" && ok "sentra-cli: a certificate for another name is refused" ||
    bad "cli wrong name" "rc=$rc $out"
out=$("$CLI" --addr "tls://$WRONG" --ca "$PKI/ca.pem" --insecure-no-hostname-check ping -c 1 2>&1)
rc=$?
[ "$rc" = 0 ] && grep -q "WARNING: --insecure-no-hostname-check" <<<"$out" &&
    ok "sentra-cli: --insecure-no-hostname-check accepts it, loudly" || bad "cli insecure" "rc=$rc $out"
out=$("$CLI" --addr "tls://$WRONG" --ca "$PKI/rogue-ca.pem" --insecure-no-hostname-check ping -c 1 2>&1)
[ $? = 24 ] && ok "sentra-cli: --insecure-no-hostname-check still verifies the chain" || bad "cli insecure chain" "$out"
out=$("$CLI" --addr "tls://$MAIN" --ca "$TMP/none.pem" ping -c 1 2>&1)
rc=$?
[ "$rc" = 2 ] && grep -q "cannot read the CA file" <<<"$out" && ok "sentra-cli: a missing CA file is a usage error" ||
    bad "cli missing CA" "rc=$rc $out"
out=$("$CLI" --addr "tls://unix:$TMP/mtls.sock" ping -c 1 2>&1)
[ $? = 2 ] && ok "sentra-cli: tls:// with a Unix socket is refused" || bad "tls unix" "$out"

# A server with an expired certificate (openssl s_server: sentrad refuses one).
SPORT=$((20000 + RANDOM % 20000))
openssl s_server -accept "127.0.0.1:$SPORT" -cert "$PKI/expired.pem" -key "$PKI/expired.key" \
    -cert_chain "$PKI/inter.pem" -quiet \
    -naccept 3 >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$SPORT) 2>/dev/null && break; sleep 0.1; done
out=$("$CLI" --addr "tls://127.0.0.1:$SPORT" --ca "$PKI/ca.pem" ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && grep -q "certificate has expired" <<<"$out" &&
    ok "sentra-cli: an expired certificate is refused (openssl s_server)" || bad "cli expired" "rc=$rc $out"

# Mutual TLS through the CLI.
M="tls://$MTLS"
out=$("$CLI" --addr "$M" --ca "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key" --token "$MPROV" list 2>&1)
[ $? = 0 ] && ok "sentra-cli: mutual TLS with a client certificate and a token" || bad "cli mtls" "$out"
mark=$(size "$MTLSLOG")
out=$("$CLI" --addr "$M" --ca "$PKI/ca.pem" ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && ok "sentra-cli: mutual TLS without a client certificate fails" || bad "cli mtls no cert" "rc=$rc $out"
wait_log "$MTLSLOG" "$mark" 'event=tls_handshake_failed.*peer did not return a certificate' &&
    ok "... and the server logs why" || bad "mtls no cert logged" "$(log_since "$MTLSLOG" "$mark" | tail -3)"
mark=$(size "$MTLSLOG")
out=$(SENTRA_CERT=$PKI/rogue-client.pem SENTRA_KEY=$PKI/rogue-client.key "$CLI" --addr "$M" --ca "$PKI/ca.pem" \
    ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && ok "sentra-cli: a client certificate from another CA fails (SENTRA_CERT)" ||
    bad "cli rogue cert" "rc=$rc $out"
wait_log "$MTLSLOG" "$mark" 'event=tls_handshake_failed.*verify=' && ok "... and the server logs the verify error" ||
    bad "rogue logged" "$(log_since "$MTLSLOG" "$mark" | tail -3)"
mark=$(size "$MTLSLOG")
out=$("$CLI" --addr "$MTLS" ping -c 1 2>&1)
rc=$?
[ "$rc" = 24 ] && ok "--tls-only: plaintext on TCP is refused" || bad "tls-only plaintext" "rc=$rc $out"
wait_log "$MTLSLOG" "$mark" 'event=conn_plaintext_refused' && ok "... with a log line" || bad "plaintext refused logged"
out=$("$CLI" --addr "unix:$TMP/mtls.sock" ping -c 1 2>&1)
[ $? = 0 ] && ok "--tls-only: the Unix socket stays plaintext" || bad "unix plaintext" "$out"
mark=$(size "$MAINLOG")
# shellcheck disable=SC2016
printf '\x16\x03\x01\x00\x05hello' | timeout 5 "$PY" -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])));s.sendall(sys.stdin.buffer.read());s.recv(100)' \
    "${WRONG##*:}" >/dev/null 2>&1
out=$("$CLI" --addr "tls://$MAIN" --ca "$PKI/ca.pem" ping -c 1 2>&1)
[ $? = 0 ] && ok "the server still serves TLS after all that" || bad "still serving" "$out"

# ---------------------------------------------------------------- reloads on SIGHUP

echo "--- reloads"
# serial ADDR: the serial number of the certificate the server presents.
serial() { sc "$1" -alpn sentra/1 | openssl x509 -noout -serial 2>/dev/null; }
want1=$(openssl x509 -in "$PKI/server.pem" -noout -serial)
want2=$(openssl x509 -in "$PKI/server2.pem" -noout -serial)
[ "$(serial "$MAIN")" = "$want1" ] && ok "before: the first certificate is served" || bad "serial before"
# A call in flight on a connection opened before the reload (2 s long).
"$CLI" --addr "tls://$MAIN" --ca "$PKI/ca.pem" sleep 2000 >"$TMP/held.out" 2>&1 &
HELD=$!
sleep 0.5
mark=$(size "$MAINLOG")
cp "$PKI/server2.pem" "$LIVE/cert.pem"
cp "$PKI/server2.key" "$LIVE/key.pem"
kill -HUP "$MAIN_PID"
wait_log "$MAINLOG" "$mark" "event=tls_reloaded" && ok "SIGHUP: tls_reloaded logged" || bad "tls_reloaded"
[ "$(serial "$MAIN")" = "$want2" ] && ok "SIGHUP: new connections get the new certificate" || bad "serial after"
wait "$HELD"
rc=$?
[ "$rc" = 0 ] && ok "SIGHUP: a call in flight across the reload is answered on its connection" ||
    bad "held connection" "rc=$rc $(cat "$TMP/held.out")"
for kind in garbage mismatch expired missing; do
    mark=$(size "$MAINLOG")
    case $kind in
    garbage) cp "$PKI/garbage.pem" "$LIVE/cert.pem" ;;
    mismatch) cp "$PKI/server.pem" "$LIVE/cert.pem"; cp "$PKI/server2.key" "$LIVE/key.pem" ;;
    expired) cp "$PKI/expired.pem" "$LIVE/cert.pem"; cp "$PKI/expired.key" "$LIVE/key.pem" ;;
    missing) rm -f "$LIVE/cert.pem" ;;
    esac
    kill -HUP "$MAIN_PID"
    if wait_log "$MAINLOG" "$mark" "level=error event=tls_reload_refused"; then
        ok "SIGHUP with a $kind certificate: refused with an error line"
    else
        bad "reload $kind refused" "$(log_since "$MAINLOG" "$mark" | tail -3)"
    fi
    [ "$(serial "$MAIN")" = "$want2" ] && ok "... and the old certificate stays" || bad "$kind: old stays"
done
log_since "$MAINLOG" 0 | grep "event=tls_reload_refused" | head -4 | sed 's/^/       /'
cp "$PKI/server2.pem" "$LIVE/cert.pem"
cp "$PKI/server2.key" "$LIVE/key.pem"

# ---------------------------------------------------------------- refusing to start

for kind in expired garbage; do
    out=$(timeout 30 "$SENTRAD" --port 0 --db "$DB" --no-migrate --tls-cert "$PKI/$kind.pem" \
        --tls-key "$PKI/expired.key" 2>&1)
    rc=$?
    [ "$rc" != 0 ] && grep -q "event=tls_cert_refused" <<<"$out" && ok "sentrad will not start with a $kind certificate" ||
        bad "start with $kind" "rc=$rc $(tail -2 <<<"$out")"
done
out=$(timeout 30 "$SENTRAD" --port 0 --db "$DB" --no-migrate --tls-only 2>&1)
[ $? = 2 ] && grep -q "need --tls-cert" <<<"$out" && ok "--tls-only without --tls-cert is a usage error" ||
    bad "tls-only alone" "$out"

kill -0 "$MAIN_PID" 2>/dev/null && kill -0 "$MTLS_PID" 2>/dev/null && ok "the servers survived every client" ||
    bad "servers survived"
finish
