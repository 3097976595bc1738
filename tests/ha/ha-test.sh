#!/bin/bash
# ha-test.sh: `make ha-test`, the fault tests of issue 17 on a local HA
# cluster of their own (scripts/ha.sh: pg_auto_failover primary and hot
# standby, two sentrad, HAProxy), all on 127.0.0.1, every step under a
# time limit. About three minutes.
#
#   1. A long poll held on sentrad1 wakes for a write made through sentrad2.
#   2. Read-your-writes through HAProxy with reads served by the standby:
#      never stale by default, even with the standby's replay paused; with
#      "sentra-consistency: bounded" and the replay paused, stale reads are
#      seen (the check can fail).
#   3. Synchronous replication, kill -9 of the primary (keeper, postmaster
#      and backends) under a write load through HAProxy (creates and pushes
#      with idempotency keys): failover, writes resume, every acknowledged
#      write is on the new primary exactly once; the unavailability window
#      is reported.
#   4. kill -9 of each sentrad in turn under load, with a district app's
#      pull in flight: HAProxy moves the traffic, no acknowledged write is
#      lost, the pull resumes from its cursor with no gap and no duplicate.
#   5. The same primary kill with the primary's WAL sender stalled for 2 s
#      first (the standby falls behind): synchronous, nothing acknowledged
#      is lost (the writes wait); then on a new cluster with asynchronous
#      replication, the same fault sequence loses acknowledged writes, and
#      the test says how many.
#
# Environment: SENTRAD, HA_LOAD (set by make), KEEP_HA_TMP=1 keeps the
# directory (logs) afterwards.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
export HA_LOAD=${HA_LOAD:-$ROOT/build/ha/ha_load}
L=$HA_LOAD
HA=$ROOT/scripts/ha.sh

TMP=$(mktemp -d /tmp/sentra-ha.XXXXXX) || exit 1
chmod 755 "$TMP"
D=$TMP/cluster
PASSED=0
FAILED=0
REPORT=()

# A base port with 30 free ports above it, below the kernel's ephemeral
# range (32768 and up here): a port an outgoing connection holds does not
# answer a connect, yet cannot be bound.
pick_port() {
    local base p ok low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    low=${low:-32768}
    for _ in $(seq 50); do
        base=$((20000 + (RANDOM % ((low - 20030) / 10)) * 10))
        ok=1
        for p in $(seq "$base" $((base + 29))); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ok=0; break; fi
        done
        [ $ok = 1 ] && { echo "$base"; return 0; }
    done
    return 1
}

# With KEEP_HA_TMP=1, the cluster's logs are kept (ha.sh down deletes them).
save_logs() {
    [ "${KEEP_HA_TMP:-0}" = 1 ] && [ -d "$D/log" ] && cp -r "$D/log" "$TMP/logs.$(date +%s%N)" 2>/dev/null
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    [ -n "${BG_PIDS:-}" ] && kill -KILL $BG_PIDS 2>/dev/null
    save_logs
    timeout 60 "$HA" down "$D" >/dev/null 2>&1
    if [ "${KEEP_HA_TMP:-0}" = 1 ]; then
        echo "ha-test: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
BG_PIDS=""

ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
note() { echo "  $*"; REPORT+=("$*"); }
now() { "$L" now; }
ha() { timeout "${HA_STEP:-120}" "$HA" "$@"; }

finish() {
    echo
    echo "ha-test report:"
    local r
    for r in "${REPORT[@]}"; do echo "  $r"; done
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
    exit $?
}

cluster_up() {
    HA_PORT=$(pick_port) || { bad "no free ports"; finish; }
    export HA_PORT
    if ! HA_SYNC=$1 ha up "$D" >"$TMP/up.log" 2>&1; then
        cat "$TMP/up.log"
        for f in "$D"/log/*.log; do echo "--- $f"; tail -15 "$f"; done
        bad "cluster up (sync=$1)"
        finish
    fi
    ok "cluster up (sync=$1): $(tr '\n' ' ' <"$TMP/up.log" | sed 's/ha: //g' | cut -c1-200)"
    eval "$("$HA" env "$D")"
    check "the cluster listens on 127.0.0.1 only (ports $HA_PORT-$((HA_PORT + 29)))" loopback_only
    PROXY=127.0.0.1:$P_PROXY
    S1=127.0.0.1:$P_S1
    S2=127.0.0.1:$P_S2
}

token() { "$HA" token "$D" "$@" 2>/dev/null; }

# No listening socket in the cluster's port range on another address than
# 127.0.0.1 (from /proc/net/tcp{,6}: state 0A is LISTEN).
loopback_only() {
    local bad="" sl local rem st port
    while read -r sl local rem st _; do
        [ "$st" = 0A ] || continue
        port=$((16#${local##*:}))
        [ "$port" -ge "$HA_PORT" ] && [ "$port" -le $((HA_PORT + 29)) ] || continue
        case "${local%:*}" in
        0100007F|00000000000000000000000001000000) ;;
        *) bad="$bad $port" ;;
        esac
    done < <(tail -q -n +2 /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    [ -z "$bad" ] || { echo "  listening beyond loopback:$bad"; return 1; }
}

# The sql on the current primary.
on_primary() {
    local p
    p=$("$HA" primary "$D") || return 1
    ha psql "$D" "$p" -c "$1"
}

# acks FILE: checks that every acknowledged write in FILE is on the
# primary, once. Sets MISSING and DUPS.
verify_acks() {
    local f=$1
    on_primary "SELECT id || ' ' || name FROM sentra" | sort >"$TMP/db.txt"
    awk '$1 == "A" {print $4 " " $3}' "$f" | sort >"$TMP/acked.txt"
    MISSING=$(comm -23 "$TMP/acked.txt" "$TMP/db.txt" | wc -l)
    DUPS=$(on_primary "SELECT count(*) FROM (SELECT name FROM sentra GROUP BY name HAVING count(*) > 1) d")
    ACKED=$(wc -l <"$TMP/acked.txt")
}

# The first acknowledgement after mono time $2 in FILE $1 (ms), or "none".
max_stall() { awk '$1 == "S" {for (i = 3; i <= NF; i++) {split($i, a, "="); if (a[1] == "max_stall_ms" && a[2] > m) m = a[2]}} END {print m + 0}' "$1"; }
sum_field() { awk -v k="$2" '$1 == "S" {for (i = 3; i <= NF; i++) {split($i, a, "="); if (a[1] == k) s += a[2]}} END {print s + 0}' "$1"; }

# load FILE SECONDS TAG REGION TOKEN: the write load in the background.
start_load() {
    "$L" write --addr "$PROXY" --token "$5" --seconds "$2" --workers 4 --out "$1" --tag "$3" \
        --region "$4" 2>>"$TMP/load.err" &
    LOAD_PID=$!
    BG_PIDS="$BG_PIDS $LOAD_PID"
}

wait_pid() {
    local pid=$1 secs=$2
    for _ in $(seq $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
}

# Kills the primary node under load, then runs the optional command $1
# (right after the kill), and waits for the failover; sets KILLED, KILL_T
# and FAILOVER_MS.
kill_primary() {
    local p t0 t1
    p=$("$HA" primary "$D") || { bad "no primary before the kill"; return 1; }
    KILLED=$p
    t0=$(now)
    "$HA" kill-node "$D" "$p"
    [ $# -gt 0 ] && "$@"
    if "$HA" wait-primary "$D" 60 >"$TMP/newprimary"; then
        t1=$(now)
        FAILOVER_MS=$((t1 - t0))
        ok "failover: node$(cat "$TMP/newprimary") accepts writes ${FAILOVER_MS} ms after node$p was killed"
    else
        bad "no failover within 60 s after node$p was killed"
        FAILOVER_MS=-1
    fi
    KILL_T=$t0
}

# The longest time between two acknowledgements in FILE $1 from mono time
# $2 on: how long the clients saw no write succeed.
longest_gap() {
    awk -v t="$2" '$1 == "A" && $5 >= t {print $5}' "$1" | sort -n |
        awk -v t="$2" 'BEGIN {prev = t} {if ($1 - prev > m) m = $1 - prev; prev = $1} END {print m + 0}'
}

# ---------------------------------------------------------------- part one: synchronous

echo "=== cluster (synchronous replication)"
cluster_up 1
T_W=$(token district 18.71)
T_PULL=$(token district 18.72)
T_RYW1=$(token district 31.71)
T_RYW2=$(token district 31.72)
T_RYW3=$(token district 31.73)
[ -n "$T_W" ] && [ -n "$T_PULL" ] && [ -n "$T_RYW1" ] || { bad "tokens"; finish; }

echo "=== 1. a long poll on sentrad1 wakes for a write through sentrad2"
"$L" longpoll --addr "$S1" --token "$T_W" --wait-ms 20000 >"$TMP/poll.out" 2>"$TMP/poll.err" &
POLL=$!
BG_PIDS="$BG_PIDS $POLL"
for _ in $(seq 100); do grep -q waiting "$TMP/poll.out" && break; sleep 0.1; done
sleep 0.5
"$L" create --addr "$S2" --token "$T_W" --region 18.71 --tag "longpoll-$$" >/dev/null
wait_pid $POLL 30
woke=$(sed -n 's/^woke_ms=\([0-9]*\) .*/\1/p' "$TMP/poll.out")
nch=$(sed -n 's/.* changes=\([0-9]*\)$/\1/p' "$TMP/poll.out")
check "long poll on sentrad1 answered after ${woke:-?} ms with ${nch:-0} change(s) written through sentrad2" \
    test "${nch:-0}" -ge 1 -a "${woke:-99999}" -lt 10000

echo "=== 2. read-your-writes with reads on the standby"
standby=$((3 - $("$HA" primary "$D")))
# Scans of sentra_stat (what GetStatistics reads) that the standby ran.
reads_on_standby() {
    ha psql "$D" "$standby" -c "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables WHERE relname = 'sentra_stat'"
}
x0=$(reads_on_standby)
out=$(timeout 60 "$L" ryw --addr "$PROXY" --token "$T_RYW1" --region 31.71 --seconds 4 --tag "ryw1-$$")
x1=$(reads_on_standby)
note "read-your-writes, replay running: $out; scans of sentra_stat on the standby meanwhile: $((x1 - x0))"
stale=$(sed -n 's/.*stale=\([0-9]*\).*/\1/p' <<<"$out")
check "read-your-writes by default: no stale read ($out)" test "${stale:-1}" = 0
check "the standby served the reads ($((x1 - x0)) scans of sentra_stat there)" test $((x1 - x0)) -gt 10
ha psql "$D" "$standby" -c "SELECT pg_wal_replay_pause()" >/dev/null
out=$(timeout 60 "$L" ryw --addr "$PROXY" --token "$T_RYW2" --region 31.72 --seconds 3 --tag "ryw2-$$")
stale=$(sed -n 's/.*stale=\([0-9]*\).*/\1/p' <<<"$out")
note "read-your-writes, standby replay paused: $out"
check "read-your-writes with the standby's replay paused: no stale read (reads fall back to the primary)" \
    test "${stale:-1}" = 0
out=$(timeout 60 "$L" ryw --addr "$PROXY" --token "$T_RYW3" --region 31.73 --seconds 3 --bounded --tag "ryw3-$$")
stale=$(sed -n 's/.*stale=\([0-9]*\).*/\1/p' <<<"$out")
note "bounded staleness (sentra-consistency: bounded), standby replay paused: $out"
check "bounded reads with the replay paused do show stale counts (the check can fail)" test "${stale:-0}" -gt 0
ha psql "$D" "$standby" -c "SELECT pg_wal_replay_resume()" >/dev/null

echo "=== 3. kill -9 the primary under a write load (synchronous)"
ACKS=$TMP/acks-sync.txt
start_load "$ACKS" 22 "sync-$$" 18.71 "$T_W"
sleep 7
kill_primary
wait_pid $LOAD_PID 90
WINDOW=$(longest_gap "$ACKS" "$((KILL_T - 1000))")
resumed=$(awk -v t="$((KILL_T + FAILOVER_MS))" '$1 == "A" && $5 > t' "$ACKS" | wc -l)
verify_acks "$ACKS"
note "synchronous, primary killed: $ACKED writes acknowledged, $MISSING missing afterwards, $DUPS duplicated; failover ${FAILOVER_MS} ms; unavailability window (longest time without an acknowledged write) ${WINDOW} ms; longest single write $(max_stall "$ACKS") ms; retries $(sum_field "$ACKS" retries)"
check "writes resumed after the failover ($resumed acknowledged after it)" test "$resumed" -gt 100
check "every acknowledged write ($ACKED) is on the new primary" test "$MISSING" = 0 -a "$ACKED" -gt 100
check "no write applied twice" test "$DUPS" = 0
check "no write rejected by the server" test "$(sum_field "$ACKS" rejected)" = 0

echo "=== the killed node rejoins as a standby"
ha start-node "$D" "$KILLED"
check "node$KILLED rejoined and the primary waits for it again" "$HA" wait-sync "$D" 120

echo "=== the sentrad send reads to the new standby again, without a restart"
standby=$KILLED
back=no
for i in $(seq 9); do
    # A fresh regency each time (32.01 ... 32.09): ryw counts from zero.
    tok=$(token district "32.0$i")
    x0=$(reads_on_standby)
    out=$(timeout 30 "$L" ryw --addr "$PROXY" --token "$tok" --region "32.0$i" --seconds 2 --tag "ryw4-$$-$i")
    x1=$(reads_on_standby)
    stale=$(sed -n 's/.*stale=\([0-9]*\).*/\1/p' <<<"$out")
    [ "${stale:-1}" = 0 ] || { bad "stale read after the failover: $out"; break; }
    if [ $((x1 - x0)) -gt 10 ]; then back="after $((i * 2)) s of reads ($((x1 - x0)) scans on node$standby)"; break; fi
done
note "reads on the new standby (node$standby) again: $back"
check "reads go to the new standby again ($back)" test "$back" != no

echo "=== 4. kill -9 each sentrad under load, a district app's pull in flight"
# 1200 records for the district app to pull, then a load elsewhere.
"$L" write --addr "$PROXY" --token "$T_PULL" --seconds 3 --workers 4 --out "$TMP/acks-pullset.txt" \
    --tag "pullset-$$" --region 18.72 2>>"$TMP/load.err"
ACKS2=$TMP/acks-sentrad.txt
start_load "$ACKS2" 16 "sd-$$" 18.71 "$T_W"
# About 100 pages, 100 ms apart: the pull is in flight at both kills.
npull=$(grep -c '^A' "$TMP/acks-pullset.txt")
page=$(( npull / 100 > 0 ? npull / 100 : 1 ))
"$L" pull --addr "$PROXY" --token "$T_PULL" --page "$page" --delay-ms 100 --out "$TMP/pulled.txt" \
    >"$TMP/pull.out" 2>"$TMP/pull.err" &
PULL=$!
BG_PIDS="$BG_PIDS $PULL"
sleep 3
"$HA" kill-sentrad "$D" 1
sleep 1.5
down1=$("$HA" backends-up "$D" 2 >/dev/null && echo "both up" || echo "one down")
ha start-sentrad "$D" 1
for _ in $(seq 50); do "$HA" backends-up "$D" 2 && break; sleep 0.2; done
sleep 2
"$HA" kill-sentrad "$D" 2
sleep 1.5
ha start-sentrad "$D" 2
wait_pid $PULL 120
pull_rc=$?
wait_pid $LOAD_PID 90
verify_acks "$ACKS2"
check "HAProxy marked the killed sentrad down ($down1)" test "$down1" = "one down"
check "every acknowledged write ($ACKED) survived the sentrad kills" test "$MISSING" = 0 -a "$ACKED" -gt 100
check "no write applied twice" test "$DUPS" = 0
on_primary "SELECT id FROM sentra WHERE regency_code = '18.72' AND deleted_at IS NULL" | sort >"$TMP/pullset.db"
awk '{print $2}' "$TMP/pulled.txt" | sort >"$TMP/pulled.ids"
gap=$(comm -23 "$TMP/pullset.db" "$TMP/pulled.ids" | wc -l)
dup=$(uniq -d "$TMP/pulled.ids" | wc -l)
note "pull across sentrad kills: $(cat "$TMP/pull.out"), $(wc -l <"$TMP/pullset.db") records in scope, $gap missing, $dup repeated"
check "the pull finished (status $pull_rc) and was hit by a kill ($(cat "$TMP/pull.out"))" \
    grep -q "retries=[1-9]" "$TMP/pull.out"
check "the pull has no gap and no duplicate ($gap missing, $dup repeated)" test "$gap" = 0 -a "$dup" = 0 -a -s "$TMP/pullset.db"

echo "=== 5a. the primary killed after its WAL sender stalled for 2 s (synchronous)"
# stall_kill ACKS TAG: load; SIGSTOP the primary's WAL sender for 2 s of
# it (the WAL stays on the primary: a standby falling behind, a slow
# link); kill -9 the primary; failover; sets LOST, STALLED_ACKS.
# (Stopping the standby's WAL receiver instead shows nothing: the kernel's
# socket buffers keep what was sent, and the standby reads it after.)
stall_kill() {
    local acks=$1 tag=$2 p ws t0 t1
    start_load "$acks" 14 "$tag" 18.71 "$T_W"
    sleep 5
    p=$("$HA" primary "$D")
    ws=$("$HA" walsender "$D" "$p" | tr '\n' ' ')
    [ -n "$ws" ] || { bad "no WAL sender on node$p"; return 1; }
    t0=$(now)
    # shellcheck disable=SC2086
    kill -STOP $ws
    sleep 0.3
    t1=$(now)
    sleep 1.7
    # Acknowledged once the stall had surely begun (300 ms in).
    n_stalled=$(awk -v t="$t1" '$1 == "A" && $5 > t' "$acks" | wc -l)
    kill_primary
    wait_pid $LOAD_PID 90
    verify_acks "$acks"
    STALLED_ACKS=$n_stalled
    LOST=$MISSING
}
stall_kill "$TMP/acks-stall-sync.txt" "ssync-$$"
note "synchronous, WAL sender stalled 2 s then primary killed: $STALLED_ACKS writes acknowledged during the stall, $ACKED in all, $LOST missing afterwards, $DUPS duplicated"
check "synchronous: no write acknowledged during the stall ($STALLED_ACKS: they wait for the standby)" \
    test "$STALLED_ACKS" = 0
check "synchronous: nothing acknowledged is lost ($LOST) or applied twice ($DUPS)" \
    test "$LOST" = 0 -a "$DUPS" = 0

echo "=== 5b. the same with asynchronous replication"
save_logs
HA_STEP=60 ha down "$D" >/dev/null 2>&1
cluster_up 0
T_W=$(token district 18.71)
stall_kill "$TMP/acks-stall-async.txt" "sasync-$$"
note "asynchronous, WAL sender stalled 2 s then primary killed: $STALLED_ACKS writes acknowledged during the stall, $ACKED in all, $LOST of them missing on the new primary"
check "asynchronous replication loses acknowledged writes in the same fault ($LOST lost; the synchronous test is what catches it)" \
    test "$LOST" -gt 0

finish
