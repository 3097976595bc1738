#!/bin/bash
# cpu-per-request.sh: the CPU one request costs sentrad, protocol by
# protocol, counted in instructions (valgrind's callgrind), which do not
# depend on the machine's load the way wall-clock rates do. Beside it the
# same count for a stock gRPC server (bench/grpcpp_ping.cc) answering the
# same Ping, in the same run.
#
#   bench/cpu-per-request.sh [--requests N] [--clients C] [--records N]
#                            [--members N] [--syscalls] [--only LIST] [--keep]
#
#   --requests N  requests counted per workload (default 5000; a tenth
#                 more run first, uncounted, as warm-up)
#   --clients C   connections, one request in flight each (default 16)
#   --records N   records loaded (default 2000)
#   --members N   member businesses loaded over them (default 20000), for
#                 native-members
#   --syscalls    also count sentrad's system calls per request (strace -c
#                 -f over a second, uninstrumented sentrad)
#   --only LIST   comma-separated workloads to run (names below)
#   --keep        keep the work directory (dumps, logs) afterwards
#
# Environment: SENTRAD (bin/sentrad), LOADGEN (build/bench/loadgen),
# GRPCPP_PING (build/bench/grpcpp/grpcpp_ping); `make cpu-bench` builds
# them and runs this.
#
# How: a private throwaway cluster (scripts/pgcluster.sh, fast mode)
# loaded by scripts/gen-national.sh; sentrad runs under callgrind (and
# grpcpp_ping under another). For each workload the client first sends a
# tenth of N uncounted requests, then `callgrind_control -z` zeroes the
# counters, the client sends N requests, `callgrind_control -d` dumps
# them, and the dump's total over N is the figure. The counters cover the
# whole process (every thread of grpc++), user space only: what the kernel
# does for the sockets is not in them (--syscalls shows how many calls).
# PostgreSQL's backends are other processes, not counted.
#
# Workloads (all GetSentra ask for the same record, so that only the
# protocol differs):
#   native-ping    loadgen -w ping, native framing over TCP
#   grpc-ping      h2load, gRPC Ping over h2c
#   grpcpp-ping    h2load, the same against grpc++ (bench/grpcpp_ping.cc)
#   native-get     loadgen -w get, one id, over TCP
#   grpc-get       h2load, gRPC GetSentra, the same id
#   h1-json-get    wrk (bench/wrk_count.lua), Connect JSON over HTTP/1.1
#   h2-json-get    h2load, Connect JSON over h2c
#   native-members loadgen -w members: ListMembers, the first page of 100
#                  of a regency drawn among those with more than 100 live
#                  members (every page full), over TCP
#
# Prints a table: instructions per request, and per request against
# native-get (GetSentra) or grpcpp-ping (Ping). Nothing is asserted.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
LOADGEN=${LOADGEN:-build/bench/loadgen}
SENTRAD=${SENTRAD:-bin/sentrad}
GRPCPP_PING=${GRPCPP_PING:-build/bench/grpcpp/grpcpp_ping}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PSQL=$PGBIN/psql

N=5000
CLIENTS=16
RECORDS=2000
MEMBERS=20000
SYSCALLS=0
ONLY=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --requests) N=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --records) RECORDS=$2; shift ;;
    --members) MEMBERS=$2; shift ;;
    --syscalls) SYSCALLS=1 ;;
    --only) ONLY=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
    *) echo "cpu-per-request: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "cpu-per-request: $*" >&2; exit 1; }
log() { echo "cpu-per-request: $*" >&2; }

abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
LOADGEN=$(abs "$LOADGEN"); SENTRAD=$(abs "$SENTRAD"); GRPCPP_PING=$(abs "$GRPCPP_PING")
[ -x "$LOADGEN" ] || die "$LOADGEN not built (make loadgen)"
[ -x "$SENTRAD" ] || die "$SENTRAD not built (make)"
for c in valgrind callgrind_control h2load nghttp wrk "$PSQL"; do
    command -v "$c" >/dev/null 2>&1 || die "$c missing (scripts/deps.sh --bench)"
done
[ $SYSCALLS = 0 ] || command -v strace >/dev/null 2>&1 || die "strace missing (apt-get install strace)"
HAVE_GRPCPP=1
[ -x "$GRPCPP_PING" ] || { log "$GRPCPP_PING not built: no grpcpp-ping row (make bench builds it)"; HAVE_GRPCPP=0; }

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

WORK=$(mktemp -d /tmp/sentra-cpu.XXXXXX) || die "mktemp"
chmod 755 "$WORK"
PGDIR=$WORK/pg
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
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

# ---------------------------------------------------------------- set-up

CONN=$(SENTRA_PG_FAST=1 scripts/pgcluster.sh ensure "$PGDIR") || die "cannot start the cluster"
"$SENTRAD" migrate --db "$CONN" --migrations "$ROOT/migrations" >/dev/null || die "migrations failed"
scripts/gen-national.sh "$CONN" "$RECORDS" --members "$MEMBERS" >/dev/null 2>&1 || die "gen-national.sh failed"
"$PSQL" "$CONN" -X -q -c "SET client_min_messages = error" -c "VACUUM ANALYZE" || die "vacuum failed"
ID=$("$PSQL" "$CONN" -X -A -t -q -c "SELECT id FROM sentra WHERE deleted_at IS NULL ORDER BY md5(id::text) LIMIT 1")
echo "$ID" >"$WORK/id1"
"$PSQL" "$CONN" -X -A -t -q -c "SELECT regency_code FROM member WHERE deleted_at IS NULL
    GROUP BY 1 HAVING count(*) > 100 ORDER BY 1" >"$WORK/regencies"
TOK=$("$SENTRAD" token create --db "$CONN" --role national --label cpu-bench 2>/dev/null | tail -1)
[ -n "$ID" ] && [ -n "$TOK" ] || die "no record or no token"

# The request bodies: a gRPC message each (1 flag byte, 4 bytes of
# length, the message); GetSentraRequest{id} is field 1, 36 bytes of text.
printf '\x00\x00\x00\x00\x00' >"$WORK/grpc-ping.bin"
printf '\x00\x00\x00\x00\x26\x0a\x24%s' "$ID" >"$WORK/grpc-get.bin"
printf '{"id":"%s"}' "$ID" >"$WORK/get.json"
GH=(-H 'content-type: application/grpc' -H 'te: trailers')
AUTH=(-H "authorization: Bearer $TOK")

# start_server NAME CMD...: runs CMD in a session of its own; sets SPID.
start_server() {
    local name=$1
    shift
    (cd "$WORK" && exec setsid "$@" >"$WORK/$name.log" 2>&1) &
    SPID=$!
    PIDS+=("$SPID")
}

wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# sentrad under callgrind. Instrumentation off for its start (migrations
# check, pool set-up): counting starts at the first zeroing anyway.
SPORT=$(free_port)
start_server sentrad valgrind --tool=callgrind --callgrind-out-file="$WORK/sentrad.cg" \
    --dump-instr=no --collect-jumps=no \
    "$SENTRAD" --db "$CONN" --port "$SPORT" --no-migrate --migrations "$ROOT/migrations" \
    --log-level warn
SENTRAD_PID=$SPID
wait_port "$SPORT" || die "sentrad under callgrind did not listen ($WORK/sentrad.log)"
log "sentrad (callgrind) pid $SENTRAD_PID on port $SPORT"
if [ $HAVE_GRPCPP = 1 ]; then
    GPORT=$(free_port)
    start_server grpcpp valgrind --tool=callgrind --callgrind-out-file="$WORK/grpcpp.cg" \
        --dump-instr=no --collect-jumps=no "$GRPCPP_PING" "$GPORT"
    GRPCPP_PID=$SPID
    wait_port "$GPORT" || die "grpcpp_ping under callgrind did not listen ($WORK/grpcpp.log)"
    log "grpcpp_ping (callgrind) pid $GRPCPP_PID on port $GPORT"
fi

# Every answer checked once (h2load counts HTTP statuses, not grpc-status).
check() {
    nghttp "${GH[@]}" "$@" -v 2>&1 | grep -q 'grpc-status: 0' || die "no grpc-status 0 from $*"
}
check -d "$WORK/grpc-ping.bin" "http://127.0.0.1:$SPORT/sentra.v1.SystemService/Ping"
check "${AUTH[@]}" -d "$WORK/grpc-get.bin" "http://127.0.0.1:$SPORT/sentra.v1.SentraService/GetSentra"
[ $HAVE_GRPCPP = 0 ] || check -d "$WORK/grpc-ping.bin" "http://127.0.0.1:$GPORT/sentra.v1.SystemService/Ping"

# ---------------------------------------------------------------- clients

# Each prints the number of requests that failed (0 when all were OK).
run_loadgen() { # PORT COUNT ARGS...
    local port=$1 count=$2 out
    shift 2
    out=$("$LOADGEN" -p "$port" -c "$CLIENTS" -n "$count" "$@" 2>>"$WORK/loadgen.err")
    echo "$out" >>"$WORK/clients.log"
    sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$out"
}
run_h2load() { # URL COUNT ARGS...
    local url=$1 count=$2 out
    shift 2
    out=$(h2load -c "$CLIENTS" -m 1 -t 1 -n "$count" "$@" "$url" 2>&1)
    echo "$out" >>"$WORK/clients.log"
    local ok
    ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
    echo $((count - ${ok:-0}))
}
run_wrk() { # COUNT
    local count=$1 pid
    rm -f "$WORK/wrk.done"
    SENTRA_TOKEN=$TOK SENTRA_PATH=/sentra.v1.SentraService/GetSentra SENTRA_BODY="$(cat "$WORK/get.json")" \
        SENTRA_COUNT=$count SENTRA_DONE=$WORK/wrk.done \
        wrk -t 1 -c "$CLIENTS" -d 3600s -s "$ROOT/bench/wrk_count.lua" "http://127.0.0.1:$SPORT" \
        >>"$WORK/clients.log" 2>&1 &
    pid=$!
    while [ ! -s "$WORK/wrk.done" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    kill -INT "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    cat "$WORK/wrk.done" 2>/dev/null || echo "$count"
}

# client NAME COUNT: one workload's requests.
client() {
    local name=$1 count=$2
    case "$name" in
    native-ping) run_loadgen "$SPORT" "$count" -w ping ;;
    native-get) run_loadgen "$SPORT" "$count" -w get --ids "$WORK/id1" -T "$TOK" ;;
    native-members) run_loadgen "$SPORT" "$count" -w members --page-size 100 \
                        --regions "$WORK/regencies" -T "$TOK" ;;
    grpc-ping) run_h2load "http://127.0.0.1:$SPORT/sentra.v1.SystemService/Ping" "$count" \
                   "${GH[@]}" -d "$WORK/grpc-ping.bin" ;;
    grpcpp-ping) run_h2load "http://127.0.0.1:$GPORT/sentra.v1.SystemService/Ping" "$count" \
                     "${GH[@]}" -d "$WORK/grpc-ping.bin" ;;
    grpc-get) run_h2load "http://127.0.0.1:$SPORT/sentra.v1.SentraService/GetSentra" "$count" \
                  "${GH[@]}" "${AUTH[@]}" -d "$WORK/grpc-get.bin" ;;
    h1-json-get) run_wrk "$count" ;;
    h2-json-get) run_h2load "http://127.0.0.1:$SPORT/sentra.v1.SentraService/GetSentra" "$count" \
                     -H 'content-type: application/json' "${AUTH[@]}" -d "$WORK/get.json" ;;
    esac
}

# The total of a callgrind dump ("summary:" or "totals:" line, Ir).
dump_total() {
    awk '/^(summary|totals):/ {print $2; exit}' "$1"
}

# measure NAME PID: warm-up, zero, N requests, dump; prints Ir per request.
measure() {
    local name=$1 pid=$2 base=$3 err before after dump
    err=$(client "$name" $(( N / 10 > 100 ? N / 10 : 100 )))
    [ "${err:-1}" = 0 ] || log "$name: warm-up had $err failed requests"
    callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control -z $pid failed"
    err=$(client "$name" "$N")
    before=$(ls "$base".* 2>/dev/null | wc -l)
    callgrind_control -d "$name" "$pid" >/dev/null 2>&1 || die "callgrind_control -d $pid failed"
    for _ in $(seq 1 100); do
        after=$(ls "$base".* 2>/dev/null | wc -l)
        [ "$after" -gt "$before" ] && break
        sleep 0.1
    done
    dump=$(ls -t "$base".* | head -1)
    cp "$dump" "$WORK/$name.cg"
    local ir
    ir=$(dump_total "$dump")
    [ "${err:-1}" = 0 ] || log "$name: $err of $N requests failed"
    awk -v ir="$ir" -v n="$N" 'BEGIN {printf "%.0f\n", ir / n}'
}

declare -A IR
ROWS=(native-ping grpc-ping grpcpp-ping native-get grpc-get h1-json-get h2-json-get native-members)
for w in "${ROWS[@]}"; do
    want "$w" || continue
    if [ "$w" = native-members ] && [ ! -s "$WORK/regencies" ]; then
        log "no regency has more than 100 members: no native-members row (--members)"
        continue
    fi
    if [ "$w" = grpcpp-ping ]; then
        [ $HAVE_GRPCPP = 1 ] || continue
        IR[$w]=$(measure "$w" "$GRPCPP_PID" "$WORK/grpcpp.cg")
    else
        IR[$w]=$(measure "$w" "$SENTRAD_PID" "$WORK/sentrad.cg")
    fi
    log "  $w: ${IR[$w]} instructions a request"
done

# ---------------------------------------------------------------- system calls

declare -A SC
if [ $SYSCALLS = 1 ]; then
    PORT2=$(free_port)
    start_server sentrad2 "$SENTRAD" --db "$CONN" --port "$PORT2" --no-migrate \
        --migrations "$ROOT/migrations" --log-level warn
    S2=$SPID
    wait_port "$PORT2" || die "second sentrad did not listen"
    SPORT_SAVE=$SPORT
    SPORT=$PORT2
    for w in "${ROWS[@]}"; do
        want "$w" || continue
        [ "$w" = grpcpp-ping ] && continue
        client "$w" "$N" >/dev/null
        strace -c -f -q -o "$WORK/$w.strace" -p "$S2" &
        STRACE=$!
        sleep 1
        client "$w" "$N" >/dev/null
        kill -INT "$STRACE"
        wait "$STRACE" 2>/dev/null
        SC[$w]=$(awk -v n="$N" '$NF == "total" {printf "%.2f", $(NF-2) / n}' "$WORK/$w.strace")
        log "  $w: ${SC[$w]} system calls a request"
    done
    SPORT=$SPORT_SAVE
fi

# ---------------------------------------------------------------- report

rel() { awk -v a="${IR[$1]:-}" -v b="${IR[$2]:-}" 'BEGIN {if (a != "" && b + 0 > 0) printf "%.2f", a / b; else print "-"}'; }
echo
echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $N requests a workload, $CLIENTS clients, one in flight each"
echo "sentrad: $SENTRAD ($(git -C "$ROOT" describe --always --dirty 2>/dev/null) tree)"
echo
echo "| workload | instructions / request | / native | / grpc++ Ping | system calls / request |"
echo "|---|---:|---:|---:|---:|"
for w in "${ROWS[@]}"; do
    [ -n "${IR[$w]:-}" ] || continue
    case "$w" in
    native-members) nat=$(rel "$w" native-get) ;;
    native-*|grpcpp-*) nat="-" ;;
    *-ping) nat=$(rel "$w" native-ping) ;;
    *-get) nat=$(rel "$w" native-get) ;;
    esac
    case "$w" in
    *-ping) cpp=$([ "$w" = grpcpp-ping ] && echo "-" || rel "$w" grpcpp-ping) ;;
    *) cpp="-" ;;
    esac
    echo "| $w | ${IR[$w]} | $nat | $cpp | ${SC[$w]:--} |"
done
exit 0
