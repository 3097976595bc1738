#!/bin/bash
# run.sh: `make bench`. Measures sentrad against the ceilings of the tools
# it is built on, in the same run, on a private throwaway cluster.
#
#   bench/run.sh [--quick] [--runs N] [--seconds S] [--clients C]
#                [--records N] [--members N] [--idle N] [--keep]
#
#   --quick      1 run of 2 s each, 20,000 records, 100,000 members, 2,000
#                idle connections
#   --runs N     repetitions of every measurement (default 3); medians shown
#   --seconds S  length of each timed measurement (default 5)
#   --clients C  concurrency (default 16)
#   --records N  national-scale records loaded (default 100,000)
#   --members N  member businesses loaded over them (default 1,000,000), with
#                a tenth as many obstacles and as many assistance records
#   --idle N     idle connections for the memory test (default 10,000)
#   --keep       keep the work directory (cluster, logs) afterwards
#
# Environment: LOADGEN (build/bench/loadgen), SENTRAD (bin/sentrad),
# GRPCPP_PING (build/bench/grpcpp/grpcpp_ping).
#
# What runs: a PostgreSQL cluster in a fresh directory under /tmp
# (scripts/pgcluster.sh), loaded by scripts/gen-national.sh; sentrad on a
# free port with its default settings; a private redis-server (no
# persistence) on another free port; pgbench in a database of its own in
# the same cluster. Then, rounds interleaving ours and the ceiling so that
# the machine's noise hits both alike:
#
#   ping   loadgen Ping                      vs redis-benchmark -t ping (PING_MBULK)
#   get    loadgen GetSentra (random ids)    vs pgbench -S -M prepared
#          (over sentrad's Unix socket, as pgbench reaches PostgreSQL;
#          also with 4 in flight a connection, and over TCP)
#   http   GetSentra and GetStatistics in JSON over HTTP/1.1 (Connect,
#          wrk keep-alive, bench/wrk_connect.lua) vs the same calls over
#          the native protocol on TCP (loadgen)
#   list   loadgen ListSentra (50 a page)    (no ceiling)
#   scale  GetSentra and GetStatistics through HAProxy to two sentrad on
#          the same database vs one sentrad over TCP (issue 17)
#   stats  loadgen GetStatistics by province vs pgbench running the same GROUP BY
#   pull   loadgen full PullChanges          vs COPY out of the same rows
#   members loadgen ListMembers, a regency's first page of 100
#                                            vs pgbench, the same page in plain SQL
#   mstats loadgen GetStatistics of members by size class, national
#                                            vs pgbench, the GROUP BY over member and sentra
#   pullk  loadgen full PullChanges of every kind (members included)
#                                            vs COPY out of every live record of every kind
#   stream loadgen StreamChanges catch-up    vs COPY out of sentra_pull (the
#          from the empty cursor                same live records)
#   push   loadgen PushChanges, 100 a batch  vs pgbench single-row inserts, COPY in
#   idle   N idle connections: sentrad's VmRSS
#   grpc   h2load (16 clients, one stream each) gRPC Ping against sentrad and
#          against a stock gRPC C++ server (bench/grpcpp_ping.cc, the same
#          system.proto), and gRPC GetSentra against native GetSentra
#          (loadgen over TCP), both with one fixed id
#   tls    a third sentrad with --tls-cert (a certificate of
#          scripts/dev-cert.sh, ECDSA P-256): GetSentra over TLS 1.3 with
#          resumed sessions vs the same in plaintext on that server; full
#          and resumed handshakes per second (loadgen, 16 clients: connect,
#          handshake, one Ping, close) vs plaintext connections; full
#          handshakes with `openssl s_time -new` against sentrad vs against
#          `openssl s_server` (the same certificate); N idle TLS
#          connections: that server's VmRSS (first, on it fresh)
#
# All clients run at --clients connections with one request in flight
# each (no pipelining), pgbench with one thread (-j 1) like loadgen and
# redis-benchmark. The printed table gives medians and the ratio ours /
# ceiling against the targets of issue 8. Nothing here is a test: numbers
# are reported, never asserted.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
LOADGEN=${LOADGEN:-build/bench/loadgen}
SENTRAD=${SENTRAD:-bin/sentrad}
GRPCPP_PING=${GRPCPP_PING:-build/bench/grpcpp/grpcpp_ping}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PSQL=$PGBIN/psql
PGBENCH=$PGBIN/pgbench

RUNS=3
SECS=5
CLIENTS=16
RECORDS=100000
MEMBERS=1000000
IDLE=10000
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) RUNS=1; SECS=2; RECORDS=20000; MEMBERS=100000; IDLE=2000 ;;
    --runs) RUNS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --records) RECORDS=$2; shift ;;
    --members) MEMBERS=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,68p' "$0"; exit 0 ;;
    *) echo "bench: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[ -x "$LOADGEN" ] || die "$LOADGEN not built (make loadgen)"
[ -x "$SENTRAD" ] || die "$SENTRAD not built (make)"
[ -x "$GRPCPP_PING" ] || die "$GRPCPP_PING not built (make bench builds it)"
for c in redis-server redis-benchmark h2load nghttp wrk "$PGBENCH" "$PSQL"; do
    command -v "$c" >/dev/null 2>&1 || die "$c missing (scripts/deps.sh --bench installs redis)"
done

# 10,000 connections need 10,000 descriptors in sentrad and in loadgen.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" -ge $((IDLE + 200)) ] ||
    { log "ulimit -n is $(ulimit -n): idle test lowered to $(($(ulimit -n) - 200))"; IDLE=$(($(ulimit -n) - 200)); }

WORK=$(mktemp -d /tmp/sentra-bench.XXXXXX) || die "mktemp"
chmod 755 "$WORK"
PGDIR=$WORK/pg
SENTRAD_PID=""
REDIS_PID=""
SENTRAD2_PID=""
HAPROXY_PID=""
TLS_PID=""
SSERVER_PID=""

cleanup() {
    [ -n "$HAPROXY_PID" ] && kill "$HAPROXY_PID" 2>/dev/null && wait "$HAPROXY_PID" 2>/dev/null
    [ -n "$SSERVER_PID" ] && kill "$SSERVER_PID" 2>/dev/null && wait "$SSERVER_PID" 2>/dev/null
    [ -n "$TLS_PID" ] && kill "$TLS_PID" 2>/dev/null && wait "$TLS_PID" 2>/dev/null
    [ -n "$SENTRAD2_PID" ] && kill "$SENTRAD2_PID" 2>/dev/null && wait "$SENTRAD2_PID" 2>/dev/null
    [ -n "$SENTRAD_PID" ] && kill "$SENTRAD_PID" 2>/dev/null && wait "$SENTRAD_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    [ -n "${GRPCPP_PID:-}" ] && kill "$GRPCPP_PID" 2>/dev/null && wait "$GRPCPP_PID" 2>/dev/null
    if [ $KEEP = 1 ]; then
        scripts/pgcluster.sh stop "$PGDIR" >/dev/null 2>&1
        log "kept $WORK (cluster stopped; scripts/pgcluster.sh destroy $PGDIR removes it)"
    else
        scripts/pgcluster.sh destroy "$PGDIR" >/dev/null 2>&1
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# key=value field of a loadgen line
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

median() {
    sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# Results: one file per metric, one value a line.
R=$WORK/results
mkdir -p "$R"
put() { echo "$2" >>"$R/$1"; }
# The ratio of this round's two last figures (ours / ceiling): the noise of
# a shared machine hits a pair run back to back alike, so the median of the
# paired ratios is steadier than the ratio of the medians.
pair() { awk -v a="$(tail -1 "$R/$2")" -v b="$(tail -1 "$R/$3")" 'BEGIN {if (a != "" && b + 0 > 0) printf "%.3f\n", a / b}' >>"$R/$1"; }
med() { [ -f "$R/$1" ] && median <"$R/$1" || echo nan; }

now_ns() { date +%s%N; }

# ---------------------------------------------------------------- set-up

log "work directory $WORK"
log "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
CONN=$(scripts/pgcluster.sh ensure "$PGDIR") || die "cannot start the cluster"
log "cluster up: $CONN"
"$SENTRAD" migrate --db "$CONN" >/dev/null || die "migrations failed"

t0=$(now_ns)
if [ -x scripts/gen-national.sh ]; then
    scripts/gen-national.sh "$CONN" "$RECORDS" --members "$MEMBERS" --obstacles $((MEMBERS / 10)) \
        --assistance $((MEMBERS / 10)) >&2 || die "gen-national.sh failed"
else
    die "scripts/gen-national.sh missing"
fi
LOAD_MS=$(( ($(now_ns) - t0) / 1000000 ))
log "loaded $RECORDS records and $MEMBERS members (with their obstacles, assistance, institutions) in $LOAD_MS ms"
"$PSQL" "$CONN" -X -q -c "SET client_min_messages = error" -c "VACUUM ANALYZE" || die "vacuum failed"

q() { "$PSQL" "$CONN" -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
NREC=$(q -c "SELECT count(*) FROM sentra WHERE deleted_at IS NULL")
q -c "SELECT id FROM sentra WHERE deleted_at IS NULL ORDER BY md5(id::text) LIMIT 20000" >"$WORK/ids"
# Push writes into Lampung's regencies and cities with a province token.
q -c "SELECT code FROM region WHERE parent_code = '18' AND level IN ('regency', 'city') ORDER BY code" >"$WORK/regions"
[ -s "$WORK/ids" ] && [ -s "$WORK/regions" ] || die "no ids or regions to benchmark with"
# Every regency/city, for the members listing (and its pgbench twin, which
# draws a number and looks the code up).
q -c "SELECT code FROM region WHERE level IN ('regency', 'city') ORDER BY code" >"$WORK/regencies"
q -c "DROP TABLE IF EXISTS bench_regency" \
  -c "CREATE TABLE bench_regency AS SELECT row_number() OVER (ORDER BY code)::int AS k, code
        FROM region WHERE level IN ('regency', 'city')" \
  -c "CREATE UNIQUE INDEX ON bench_regency (k)" -c "ANALYZE bench_regency" >/dev/null
NREG=$(wc -l <"$WORK/regencies")
# Every live record of every kind, for the full pull of every kind.
NALL=$(q -c "SELECT (SELECT count(*) FROM sentra WHERE deleted_at IS NULL) + (SELECT count(*) FROM member WHERE deleted_at IS NULL)
               + (SELECT count(*) FROM institution WHERE deleted_at IS NULL) + (SELECT count(*) FROM obstacle WHERE deleted_at IS NULL)
               + (SELECT count(*) FROM assistance WHERE deleted_at IS NULL)")
NMEM=$(q -c "SELECT count(*) FROM member WHERE deleted_at IS NULL")
TOK_NAT=$("$SENTRAD" token create --db "$CONN" --role national --label bench 2>/dev/null | tail -1)
TOK_PROV=$("$SENTRAD" token create --db "$CONN" --role province --region 18 --label bench 2>/dev/null | tail -1)
[ -n "$TOK_NAT" ] && [ -n "$TOK_PROV" ] || die "cannot create tokens"

PGB_CONN=$(scripts/pgcluster.sh createdb "$PGDIR" bench_pgbench) || die "cannot create the pgbench database"
log "pgbench -i -s 10 (1,000,000 accounts)"
"$PGBENCH" -i -s 10 -q "$PGB_CONN" >"$WORK/pgbench-init.log" 2>&1 || die "pgbench -i failed ($WORK/pgbench-init.log)"

# The statement GetStatistics runs for group_by PROVINCE in the national
# scope (server/services/handlers_stats.c, build_stats_sql: the groups only,
# the server adds them up for the total row; the latest figures and the
# counts of the records kept on sentra_stat; province names joined): the
# same SQL, run by pgbench at the same concurrency.
cat >"$WORK/stats.sql" <<'EOF'
SELECT g.*, rp.name FROM (SELECT GROUPING(t.province_code) AS gset, t.province_code AS k1,
       count(*) AS n, count(*) FILTER (WHERE t.designated) AS d,
       coalesce(sum(f.business_units), 0), coalesce(sum(f.workers_male), 0),
       coalesce(sum(f.workers_female), 0), coalesce(sum(f.investment), 0),
       coalesce(sum(f.production_value), 0), coalesce(sum(f.material_value), 0),
       sum(t.small_male), sum(t.small_female), sum(t.medium_male), sum(t.medium_female),
       sum(t.large_male), sum(t.large_female), count(*) FILTER (WHERE t.member_rows > 0),
       sum(CASE WHEN t.member_rows > 0 THEN t.small_male + t.small_female + t.medium_male
                + t.medium_female + t.large_male + t.large_female ELSE f.business_units END),
       count(*) FILTER (WHERE t.institution_form > 1), sum(t.obstacles_open),
       sum(t.obstacles_in_progress), sum(t.obstacles_resolved), sum(t.assistance_count),
       sum(t.assistance_value)
  FROM sentra_stat t CROSS JOIN LATERAL (SELECT t.business_units, t.workers_male, t.workers_female,
       t.investment, t.production_value, t.material_value) f
 WHERE true AND t.deleted_at IS NULL
 GROUP BY t.province_code) g
  LEFT JOIN region rp ON rp.code = g.k1 ORDER BY g.gset, g.k1;
EOF
# The statement before the records (issue 18): the sentra's measures only,
# the total row as a second grouping set. What the record measures cost.
cat >"$WORK/stats_before.sql" <<'EOF'
SELECT g.*, rp.name FROM (SELECT GROUPING(t.province_code) AS gset, t.province_code AS k1,
       count(*) AS n, count(*) FILTER (WHERE t.designated) AS d,
       coalesce(sum(f.business_units), 0)::bigint, coalesce(sum(f.workers_male), 0)::bigint,
       coalesce(sum(f.workers_female), 0)::bigint, coalesce(sum(f.investment), 0)::bigint,
       coalesce(sum(f.production_value), 0)::bigint, coalesce(sum(f.material_value), 0)::bigint
  FROM sentra_stat t CROSS JOIN LATERAL (SELECT t.business_units, t.workers_male, t.workers_female,
       t.investment, t.production_value, t.material_value) f
 WHERE true AND t.deleted_at IS NULL
 GROUP BY GROUPING SETS ((t.province_code), ())) g
  LEFT JOIN region rp ON rp.code = g.k1 ORDER BY g.gset, g.k1;
EOF

# A regency's first page of members, in plain SQL (what ListMembers with a
# regency filter answers: the records and their order), for pgbench.
cat >"$WORK/members.sql" <<SQL
\\set k random(1, $NREG)
SELECT m.* FROM member m WHERE m.deleted_at IS NULL
   AND m.regency_code = (SELECT code FROM bench_regency WHERE k = :k)
 ORDER BY m.name, m.id LIMIT 100;
SQL
# Members by size class nationally, in plain SQL over the base tables
# (what GetStatistics of the MEMBERS subject counts: live members that have
# not left, of live sentra, with the total row).
cat >"$WORK/mstats.sql" <<'SQL'
SELECT GROUPING(m.size_class), m.size_class, count(DISTINCT m.sentra_id), count(*),
       count(*) FILTER (WHERE m.owner_sex = 2), count(*) FILTER (WHERE m.owner_sex = 1)
  FROM member m JOIN sentra s ON s.id = m.sentra_id
 WHERE m.deleted_at IS NULL AND s.deleted_at IS NULL AND m.left_year IS NULL
 GROUP BY GROUPING SETS ((m.size_class), ()) ORDER BY 1, 2;
SQL

PORT_FILE=$WORK/sentrad.port
# A copy under another name, in a session of its own: a `pkill sentrad` or
# a signal to our process group from elsewhere on this shared machine (it
# happened: SIGINT mid-run) must not end the benchmark. Run from inside
# WORK, so that a core file (if cores are on: ulimit -c) lands there.
cp "$SENTRAD" "$WORK/bench-server" || die "cannot copy $SENTRAD"
(cd "$WORK" && exec setsid ./bench-server --db "$CONN" --port 0 --port-file "$PORT_FILE" \
    --unix "$WORK/sentrad.sock" --no-migrate --migrations "$ROOT/migrations" --log-level info >"$WORK/sentrad.log" 2>&1) &
SENTRAD_PID=$!
for _ in $(seq 1 100); do
    [ -s "$PORT_FILE" ] && break
    kill -0 "$SENTRAD_PID" 2>/dev/null || die "sentrad exited ($WORK/sentrad.log)"
    sleep 0.1
done
[ -s "$PORT_FILE" ] || die "sentrad wrote no port file"
PORT=$(cat "$PORT_FILE")
log "sentrad pid $SENTRAD_PID on port $PORT"

# A second sentrad on the same database and HAProxy (TCP mode, round
# robin) in front of both, for the scale-out row (issue 17): on two cores
# what it measures is the proxy's cost, not more capacity.
HPORT=""
if command -v haproxy >/dev/null 2>&1; then
    (cd "$WORK" && exec setsid ./bench-server --db "$CONN" --port 0 --port-file "$WORK/sentrad2.port" \
        --no-migrate --migrations "$ROOT/migrations" --log-level info >"$WORK/sentrad2.log" 2>&1) &
    SENTRAD2_PID=$!
    for _ in $(seq 1 100); do [ -s "$WORK/sentrad2.port" ] && break; sleep 0.1; done
    HPORT=$(free_port)
    printf '%s\n' "global" "    maxconn 4000" "defaults" "    mode tcp" "    timeout connect 2s" \
        "    timeout client 60s" "    timeout server 60s" "frontend sentra" "    bind 127.0.0.1:$HPORT" \
        "    default_backend sentrad" "backend sentrad" "    balance roundrobin" \
        "    server s1 127.0.0.1:$PORT" "    server s2 127.0.0.1:$(cat "$WORK/sentrad2.port" 2>/dev/null)" \
        >"$WORK/haproxy.cfg"
    setsid haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$HPORT") 2>/dev/null && break; sleep 0.1; done
    log "second sentrad pid $SENTRAD2_PID, HAProxy on port $HPORT"
else
    log "haproxy missing: no scale-out row (scripts/deps.sh --bench installs it)"
fi
# A third sentrad with TLS (plaintext served beside it, as without
# --tls-only), and OpenSSL's own server with the same certificate as the
# ceiling of handshakes.
scripts/dev-cert.sh "$WORK/tls" >/dev/null || die "scripts/dev-cert.sh failed"
(cd "$WORK" && exec setsid ./bench-server --db "$CONN" --port 0 --port-file "$WORK/sentrad-tls.port" \
    --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key" --tls-handshake-timeout 60000 \
    --no-migrate --migrations "$ROOT/migrations" --log-level warn >"$WORK/sentrad-tls.log" 2>&1) &
TLS_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/sentrad-tls.port" ] && break; sleep 0.1; done
TPORT=$(cat "$WORK/sentrad-tls.port" 2>/dev/null)
[ -n "$TPORT" ] || die "the TLS sentrad did not start ($WORK/sentrad-tls.log)"
SPORT=$(free_port)
setsid openssl s_server -accept "127.0.0.1:$SPORT" -cert "$WORK/tls/server.pem" -key "$WORK/tls/server.key" \
    -quiet -naccept 100000000 </dev/null >"$WORK/s_server.log" 2>&1 &
SSERVER_PID=$!
log "TLS sentrad pid $TLS_PID on port $TPORT, openssl s_server on port $SPORT"
# loadgen against the TLS sentrad (TLS when given --tls).
lgt() {
    "$LOADGEN" -p "$TPORT" -c "$CLIENTS" -t "$SECS" --warmup 1 --ca "$WORK/tls/ca.pem" "$@" 2>>"$WORK/loadgen.err"
}
# Full handshakes a second by `openssl s_time -new` (one blocking client:
# the same for both servers) against port $1.
stime() {
    local out
    out=$(timeout $((SECS + 30)) openssl s_time -connect "127.0.0.1:$1" -new -time "$SECS" 2>&1)
    echo "$out" >>"$WORK/s_time.log"
    awk '/connections in [0-9]+ real seconds/ {printf "%.1f\n", $1 / $4}' <<<"$out"
}

# The same load through HAProxy to the two sentrad.
lgh() {
    "$LOADGEN" -p "$HPORT" -c "$CLIENTS" -t "$SECS" --warmup 1 "$@" 2>>"$WORK/loadgen.err"
}

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 50); do
    redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

# The stock gRPC server, and the request bodies h2load sends: a gRPC
# message each (1 flag byte, 4 bytes of length, the message).
GPORT=$(free_port)
"$GRPCPP_PING" "$GPORT" 2>"$WORK/grpcpp.log" &
GRPCPP_PID=$!
printf '\x00\x00\x00\x00\x00' >"$WORK/grpc-ping.bin"     # PingRequest{}
ID1=$(head -1 "$WORK/ids")
head -1 "$WORK/ids" >"$WORK/id1"
# GetSentraRequest{id}: field 1, length-delimited (36 bytes of UUID text).
printf '\x00\x00\x00\x00\x26\x0a\x24%s' "$ID1" >"$WORK/grpc-get.bin"
for _ in $(seq 1 50); do grep -q listening "$WORK/grpcpp.log" && break; sleep 0.1; done
GH=(-H 'content-type: application/grpc' -H 'te: trailers')
# h2load counts HTTP 2xx, not grpc-status: check once that both answer OK.
for u in "http://127.0.0.1:$PORT" "http://127.0.0.1:$GPORT"; do
    nghttp "${GH[@]}" -d "$WORK/grpc-ping.bin" -v "$u/sentra.v1.SystemService/Ping" 2>&1 |
        grep -q 'grpc-status: 0' || die "gRPC Ping at $u did not answer grpc-status 0"
done
nghttp "${GH[@]}" -H "authorization: Bearer $TOK_NAT" -d "$WORK/grpc-get.bin" -v \
    "http://127.0.0.1:$PORT/sentra.v1.SentraService/GetSentra" 2>&1 | grep -q 'grpc-status: 0' ||
    die "gRPC GetSentra did not answer grpc-status 0"

# h2l NAME URL FILE [HEADER...]: req/s of an h2load run (16 clients, one
# stream in flight each, like loadgen); failed requests are counted.
h2l() {
    local name=$1 url=$2 file=$3 out
    shift 3
    out=$(h2load -c "$CLIENTS" -m 1 -t 1 -D "$SECS" --warm-up-time=1 "${GH[@]}" "$@" -d "$file" "$url" 2>&1)
    echo "$out" >>"$WORK/h2load.log"
    put "$name.rps" "$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")"
    put "$name.err" "$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1+\2/p' <<<"$out" | bc)"
    log "  $name: $(tail -1 "$R/$name.rps") req/s (h2load), failed+errored $(tail -1 "$R/$name.err")"
}

# Stops the benchmark if sentrad has died, saying how.
check_alive() {
    kill -0 "$SENTRAD_PID" 2>/dev/null && return 0
    wait "$SENTRAD_PID"
    local st=$?
    SENTRAD_PID=""
    if [ $st -gt 128 ]; then
        log "SENTRAD DIED of signal $((st - 128)) during: $1 (log: $WORK/sentrad.log)"
    else
        log "SENTRAD EXITED with status $st during: $1 (log: $WORK/sentrad.log)"
    fi
    tail -5 "$WORK/sentrad.log" >&2
    KEEP=1
    exit 1
}

lg() {
    "$LOADGEN" -p "$PORT" -c "$CLIENTS" -t "$SECS" --warmup 1 "$@" 2>>"$WORK/loadgen.err"
}
# The same over sentrad's Unix socket: pgbench reaches PostgreSQL through
# one, so GetSentra is compared with it over the same kind of transport.
lgu() {
    "$LOADGEN" -u "$WORK/sentrad.sock" -c "$CLIENTS" -t "$SECS" --warmup 1 "$@" 2>>"$WORK/loadgen.err"
}

# ours NAME LINE: records rps/p50/p99/records_per_s of a loadgen line
ours() {
    local name=$1 line=$2
    echo "$line" >>"$WORK/loadgen.log"
    put "$name.rps" "$(field "$line" rps)"
    put "$name.p50" "$(field "$line" p50_ms)"
    put "$name.p99" "$(field "$line" p99_ms)"
    put "$name.rec" "$(field "$line" records_per_s)"
    put "$name.err" "$(field "$line" errors)"
    log "  $name: $(field "$line" rps) req/s, p50 $(field "$line" p50_ms) ms, p99 $(field "$line" p99_ms) ms, $(field "$line" records_per_s) records/s, errors $(field "$line" errors)"
}

# tps of a pgbench run
pgb() {
    local out
    out=$("$PGBENCH" -n -c "$CLIENTS" -j 1 -T "$SECS" "$@" 2>&1)
    echo "$out" >>"$WORK/pgbench.log"
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out"
}

# wrkj NAME PATH BODY|@IDS: a wrk run of Connect JSON calls (one thread,
# CLIENTS keep-alive connections, like loadgen); records req/s, p50, p99
# and errors (answers other than 200, socket errors) as NAME.*.
wrkj() {
    local name=$1 path=$2 arg=$3 out ids="" body=""
    case "$arg" in @*) ids=${arg#@} ;; *) body=$arg ;; esac
    out=$(SENTRA_TOKEN=$TOK_NAT SENTRA_PATH=$path SENTRA_BODY=$body SENTRA_IDS=$ids \
          wrk -t 1 -c "$CLIENTS" -d "${SECS}s" --latency -s "$ROOT/bench/wrk_connect.lua" \
              "http://127.0.0.1:$PORT" 2>&1)
    echo "$out" >>"$WORK/wrk.log"
    # wrk prints latencies as 812.00us, 1.20ms or 1.01s.
    ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0;
                                  else if (v ~ /s$/) printf "%.3f", v * 1000; else print "nan" }'; }
    local rps p50 p99 errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errs=$(awk '/Non-2xx or 3xx responses:/ {n += $5} /^  Socket errors:/ {n += $4 + $6 + $8 + $10} END {print n + 0}' \
           <<<"$out" | tr -d ',')
    put "$name.rps" "$rps"
    put "$name.p50" "$p50"
    put "$name.p99" "$p99"
    put "$name.err" "$errs"
    log "  $name (HTTP/1.1 JSON): $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $errs"
}

# ---------------------------------------------------------------- idle

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SENTRAD_PID/status"; }
log "idle: $IDLE connections (first, on a fresh server, so the growth is theirs alone)"
RSS0=$(rss_kb)
"$LOADGEN" -p "$PORT" -c "$IDLE" -w idle -t 15 >"$WORK/idle.out" 2>"$WORK/idle.err" &
IDLE_PID=$!
for _ in $(seq 1 300); do
    grep -q "idle connections open" "$WORK/idle.err" && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 2
RSS1=$(rss_kb)
NCONN=$(sed -n 's/^loadgen: \([0-9]*\) idle connections open/\1/p' "$WORK/idle.err")
wait "$IDLE_PID"
check_alive "idle connections"
log "  sentrad VmRSS ${RSS0} kB before, ${RSS1} kB with ${NCONN:-0} idle connections"
alive=$(kill -0 "$SENTRAD_PID" 2>/dev/null && echo yes || echo no)

# The same with TLS, on the TLS sentrad, fresh too.
trss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$TLS_PID/status"; }
log "idle: $IDLE TLS connections (the TLS sentrad, fresh)"
TRSS0=$(trss_kb)
"$LOADGEN" -p "$TPORT" -c "$IDLE" -w idle --tls -t 15 >"$WORK/tidle.out" 2>"$WORK/tidle.err" &
IDLE_PID=$!
for _ in $(seq 1 1200); do
    grep -q "idle connections open" "$WORK/tidle.err" && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 2
TRSS1=$(trss_kb)
TNCONN=$(sed -n 's/^loadgen: \([0-9]*\) idle connections open/\1/p' "$WORK/tidle.err")
wait "$IDLE_PID"
log "  TLS sentrad VmRSS ${TRSS0} kB before, ${TRSS1} kB with ${TNCONN:-0} idle TLS connections"
talive=$(kill -0 "$TLS_PID" 2>/dev/null && echo yes || echo no)

# ---------------------------------------------------------------- rounds

for r in $(seq 1 "$RUNS"); do
    log "round $r/$RUNS (reads)"
    ours ping "$(lg -w ping)"; check_alive "ping, round $r"
    # redis-benchmark counts requests; size the count to last about SECS.
    out=$(redis-benchmark -p "$RPORT" -c "$CLIENTS" -n $((SECS * 60000)) -t ping --csv 2>/dev/null)
    line=$(grep '^"PING_MBULK"' <<<"$out" | tr -d '"')
    put redis.rps "$(cut -d, -f2 <<<"$line")"
    put redis.p50 "$(cut -d, -f5 <<<"$line")"
    put redis.p99 "$(cut -d, -f7 <<<"$line")"
    log "  redis PING: $(cut -d, -f2 <<<"$line") req/s"
    pair ping.ratio ping.rps redis.rps

    ours get "$(lgu -w get --ids "$WORK/ids" -T "$TOK_NAT")"; check_alive "get, round $r"
    v=$(pgb -S -M prepared "$PGB_CONN"); put pgbench_s.tps "$v"; log "  pgbench -S: $v tps"
    pair get.ratio get.rps pgbench_s.tps
    # The same with 4 requests in flight per connection (pipelining).
    ours getp "$(lgu -w get -d 4 --ids "$WORK/ids" -T "$TOK_NAT")"; check_alive "get -d 4, round $r"
    pair getp.ratio getp.rps pgbench_s.tps
    # And over TCP, as remote clients reach it.
    ours gett "$(lg -w get --ids "$WORK/ids" -T "$TOK_NAT")"; check_alive "get tcp, round $r"
    pair gett.ratio gett.rps pgbench_s.tps

    # The same GetSentra in JSON over HTTP/1.1 (Connect), against the
    # native TCP run just before.
    wrkj httpget /sentra.v1.SentraService/GetSentra "@$WORK/ids"; check_alive "http get, round $r"
    pair httpget.ratio httpget.rps gett.rps

    ours list "$(lg -w list -T "$TOK_NAT")"; check_alive "list, round $r"

    # gRPC over HTTP/2: Ping against the stock C++ server, GetSentra
    # against the native protocol (same id, same transport: TCP).
    h2l gping "http://127.0.0.1:$PORT/sentra.v1.SystemService/Ping" "$WORK/grpc-ping.bin"
    check_alive "grpc ping, round $r"
    h2l grpcpp "http://127.0.0.1:$GPORT/sentra.v1.SystemService/Ping" "$WORK/grpc-ping.bin"
    pair gping.ratio gping.rps grpcpp.rps
    pair gpingn.ratio gping.rps ping.rps
    h2l gget "http://127.0.0.1:$PORT/sentra.v1.SentraService/GetSentra" "$WORK/grpc-get.bin" \
        -H "authorization: Bearer $TOK_NAT"
    check_alive "grpc get, round $r"
    ours nget "$(lg -w get --ids "$WORK/id1" -T "$TOK_NAT")"; check_alive "get one id, round $r"
    pair gget.ratio gget.rps nget.rps
    if [ -n "$HPORT" ]; then
        # Two sentrad behind HAProxy against one sentrad, both over TCP.
        ours geth "$(lgh -w get --ids "$WORK/ids" -T "$TOK_NAT")"; check_alive "get via haproxy, round $r"
        pair geth.ratio geth.rps gett.rps
        ours statsh "$(lgh -w stats -T "$TOK_NAT")"; check_alive "stats via haproxy, round $r"
    fi

    # TLS: GetSentra with resumed sessions against the same in plaintext on
    # the same server; handshakes against plaintext connections, and
    # against OpenSSL's own server.
    ours tget "$(lgt -w get --tls --resume --ids "$WORK/ids" -T "$TOK_NAT")"; check_alive "tls get, round $r"
    ours tgetp "$(lgt -w get --ids "$WORK/ids" -T "$TOK_NAT")"
    pair tget.ratio tget.rps tgetp.rps
    ours hsfull "$(lgt -w handshake --tls)"
    ours hsres "$(lgt -w handshake --tls --resume)"
    ours hsplain "$(lgt -w handshake)"
    pair hsfull.ratio hsfull.rps hsplain.rps
    pair hsres.ratio hsres.rps hsplain.rps
    v=$(stime "$TPORT"); put stime.rps "$v"; log "  s_time -new against sentrad: $v handshakes/s"
    v=$(stime "$SPORT"); put stime_ossl.rps "$v"; log "  s_time -new against openssl s_server: $v handshakes/s"
    pair stime.ratio stime.rps stime_ossl.rps
    kill -0 "$TLS_PID" 2>/dev/null || die "the TLS sentrad died ($WORK/sentrad-tls.log)"

    ours stats "$(lg -w stats -T "$TOK_NAT")"; check_alive "stats, round $r"
    wrkj httpstats /sentra.v1.StatsService/GetStatistics '{"groupBy":["GROUP_BY_PROVINCE"]}'
    check_alive "http stats, round $r"
    pair httpstats.ratio httpstats.rps stats.rps
    v=$(pgb -M prepared -f "$WORK/stats.sql" "$CONN"); put stats_sql.tps "$v"; log "  GROUP BY: $v tps"
    pair stats.ratio stats.rps stats_sql.tps
    v=$(pgb -M prepared -f "$WORK/stats_before.sql" "$CONN"); put stats_before.tps "$v"
    log "  GROUP BY before the records: $v tps"
    [ -n "$HPORT" ] && pair statsh.ratio statsh.rps stats.rps

    # A page of 5000 can take seconds on this machine: longer runs and
    # deadlines, so that whole pages are counted.
    ours pull "$("$LOADGEN" -p "$PORT" -c 1 -t $((SECS < 10 ? 10 : SECS)) -w pull --page-size 5000 \
                 --timeout-ms 120000 -T "$TOK_NAT" 2>>"$WORK/loadgen.err")"
    check_alive "pull, round $r"
    # COPY out of every live record as the service reads it (one line per
    # record and figures year): counted in records, like the pull.
    t0=$(now_ns)
    n=$(q -c "COPY (SELECT * FROM sentra_rows WHERE NOT deleted) TO STDOUT" | wc -l)
    t1=$(now_ns)
    v=$(awk -v n="$NREC" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", n / (ns / 1e9)}')
    put copy_out.rec "$v"; log "  COPY out: $NREC records ($n rows), $v records/s"
    pair pull.ratio pull.rec copy_out.rec

    ours members "$(lg -w members --page-size 100 --regions "$WORK/regencies" -T "$TOK_NAT")"
    check_alive "members, round $r"
    v=$(pgb -M prepared -f "$WORK/members.sql" "$CONN"); put members_sql.tps "$v"; log "  members page in SQL: $v tps"
    pair members.ratio members.rps members_sql.tps

    ours mstats "$(lg -w mstats -T "$TOK_NAT")"; check_alive "mstats, round $r"
    v=$(pgb -M prepared -f "$WORK/mstats.sql" "$CONN"); put mstats_sql.tps "$v"; log "  members GROUP BY in SQL: $v tps"
    pair mstats.ratio mstats.rps mstats_sql.tps

    ours pullk "$("$LOADGEN" -p "$PORT" -c 1 -t $((SECS < 20 ? 20 : SECS)) -w pull --kinds all --page-size 5000 \
                  --timeout-ms 120000 -T "$TOK_NAT" 2>>"$WORK/loadgen.err")"
    check_alive "pull of every kind, round $r"
    t0=$(now_ns)
    n=$(q -c "COPY (SELECT * FROM sentra_rows WHERE NOT deleted) TO STDOUT" \
          -c "COPY (SELECT * FROM member_api WHERE NOT deleted) TO STDOUT" \
          -c "COPY (SELECT * FROM institution_api WHERE NOT deleted) TO STDOUT" \
          -c "COPY (SELECT * FROM obstacle_api WHERE NOT deleted) TO STDOUT" \
          -c "COPY (SELECT * FROM assistance_api WHERE NOT deleted) TO STDOUT" | wc -l)
    t1=$(now_ns)
    v=$(awk -v n="$NALL" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", n / (ns / 1e9)}')
    put copy_all.rec "$v"; log "  COPY out of every kind: $NALL records ($n rows), $v records/s"
    pair pullk.ratio pullk.rec copy_all.rec

    # StreamChanges from the empty cursor until caught up (each message
    # decoded), again and again, against COPY of the same rows of the
    # table it reads them from (sentra_pull: every live record printed).
    ours stream "$("$LOADGEN" -p "$PORT" -c 1 -t $((SECS < 10 ? 10 : SECS)) -w stream \
                   -T "$TOK_NAT" 2>>"$WORK/loadgen.err")"
    check_alive "stream, round $r"
    t0=$(now_ns)
    n=$(q -c "COPY (SELECT sentra_id, version, deleted, packed FROM sentra_pull WHERE NOT deleted) TO STDOUT" | wc -l)
    t1=$(now_ns)
    v=$(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", n / (ns / 1e9)}')
    put copy_pull.rec "$v"; log "  COPY out of sentra_pull: $n records, $v records/s"
    pair stream.ratio stream.rec copy_pull.rec
done

for r in $(seq 1 "$RUNS"); do
    log "round $r/$RUNS (writes)"
    ours push "$(lg -w push --batch 100 --regions "$WORK/regions" -T "$TOK_PROV")"
    check_alive "push, round $r"
    v=$(pgb -f "$ROOT/bench/insert_record.sql" "$CONN"); put insert.tps "$v"; log "  single-row inserts: $v rows/s"
    pair push.ratio push.rec insert.tps
    # COPY in of the same rows (new ids), sentra then figures, one
    # transaction, rolled back so that the table does not grow.
    q -c "COPY (SELECT gen_random_uuid(), regency_code, name || ' c', commodity, main_product, kbli_code,
                       kbli_version, sector_group, status, formed_on
                  FROM sentra WHERE deleted_at IS NULL LIMIT 20000) TO STDOUT" >"$WORK/copy.tsv"
    n=$(wc -l <"$WORK/copy.tsv")
    t0=$(now_ns)
    "$PSQL" "$CONN" -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
BEGIN;
CREATE TEMP TABLE bench_in (id uuid, regency_code text, name text, commodity text, main_product text,
                            kbli_code text, kbli_version smallint, sector_group smallint,
                            status smallint, formed_on date) ON COMMIT DROP;
\copy bench_in FROM '$WORK/copy.tsv'
INSERT INTO sentra (id, regency_code, name, commodity, main_product, kbli_code, kbli_version,
                    sector_group, status, formed_on)
SELECT id, regency_code, name, commodity, main_product, kbli_code, kbli_version, sector_group,
       1, formed_on FROM bench_in;
INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male, workers_female)
SELECT id, 2024, 12, 20, 31 FROM bench_in;
ROLLBACK;
EOF
    t1=$(now_ns)
    v=$(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", n / (ns / 1e9)}')
    put copy_in.rec "$v"; log "  COPY in: $n rows, $v rows/s"
    pair pushc.ratio push.rec copy_in.rec
done

# ---------------------------------------------------------------- report

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else print "n/a"}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {if (r == "n/a") print "n/a"; else if (r + 0 >= t + 0) print "met"; else print "MISSED"}'; }

# Ratios: the median of the paired (same round) ratios.
mr() { med "$1" | awk '{if ($1 == "nan") print "n/a"; else printf "%.2f", $1}'; }
P_OURS=$(med ping.rps); P_CEIL=$(med redis.rps); P_R=$(mr ping.ratio)
G_OURS=$(med get.rps); G_CEIL=$(med pgbench_s.tps); G_R=$(mr get.ratio)
GP_OURS=$(med getp.rps); GP_R=$(mr getp.ratio)
GT_OURS=$(med gett.rps); GT_R=$(mr gett.ratio)
S_OURS=$(med stats.rps); S_CEIL=$(med stats_sql.tps); S_R=$(mr stats.ratio)
S_BEFORE=$(med stats_before.tps)
HG_OURS=$(med httpget.rps); HG_R=$(mr httpget.ratio)
HS_OURS=$(med httpstats.rps); HS_R=$(mr httpstats.ratio)
PL_OURS=$(med pull.rec); PL_CEIL=$(med copy_out.rec); PL_R=$(mr pull.ratio)
ST_OURS=$(med stream.rec); ST_CEIL=$(med copy_pull.rec); ST_R=$(mr stream.ratio)
PU_OURS=$(med push.rec); PU_INS=$(med insert.tps); PU_R=$(mr push.ratio)
PU_COPY=$(med copy_in.rec); PU_RC=$(mr pushc.ratio)
MB_OURS=$(med members.rps); MB_CEIL=$(med members_sql.tps); MB_R=$(mr members.ratio)
MS_OURS=$(med mstats.rps); MS_CEIL=$(med mstats_sql.tps); MS_R=$(mr mstats.ratio)
PK_OURS=$(med pullk.rec); PK_CEIL=$(med copy_all.rec); PK_R=$(mr pullk.ratio)
GP_G=$(med gping.rps); GP_CPP=$(med grpcpp.rps); GP_GR=$(mr gping.ratio); GP_GN=$(mr gpingn.ratio)
GG_G=$(med gget.rps); GG_N=$(med nget.rps); GG_R=$(mr gget.ratio)
RSS_MB=$(awk -v k="${RSS1:-0}" 'BEGIN {printf "%.1f", k / 1024}')
PER_CONN=$(awk -v a="${RSS0:-0}" -v b="${RSS1:-0}" -v n="${NCONN:-0}" 'BEGIN {if (n > 0) printf "%.2f", (b - a) / n; else print "n/a"}')
RSS_OK=$(awk -v m="$RSS_MB" -v n="${NCONN:-0}" -v want="$IDLE" 'BEGIN {print (m < 200 && n >= want) ? "met" : "MISSED"}')
TG_R=$(mr tget.ratio)
TRSS_MB=$(awk -v k="${TRSS1:-0}" 'BEGIN {printf "%.1f", k / 1024}')
TPER_CONN=$(awk -v a="${TRSS0:-0}" -v b="${TRSS1:-0}" -v n="${TNCONN:-0}" 'BEGIN {if (n > 0) printf "%.2f", (b - a) / n; else print "n/a"}')
TRSS_OK=$(awk -v m="$TRSS_MB" -v n="${TNCONN:-0}" -v want="$IDLE" 'BEGIN {print (m < 200 && n >= want) ? "met" : "MISSED"}')

cat <<EOF

Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)
Settings: $RUNS runs x ${SECS}s, $CLIENTS clients, one request in flight each; $NREC live records, $NMEM members ($NALL records of every kind, loaded in $((LOAD_MS / 1000)) s); PostgreSQL $("$PSQL" --version | awk '{print $3}'), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')
Medians of $RUNS runs; each ratio is the median of the $RUNS ratios of a run of ours and its ceiling run back to back.

| workload | ours | p50 ms | p99 ms | ceiling | ceiling figure | ratio | target | verdict |
|---|---|---|---|---|---|---|---|---|
| Ping | $P_OURS req/s | $(med ping.p50) | $(med ping.p99) | redis-benchmark PING_MBULK | $P_CEIL req/s (p50 $(med redis.p50), p99 $(med redis.p99)) | $P_R | >= 1.0 | $(verdict "$P_R" 1.0) |
| GetSentra (random id; Unix socket, as pgbench) | $G_OURS req/s | $(med get.p50) | $(med get.p99) | pgbench -S -M prepared | $G_CEIL tps | $G_R | >= 0.8 | $(verdict "$G_R" 0.8) |
| GetSentra, 4 in flight per connection (Unix socket) | $GP_OURS req/s | $(med getp.p50) | $(med getp.p99) | pgbench -S -M prepared | $G_CEIL tps | $GP_R | (aim 1.0) | $(verdict "$GP_R" 1.0) |
| GetSentra over TCP (loopback) | $GT_OURS req/s | $(med gett.p50) | $(med gett.p99) | pgbench -S -M prepared | $G_CEIL tps | $GT_R | - | - |
| GetSentra, JSON over HTTP/1.1 (Connect, wrk keep-alive) | $HG_OURS req/s | $(med httpget.p50) | $(med httpget.p99) | GetSentra, native protocol over TCP | $GT_OURS req/s | $HG_R | >= 0.5 | $(verdict "$HG_R" 0.5) |
| GetStatistics, JSON over HTTP/1.1 (Connect, wrk keep-alive) | $HS_OURS req/s | $(med httpstats.p50) | $(med httpstats.p99) | GetStatistics, native protocol over TCP | $S_OURS req/s | $HS_R | - | - |
| gRPC Ping (h2load, HTTP/2) | $GP_G req/s | | | gRPC C++ 1.51 callback server (bench/grpcpp_ping.cc), h2load | $GP_CPP req/s | $GP_GR | >= 1.0 | $(verdict "$GP_GR" 1.0) |
| gRPC Ping vs native Ping | $GP_G req/s | | | native Ping (loadgen, TCP) | $P_OURS req/s | $GP_GN | - | - |
| gRPC GetSentra (h2load, one id) | $GG_G req/s | | | native GetSentra (loadgen, TCP, same id) | $GG_N req/s | $GG_R | >= 0.8 | $(verdict "$GG_R" 0.8) |
| ListSentra (page of 50, one province) | $(med list.rps) req/s | $(med list.p50) | $(med list.p99) | - | - | - | - | - |
| GetSentra, 2 sentrad behind HAProxy (TCP) | $(med geth.rps) req/s | $(med geth.p50) | $(med geth.p99) | 1 sentrad, the GetSentra over TCP row | $GT_OURS req/s | $(mr geth.ratio) | - (on 2 cores: the proxy's cost) | - |
| GetStatistics, 2 sentrad behind HAProxy (TCP) | $(med statsh.rps) req/s | $(med statsh.p50) | $(med statsh.p99) | 1 sentrad, the GetStatistics row (TCP) | $S_OURS req/s | $(mr statsh.ratio) | - (on 2 cores: the proxy's cost) | - |
| GetStatistics (by province, national) | $S_OURS req/s | $(med stats.p50) | $(med stats.p99) | pgbench, same GROUP BY | $S_CEIL tps | $S_R | - | - |
| (the same GROUP BY before the record measures, issue 18) | | | | pgbench, the sentra's measures only | $S_BEFORE tps | | - | - |
| PullChanges (full, 5000 a page, 1 client) | $PL_OURS records/s | $(med pull.p50) | $(med pull.p99) | COPY out of sentra_rows (all records) | $PL_CEIL records/s | $PL_R | >= 100,000 records/s | $(awk -v v="$PL_OURS" 'BEGIN {print (v + 0 >= 100000) ? "met" : "MISSED"}') |
| StreamChanges catch-up (empty cursor, 1 client, messages decoded) | $ST_OURS records/s | | | COPY out of sentra_pull (the same live records) | $ST_CEIL records/s | $ST_R | >= 0.7 | $(verdict "$ST_R" 0.7) |
| ListMembers (a regency's first page of 100; $NMEM members) | $MB_OURS req/s | $(med members.p50) | $(med members.p99) | pgbench, the page in plain SQL | $MB_CEIL tps | $MB_R | - | - |
| GetStatistics, members by size class (national) | $MS_OURS req/s | $(med mstats.p50) | $(med mstats.p99) | pgbench, GROUP BY over member and sentra | $MS_CEIL tps | $MS_R | - | - |
| PullChanges of every kind (full, 5000 a page, 1 client) | $PK_OURS records/s | $(med pullk.p50) | $(med pullk.p99) | COPY out of every live record of every kind ($NALL) | $PK_CEIL records/s | $PK_R | - | - |
| PushChanges (100 a batch) | $PU_OURS records/s | $(med push.p50) | $(med push.p99) | pgbench, one record and its figures a transaction (bench/insert_record.sql) | $PU_INS records/s | $PU_R | >= 2.0 | $(verdict "$PU_R" 2.0) |
| PushChanges vs COPY in | | | | COPY in (sentra + figures) | $PU_COPY rows/s | $PU_RC | - | - |
| $IDLE idle connections | ${NCONN:-0} held | | | | | | RSS < 200 MB | $RSS_OK |
| GetSentra over TLS 1.3 (resumed sessions, ALPN sentra/1) | $(med tget.rps) req/s | $(med tget.p50) | $(med tget.p99) | the same in plaintext, same server | $(med tgetp.rps) req/s | $TG_R | >= 0.8 | $(verdict "$TG_R" 0.8) |
| TLS full handshakes (loadgen: connect, handshake, Ping, close) | $(med hsfull.rps) /s | $(med hsfull.p50) | $(med hsfull.p99) | plaintext connections, the same way | $(med hsplain.rps) /s | $(mr hsfull.ratio) | - | - |
| TLS resumed handshakes (tickets) | $(med hsres.rps) /s | $(med hsres.p50) | $(med hsres.p99) | plaintext connections | $(med hsplain.rps) /s | $(mr hsres.ratio) | - | - |
| TLS full handshakes (openssl s_time -new) | $(med stime.rps) /s | | | openssl s_server, same certificate | $(med stime_ossl.rps) /s | $(mr stime.ratio) | (aim 1.0) | $(verdict "$(mr stime.ratio)" 1.0) |
| $IDLE idle TLS connections | ${TNCONN:-0} held | | | | | | RSS < 200 MB | $TRSS_OK |

Idle connections: sentrad VmRSS $((${RSS0:-0} / 1024)) MB before, $RSS_MB MB with ${NCONN:-0} connections (${PER_CONN} kB each); server alive afterwards: $alive.
Idle TLS connections: the TLS sentrad's VmRSS $((${TRSS0:-0} / 1024)) MB before, $TRSS_MB MB with ${TNCONN:-0} connections (${TPER_CONN} kB each); alive afterwards: $talive.
Errors (summed over runs): ping $(paste -sd+ "$R/ping.err" 2>/dev/null | bc), http get $(paste -sd+ "$R/httpget.err" 2>/dev/null | bc), http stats $(paste -sd+ "$R/httpstats.err" 2>/dev/null | bc), grpc ping $(paste -sd+ "$R/gping.err" 2>/dev/null | bc), grpc++ ping $(paste -sd+ "$R/grpcpp.err" 2>/dev/null | bc), grpc get $(paste -sd+ "$R/gget.err" 2>/dev/null | bc), get $(paste -sd+ "$R/get.err" 2>/dev/null | bc), tls get $(paste -sd+ "$R/tget.err" 2>/dev/null | bc), handshakes $(cat "$R/hsfull.err" "$R/hsres.err" 2>/dev/null | paste -sd+ | bc), list $(paste -sd+ "$R/list.err" 2>/dev/null | bc), stats $(paste -sd+ "$R/stats.err" 2>/dev/null | bc), pull $(paste -sd+ "$R/pull.err" 2>/dev/null | bc), members $(paste -sd+ "$R/members.err" 2>/dev/null | bc), mstats $(paste -sd+ "$R/mstats.err" 2>/dev/null | bc), pullk $(paste -sd+ "$R/pullk.err" 2>/dev/null | bc), stream $(paste -sd+ "$R/stream.err" 2>/dev/null | bc), push $(paste -sd+ "$R/push.err" 2>/dev/null | bc).
EOF
if [ -s "$WORK/loadgen.err" ]; then
    echo
    echo "loadgen messages (first 10):"
    sort "$WORK/loadgen.err" | uniq -c | sort -rn | head -10
fi
exit 0
