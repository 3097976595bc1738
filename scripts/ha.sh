#!/bin/bash
# ha.sh: a local high-availability cluster on loopback, for trying sentra's
# failover and for `make ha-test` (docs/DEPLOY.md has the same on three
# machines).
#
#   scripts/ha.sh up DIR          a pg_auto_failover monitor, a PostgreSQL 15
#                                 primary and a synchronous hot standby,
#                                 database "sentra" migrated, two sentrad
#                                 (--db both nodes read-write, --db-read the
#                                 standby) and HAProxy in front of them
#   scripts/ha.sh down DIR        stops everything and deletes DIR
#   scripts/ha.sh status DIR      the pg_auto_failover state, and who runs
#   scripts/ha.sh env DIR         the ports and conninfos (shell variables)
#   scripts/ha.sh primary DIR     prints the node (1 or 2) that is primary now
#   scripts/ha.sh kill-node DIR N kill -9 node N: its pg_autoctl keeper, its
#                                 postmaster and every backend at once (the
#                                 machine dies)
#   scripts/ha.sh walsender DIR N    the pids of node N's WAL senders
#   scripts/ha.sh start-node DIR N  start node N again (it rejoins as standby)
#   scripts/ha.sh kill-sentrad DIR N / start-sentrad DIR N
#   scripts/ha.sh wait-primary DIR SECONDS   wait until a node is primary
#                                 and accepts writes; prints its number
#   scripts/ha.sh wait-sync DIR SECONDS      wait until a primary has a
#                                 standby in the synchronous quorum again
#   scripts/ha.sh psql DIR N ARGS...  psql as postgres on node N, db sentra
#   scripts/ha.sh token DIR ROLE [REGION]    create an API token
#
# Environment: SENTRAD (bin/sentrad), HA_LOAD (build/ha/ha_load, for the
# HAProxy health check's bytes), HA_PORT (first of 30 consecutive ports,
# default 16400), HA_SYNC (1: synchronous replication, the default; 0:
# asynchronous, the standby out of the write quorum), HA_FAST_TIMEOUTS (1,
# default: failure detection in about 3 s; 0: pg_auto_failover's defaults,
# about 30 s).
#
# Ports from HA_PORT: +0 monitor, +1 node1, +2 node2, +10 sentrad1,
# +11 sentrad2, +20 HAProxy (native protocol), +21 HAProxy statistics
# (http://127.0.0.1:PORT/). Everything listens on 127.0.0.1 only.
#
# PostgreSQL and pg_autoctl run as the system user postgres when we are
# root (initdb refuses root), each node in a process group of its own so
# that kill-node can kill it whole; sentrad and HAProxy run as the caller.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SENTRAD=${SENTRAD:-$ROOT/bin/sentrad}
HA_LOAD=${HA_LOAD:-$ROOT/build/ha/ha_load}
HA_PORT=${HA_PORT:-16400}
HA_SYNC=${HA_SYNC:-1}
HA_FAST_TIMEOUTS=${HA_FAST_TIMEOUTS:-1}

die() { echo "ha: $*" >&2; exit 1; }
log() { echo "ha: $*" >&2; }

usage() {
    sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
shift 2
case "$DIR" in /*) ;; *) DIR=$PWD/$DIR ;; esac
DIR=${DIR%/}

PGBIN=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null)
[ -n "$PGBIN" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PGDIR=$DIR/pg
RUN=$DIR/run
LOGD=$DIR/log

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

# Reads the ports of an existing cluster (up writes them).
if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/env"
else
    P_MON=$HA_PORT
    P_NODE1=$((HA_PORT + 1))
    P_NODE2=$((HA_PORT + 2))
    P_S1=$((HA_PORT + 10))
    P_S2=$((HA_PORT + 11))
    P_PROXY=$((HA_PORT + 20))
    P_STATS=$((HA_PORT + 21))
fi
node_port() { [ "$1" = 1 ] && echo "$P_NODE1" || echo "$P_NODE2"; }
sentrad_port() { [ "$1" = 1 ] && echo "$P_S1" || echo "$P_S2"; }

DB_RW="host=127.0.0.1,127.0.0.1 port=$P_NODE1,$P_NODE2 dbname=sentra user=sentra target_session_attrs=read-write connect_timeout=2 keepalives_idle=5 keepalives_interval=1 keepalives_count=3"
DB_RO="host=127.0.0.1,127.0.0.1 port=$P_NODE2,$P_NODE1 dbname=sentra user=sentra target_session_attrs=prefer-standby connect_timeout=2 keepalives_idle=5 keepalives_interval=1 keepalives_count=3"
MONITOR_URI="postgres://autoctl_node@127.0.0.1:$P_MON/pg_auto_failover?sslmode=disable"

# Runs a command as postgres (when root), with pg_autoctl's configuration
# and state under DIR rather than in postgres's home.
as_pg() {
    local envs=(XDG_CONFIG_HOME="$PGDIR/xdg/config" XDG_DATA_HOME="$PGDIR/xdg/data"
                XDG_RUNTIME_DIR="$PGDIR/xdg/run" PATH="$PGBIN:/usr/bin:/bin"
                PG_CONFIG="$PGBIN/pg_config")
    if [ $IS_ROOT = 1 ]; then
        runuser -u postgres -- env "${envs[@]}" "$@"
    else
        env "${envs[@]}" "$@"
    fi
}

# Starts "$@" as postgres in a process group of its own; the group id goes
# to $PGDIR/run/NAME.pgid. Output to $LOGD/NAME.log.
spawn_pg() {
    local name=$1
    shift
    rm -f "$PGDIR/run/$name.pgid"
    # The inner shell writes its own pid (the group leader's) before exec.
    as_pg setsid bash -c 'echo $$ > "$0"; exec "$@"' "$PGDIR/run/$name.pgid" "$@" \
        </dev/null >>"$LOGD/$name.log" 2>&1 &
    for _ in $(seq 100); do
        [ -s "$PGDIR/run/$name.pgid" ] && return 0
        sleep 0.05
    done
    die "$name did not start (see $LOGD/$name.log)"
}

# psql as the superuser on a port.
psql_port() {
    local port=$1 db=$2
    shift 2
    as_pg "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

monitor_sql() { psql_port "$P_MON" pg_auto_failover -c "$1" 2>/dev/null; }

# The reported state of node N at the monitor.
node_state() { monitor_sql "SELECT reportedstate FROM pgautofailover.node WHERE nodename = 'node$1'"; }

wait_for() {
    local what=$1 secs=$2
    shift 2
    local end=$((SECONDS + secs))
    while [ $SECONDS -lt $end ]; do
        "$@" >/dev/null && return 0
        sleep 0.2
    done
    return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The node (1 or 2) that accepts writes now, or nothing.
current_primary() {
    local n r
    for n in 1 2; do
        r=$(psql_port "$(node_port $n)" postgres -c "SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off'" 2>/dev/null)
        if [ "$r" = t ]; then
            echo "$n"
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------- processes

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

group_alive() { [ -n "$1" ] && kill -0 -- "-$1" 2>/dev/null; }

# Stops a process group: TERM, up to $2 seconds, then KILL.
stop_group() {
    local g=$1 secs=${2:-10}
    group_alive "$g" || return 0
    kill -TERM -- "-$g" 2>/dev/null
    for _ in $(seq $((secs * 10))); do
        group_alive "$g" || return 0
        sleep 0.1
    done
    kill -KILL -- "-$g" 2>/dev/null
    for _ in $(seq 50); do
        group_alive "$g" || return 0
        sleep 0.1
    done
}

node_pgid() { cat "$PGDIR/run/$1.pgid" 2>/dev/null; }

postmaster_pid() { as_pg head -1 "$PGDIR/node$1/postmaster.pid" 2>/dev/null; }

start_sentrad() {
    local n=$1 port
    port=$(sentrad_port "$n")
    port_free "$port" || die "port $port is taken"
    # setsid: a group of its own, out of the caller's (and its signals).
    setsid "$SENTRAD" --db "$DB_RW" --db-read "$DB_RO" --host 127.0.0.1 --port "$port" \
        --no-migrate --migrations "$ROOT/migrations" --db-read-max-lag "${HA_READ_MAX_LAG:-30000}" \
        --grace 2000 </dev/null >>"$LOGD/sentrad$n.log" 2>&1 &
    echo $! >"$RUN/sentrad$n.pid"
    wait_for "sentrad$n" 20 port_open "$port" || die "sentrad$n did not listen on $port (see $LOGD/sentrad$n.log)"
}

stop_pid_file() {
    local f=$1 p
    p=$(cat "$f" 2>/dev/null)
    if pid_alive "$p"; then
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 50); do pid_alive "$p" || break; sleep 0.1; done
        pid_alive "$p" && kill -KILL "$p" 2>/dev/null
    fi
    rm -f "$f"
}

# ---------------------------------------------------------------- up

write_haproxy_cfg() {
    local hex
    hex=$("$HA_LOAD" health-hex) || die "cannot build the health check request ($HA_LOAD)"
    cat >"$DIR/haproxy.cfg" <<EOF
# Written by scripts/ha.sh. HAProxy in front of the two sentrad, TCP mode
# (the native protocol), each checked every 500 ms over the protocol
# itself: a Health/Check request, and SERVING (HealthCheckResponse.status
# 1, bytes 08 01 inside the response payload, tag 2a) expected back.
global
    maxconn 4000
    pidfile $RUN/haproxy.pid

defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout check 2s
    retries 3
    option redispatch

frontend sentra
    bind 127.0.0.1:$P_PROXY
    default_backend sentrad

backend sentrad
    balance roundrobin
    option tcp-check
    tcp-check connect
    tcp-check send-binary $hex
    tcp-check expect rbinary 2[aA][0-9a-fA-F]{2}0801
    default-server inter 500 fall 2 rise 1 on-marked-down shutdown-sessions
    server sentrad1 127.0.0.1:$P_S1 check
    server sentrad2 127.0.0.1:$P_S2 check

listen stats
    mode http
    bind 127.0.0.1:$P_STATS
    stats enable
    stats uri /
EOF
}

cmd_up() {
    [ -n "$PGBIN" ] && [ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL server binaries not found"
    command -v pg_autoctl >/dev/null || die "pg_autoctl missing (scripts/deps.sh --ha)"
    command -v haproxy >/dev/null || die "haproxy missing (scripts/deps.sh --ha)"
    [ -x "$SENTRAD" ] || die "no sentrad at $SENTRAD (make)"
    [ -x "$HA_LOAD" ] || die "no ha_load at $HA_LOAD (make ha-load)"
    [ -e "$DIR" ] && die "$DIR exists: scripts/ha.sh down $DIR first"
    local p
    for p in $P_MON $P_NODE1 $P_NODE2 $P_S1 $P_S2 $P_PROXY $P_STATS; do
        port_free "$p" || die "port $p is taken (set HA_PORT)"
    done
    if [ $IS_ROOT = 1 ] && ! id -u postgres >/dev/null 2>&1; then
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin postgres || die "cannot create user postgres"
    fi
    mkdir -p "$DIR" "$RUN" "$LOGD" || die "cannot create $DIR"
    chmod 755 "$DIR" "$LOGD"
    mkdir -p "$PGDIR"
    [ $IS_ROOT = 1 ] && chown postgres:postgres "$PGDIR" "$LOGD"
    as_pg mkdir -p "$PGDIR/run" "$PGDIR/xdg/config" "$PGDIR/xdg/data" "$PGDIR/xdg/run" ||
        die "user postgres cannot write $PGDIR (a parent directory closed to it?)"
    as_pg chmod 700 "$PGDIR/xdg/run"
    cat >"$DIR/env" <<EOF
P_MON=$P_MON
P_NODE1=$P_NODE1
P_NODE2=$P_NODE2
P_S1=$P_S1
P_S2=$P_S2
P_PROXY=$P_PROXY
P_STATS=$P_STATS
HA_SYNC=$HA_SYNC
EOF

    log "monitor on 127.0.0.1:$P_MON"
    as_pg pg_autoctl create monitor --pgdata "$PGDIR/monitor" --pgport "$P_MON" \
        --hostname 127.0.0.1 --auth trust --no-ssl >>"$LOGD/monitor.log" 2>&1 ||
        die "pg_autoctl create monitor failed (see $LOGD/monitor.log)"
    # Loopback only: pg_autoctl starts the monitor's postgres with -h from
    # its own configuration ('*' by default), which beats postgresql.conf.
    as_pg pg_autoctl config set --pgdata "$PGDIR/monitor" postgresql.listen_addresses 127.0.0.1 \
        >>"$LOGD/monitor.log" 2>&1 || die "cannot set the monitor's listen address"
    spawn_pg monitor pg_autoctl run --pgdata "$PGDIR/monitor"
    wait_for monitor 60 monitor_sql "SELECT 1" || die "the monitor did not come up (see $LOGD/monitor.log)"
    if [ "$HA_FAST_TIMEOUTS" = 1 ]; then
        # Failure detection in seconds rather than half a minute: right on
        # loopback, too eager across a real network (docs/DEPLOY.md).
        monitor_sql "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" >/dev/null
        monitor_sql "ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000" >/dev/null
        monitor_sql "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" >/dev/null
        monitor_sql "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500" >/dev/null
        monitor_sql "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 2000" >/dev/null
        monitor_sql "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 2000" >/dev/null
        monitor_sql "SELECT pg_reload_conf()" >/dev/null
    fi

    local n
    for n in 1 2; do
        log "node$n on 127.0.0.1:$(node_port $n)"
        spawn_pg "node$n" pg_autoctl create postgres --pgdata "$PGDIR/node$n" \
            --pgport "$(node_port $n)" --listen 127.0.0.1 --hostname 127.0.0.1 --name "node$n" \
            --dbname sentra --auth trust --no-ssl --monitor "$MONITOR_URI" --run
        if [ $n = 1 ]; then
            wait_for node1 90 node1_writable || die "node1 did not become primary (see $LOGD/node1.log)"
            psql_port "$P_NODE1" sentra -c "CREATE ROLE sentra LOGIN" \
                -c "ALTER DATABASE sentra OWNER TO sentra" >/dev/null ||
                die "cannot create role sentra"
        fi
    done
    # pg_autoctl's pg_basebackup waits for a spread checkpoint (minutes on
    # an idle server): ask for one now, until the standby is in.
    local end=$((SECONDS + 120))
    while [ "$(node_state 2)" != secondary ] || [ "$(node_state 1)" != primary ]; do
        [ $SECONDS -lt $end ] || die "the standby did not join (see $LOGD/node2.log)"
        psql_port "$P_NODE1" postgres -c "CHECKPOINT" >/dev/null 2>&1
        sleep 1
    done
    if [ "$HA_SYNC" = 0 ]; then
        as_pg pg_autoctl set node replication-quorum false --pgdata "$PGDIR/node2" \
            >>"$LOGD/node2.log" 2>&1 || die "cannot make the standby asynchronous"
        wait_for async 30 sync_names_are "''" || die "the primary still waits for the standby"
        log "replication: asynchronous (HA_SYNC=0)"
    else
        wait_for sync 30 sync_names_are "'ANY 1 (pgautofailover_standby_2)'" ||
            die "the primary does not wait for the standby"
        log "replication: synchronous (ANY 1 standby)"
    fi

    "$SENTRAD" migrate --db "$DB_RW" --migrations "$ROOT/migrations" >>"$LOGD/migrate.log" 2>&1 ||
        die "migrations failed (see $LOGD/migrate.log)"
    for n in 1 2; do
        start_sentrad $n
        log "sentrad$n on 127.0.0.1:$(sentrad_port $n)"
    done
    write_haproxy_cfg
    haproxy -c -q -f "$DIR/haproxy.cfg" || die "bad HAProxy configuration $DIR/haproxy.cfg"
    setsid haproxy -W -db -f "$DIR/haproxy.cfg" </dev/null >>"$LOGD/haproxy.log" 2>&1 &
    echo $! >"$RUN/haproxy.master.pid"
    wait_for haproxy 20 port_open "$P_PROXY" || die "HAProxy did not listen (see $LOGD/haproxy.log)"
    wait_for checks 20 backends_up 2 || die "HAProxy does not see both sentrad up (see $LOGD/haproxy.log)"
    log "HAProxy on 127.0.0.1:$P_PROXY (statistics: http://127.0.0.1:$P_STATS/)"
    log "up. Try: bin/sentra-cli --addr 127.0.0.1:$P_PROXY ... ; tokens: scripts/ha.sh token $DIR district 18.71"
}

# node1 is up as a primary and pg_autoctl has created database sentra.
node1_writable() {
    case "$(node_state 1)" in single|wait_primary|primary) ;; *) return 1 ;; esac
    [ "$(current_primary)" = 1 ] &&
        [ "$(psql_port "$P_NODE1" postgres -c "SELECT 1 FROM pg_database WHERE datname = 'sentra'" 2>/dev/null)" = 1 ]
}

sync_names_are() {
    local p
    p=$(current_primary) || return 1
    [ "$(psql_port "$(node_port "$p")" postgres -c "SHOW synchronous_standby_names")" = "$1" ] ||
        [ "'$(psql_port "$(node_port "$p")" postgres -c "SHOW synchronous_standby_names")'" = "$1" ]
}

# How many sentrad HAProxy has UP; true when at least $1.
backends_up() {
    local n
    n=$(haproxy_stat | awk -F, '$1 == "sentrad" && $2 ~ /^sentrad[0-9]$/ && $18 == "UP" {n++} END {print n+0}')
    [ "${n:-0}" -ge "$1" ]
}

# HAProxy's statistics as CSV, over its HTTP page (bash's /dev/tcp: no
# other tool needed).
haproxy_stat() {
    (exec 3<>"/dev/tcp/127.0.0.1/$P_STATS" || exit 1
     printf 'GET /;csv HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
     timeout 5 cat <&3) 2>/dev/null | tr -d '\r'
}

# ---------------------------------------------------------------- down

cmd_down() {
    [ -e "$DIR" ] || return 0
    stop_pid_file "$RUN/haproxy.master.pid"
    local n g
    for n in 1 2; do stop_pid_file "$RUN/sentrad$n.pid"; done
    for n in node2 node1 monitor; do
        g=$(node_pgid $n)
        [ -n "$g" ] && stop_group "$g" 15
    done
    # Nothing of ours may survive: a postmaster left by a killed keeper (its
    # pid in the node's postmaster.pid) goes with its children.
    local pm
    for n in node1 node2 monitor; do
        pm=$(as_pg head -1 "$PGDIR/$n/postmaster.pid" 2>/dev/null)
        if [ -n "$pm" ] && pid_alive "$pm" && grep -q postgres "/proc/$pm/cmdline" 2>/dev/null; then
            log "stopping the postmaster left by $n (pid $pm)"
            # shellcheck disable=SC2046
            kill -KILL "$pm" $(pgrep -P "$pm") 2>/dev/null
            sleep 0.5
        fi
    done
    rm -rf -- "$DIR"
    log "down: $DIR removed"
}

# ---------------------------------------------------------------- other commands

case "$CMD" in
up)
    cmd_up
    ;;
down)
    cmd_down
    ;;
env)
    cat "$DIR/env"
    printf 'DB_RW=%q\nDB_RO=%q\n' "$DB_RW" "$DB_RO"
    ;;
status)
    as_pg pg_autoctl show state --pgdata "$PGDIR/monitor" 2>/dev/null
    as_pg pg_autoctl show settings --pgdata "$PGDIR/monitor" 2>/dev/null
    for n in 1 2; do
        p=$(cat "$RUN/sentrad$n.pid" 2>/dev/null)
        echo "sentrad$n (127.0.0.1:$(sentrad_port $n)): $(pid_alive "$p" && echo "running, pid $p" || echo stopped)"
    done
    haproxy_stat | awk -F, '$1 == "sentrad" && $2 ~ /^sentrad/ {print "haproxy: " $2 " " $18}'
    ;;
primary)
    current_primary || exit 1
    ;;
wait-primary)
    end=$((SECONDS + ${1:-60}))
    while [ $SECONDS -lt $end ]; do
        current_primary && exit 0
        sleep 0.1
    done
    exit 1
    ;;
wait-sync)
    end=$((SECONDS + ${1:-60}))
    while [ $SECONDS -lt $end ]; do
        sync_names_are "'ANY 1 (pgautofailover_standby_1)'" && exit 0
        sync_names_are "'ANY 1 (pgautofailover_standby_2)'" && exit 0
        sleep 0.5
    done
    exit 1
    ;;
kill-node)
    # The keeper, the postmaster and every backend at once: PostgreSQL's
    # children are process groups of their own, so the node's group is not
    # enough (killed alone, the postmaster lets its backends end cleanly).
    g=$(node_pgid "node$1")
    group_alive "$g" || die "node$1 is not running"
    pm=$(postmaster_pid "$1")
    # shellcheck disable=SC2046
    kill -KILL $(pgrep -g "$g") $([ -n "$pm" ] && pgrep -P "$pm") 2>/dev/null
    ;;
walsender)
    # The pids of node N's WAL senders (while it is a primary).
    pm=$(postmaster_pid "$1")
    [ -n "$pm" ] && pgrep -P "$pm" -f "walsender"
    ;;
start-node)
    g=$(node_pgid "node$1")
    group_alive "$g" && die "node$1 is running"
    spawn_pg "node$1" pg_autoctl run --pgdata "$PGDIR/node$1"
    ;;
kill-sentrad)
    p=$(cat "$RUN/sentrad$1.pid" 2>/dev/null)
    pid_alive "$p" || die "sentrad$1 is not running"
    kill -KILL "$p"
    ;;
start-sentrad)
    start_sentrad "$1"
    ;;
backends-up)
    backends_up "$1"
    ;;
psql)
    n=$1
    shift
    psql_port "$(node_port "$n")" sentra "$@"
    ;;
token)
    role=$1
    shift
    if [ $# -ge 1 ]; then
        "$SENTRAD" token create --db "$DB_RW" --role "$role" --region "$1" --label ha | tail -1
    else
        "$SENTRAD" token create --db "$DB_RW" --role "$role" --label ha | tail -1
    fi
    ;;
*)
    usage
    ;;
esac
