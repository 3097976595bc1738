#!/bin/bash
# test_refused.sh: a connection refused before it chose a protocol (over
# --max-connections: conn_accept, server/transport/refuse.c) is answered in
# the protocol the client speaks, as stock clients nobody here wrote see
# it: curl over HTTP/1.1 (503, Connection: close, the reason), nghttp and
# curl with HTTP/2 prior knowledge (the server's SETTINGS, then GOAWAY with
# last_stream_id 0 and the reason, a second after connecting), Python
# grpcio (refused, connecting again about once a second rather than in a
# loop), and sentra-cli over the native protocol (GOAWAY
# RESOURCE_EXHAUSTED). tests/integration/test_refused.c checks the bytes.
# Ends with "N passed, N failed".
#
# Environment (set by scripts/run-tests.sh): SENTRAD, SENTRA_CLI,
# SENTRA_TEST_PGDIR, SENTRA_TEST_SCRIPTS, SENTRA_MIGRATIONS.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
CLI=${SENTRA_CLI:-$ROOT/bin/sentra-cli}
PGDIR=${SENTRA_TEST_PGDIR:-/tmp/sentra-test-refused-pg}
SCRIPTS=${SENTRA_TEST_SCRIPTS:-$ROOT/scripts}
MIGRATIONS=${SENTRA_MIGRATIONS:-$ROOT/migrations}
PY=/usr/bin/python3

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/sentra-test-refused.XXXXXX)
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
has() { # has NAME HAYSTACK NEEDLE
    if grep -qF -- "$3" <<<"$2"; then ok "$1"; else bad "$1" "no [$3] in: $2"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

for c in curl nghttp; do
    command -v $c >/dev/null || { bad "$c is installed (scripts/deps.sh)"; finish; }
done
"$PY" -c 'import grpc' 2>/dev/null || { bad "python3-grpcio installed (scripts/deps.sh)"; finish; }

# ---------------------------------------------------------------- a server with one place

"$SCRIPTS/pgcluster.sh" ensure "$PGDIR" >/dev/null || { bad "PostgreSQL cluster"; finish; }
DB=$("$SCRIPTS/pgcluster.sh" createdb "$PGDIR" sentra_refused) || { bad "createdb"; finish; }
# TLS too: a refused TLS client must be answered as refused, not served
# because ALPN chose its protocol.
sh "$ROOT/tests/lib/tls_pki.sh" "$TMP/pki" >/dev/null 2>&1 || { bad "test certificates (tls_pki.sh)"; finish; }
"$SENTRAD" --port 0 --port-file "$TMP/port" --db "$DB" --migrations "$MIGRATIONS" --max-connections 1 \
    --tls-cert "$TMP/pki/server.pem" --tls-key "$TMP/pki/server.key" --log-level debug >"$TMP/sentrad.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 1 400); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || { bad "sentrad started" "$(tail -5 "$TMP/sentrad.log")"; finish; }
PORT=$(cat "$TMP/port")
ADDR=127.0.0.1:$PORT

# The one place, taken by a client that keeps its connection open after
# an answer (HTTP/1.1 keep-alive): tried again while the server still
# counts a connection that just closed.
"$PY" - "$PORT" >"$TMP/holder.out" 2>&1 <<'EOF' &
import socket, sys, time
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: sentra\r\n\r\n")
    if s.recv(4096).startswith(b"HTTP/1.1 200"):
        print("holding", flush=True)
        time.sleep(60)
        sys.exit(0)
    s.close()
    time.sleep(0.1)
print("never served", flush=True)
EOF
HOLDER=$!
PIDS+=("$HOLDER")
for _ in $(seq 1 100); do grep -q . "$TMP/holder.out" && break; sleep 0.1; done
grep -q holding "$TMP/holder.out" && ok "one client holds the only place" ||
    { bad "a client holds the only place" "$(cat "$TMP/holder.out")"; finish; }


# ---------------------------------------------------------------- the clients

out=$(timeout 20 curl -s -i "http://$ADDR/healthz" 2>&1)
has "curl (HTTP/1.1): 503" "$out" "HTTP/1.1 503 Service Unavailable"
has "curl (HTTP/1.1): Connection: close" "$out" "Connection: close"
has "curl (HTTP/1.1): the reason in the body" "$out" "too many connections"

out=$(timeout 20 nghttp -v "http://$ADDR/healthz" 2>&1)
has "nghttp (HTTP/2): the server's SETTINGS" "$out" "recv SETTINGS frame"
has "nghttp (HTTP/2): GOAWAY naming no stream, NO_ERROR, the reason" "$out" \
    "(last_stream_id=0, error_code=NO_ERROR(0x00), opaque_data(20)=[too many connections])"
has "nghttp (HTTP/2): nothing processed" "$out" "processed=0"

start=$(date +%s%N)
timeout 20 curl -s --http2-prior-knowledge "http://$ADDR/healthz" >/dev/null 2>&1
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$ms" -lt 5000 ] && ok "curl (HTTP/2 prior knowledge): an error within 5 s (exit $rc, $ms ms)" ||
    bad "curl (HTTP/2 prior knowledge) fails within 5 s" "exit $rc after $ms ms"

# grpcio: a refused HTTP/2 connection counts as made (SETTINGS came) and
# gRPC connects again at once after the GOAWAY, without backoff; the
# server answers such a connection only after a second (refuse.c), so the
# call waits out its deadline at about one connection a second instead of
# thousands (3,207 in 8 s when answered at once).
before=$(grep -c 'event=conn_refused.*protocol=h2' "$TMP/sentrad.log")
out=$(timeout 30 "$PY" - "$ADDR" <<'EOF' 2>&1
import sys, time, grpc
ch = grpc.insecure_channel(sys.argv[1])
ping = ch.unary_unary("/sentra.v1.SystemService/Ping")
try:
    ping(b"", timeout=4)
    print("answered")
except grpc.RpcError as e:
    print(e.code())
EOF
)
conns=$(($(grep -c 'event=conn_refused.*protocol=h2' "$TMP/sentrad.log") - before))
if grep -qE "StatusCode.(UNAVAILABLE|DEADLINE_EXCEEDED)" <<<"$out" && [ "$conns" -ge 1 ] && [ "$conns" -le 8 ]; then
    ok "grpcio: refused ($out), $conns connections in 4 s"
else
    bad "grpcio: refused, at most 8 connections in 4 s" "$out; $conns connections"
fi

# Over TLS: curl offers ALPN h2 (refused as HTTP/2 is: an error, not 200)
# and, with --http1.1, http/1.1 (503).
out=$(timeout 20 curl -s -i --cacert "$TMP/pki/ca.pem" "https://localhost:$PORT/healthz" 2>&1)
rc=$?
if [ "$rc" != 0 ] && ! grep -q 'HTTP/2 200' <<<"$out"; then
    ok "curl (TLS, ALPN h2): refused, not served (exit $rc)"
else
    bad "curl (TLS, ALPN h2): refused, not served" "exit $rc: $out"
fi
out=$(timeout 20 curl -s -i --http1.1 --cacert "$TMP/pki/ca.pem" "https://localhost:$PORT/healthz" 2>&1)
has "curl (TLS, ALPN http/1.1): 503" "$out" "HTTP/1.1 503 Service Unavailable"

out=$(timeout 20 "$CLI" --addr "$ADDR" ping -c 1 2>&1)
has "sentra-cli (native): GOAWAY RESOURCE_EXHAUSTED" "$out" "GOAWAY (RESOURCE_EXHAUSTED: too many connections)"

# ---------------------------------------------------------------- served again

kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null
code=000
for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/healthz")
    [ "$code" = 200 ] && break
    sleep 0.1
done
[ "$code" = 200 ] && ok "served again once the place is free" || bad "served again" "HTTP $code"
kill -0 "$SPID" 2>/dev/null && ok "sentrad still runs" || bad "sentrad still runs"

finish
