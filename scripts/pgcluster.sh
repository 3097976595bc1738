#!/bin/bash
# pgcluster.sh: the private PostgreSQL cluster that `make run` and the test
# suite use when no database URL is given.
#
#   scripts/pgcluster.sh ensure   DIR       initdb if needed, start, create role
#                                           and database "sentra"; prints the
#                                           conninfo on stdout and nothing else
#   scripts/pgcluster.sh start    DIR       start (no-op when running)
#   scripts/pgcluster.sh stop     DIR       fast shutdown (no error when stopped)
#   scripts/pgcluster.sh destroy  DIR       stop and delete the cluster
#   scripts/pgcluster.sh status   DIR       "running" / "stopped" / "absent"
#                                           (exit 0 / 3 / 4)
#   scripts/pgcluster.sh conninfo DIR       print the conninfo of database sentra
#   scripts/pgcluster.sh createdb DIR NAME  (re)create database NAME owned by
#                                           sentra; prints its conninfo
#
# Layout: DIR/data (PGDATA), DIR/sock (the Unix socket; no TCP at all),
# DIR/log (server and initdb logs). Local connections use trust auth, so the
# socket directory's permissions are the access control.
#
# As root, initdb and postgres refuse to run; the cluster then belongs to the
# system user "postgres" (created if missing) and runs under runuser. If
# postgres cannot reach DIR (say the repository sits under /root, mode 700),
# the data goes to /var/lib/sentra/pg-<hash of DIR> and DIR becomes a
# symlink to it; `destroy` removes both.
#
# SENTRA_PG_FAST=1 at creation (or at any later start/ensure; =0 turns it off
# again) trades durability for speed: fsync, synchronous_commit and
# full_page_writes off, smaller shared_buffers. Only for throwaway test
# clusters: a crash of the machine can corrupt such a cluster.
set -u

PORT=5432
SUPERUSER=postgres
RELOCATE_BASE=${SENTRA_PG_RELOCATE_BASE:-/var/lib/sentra}

die() { echo "pgcluster: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 ensure|start|stop|destroy|status|conninfo DIR" >&2
    echo "       $0 createdb DIR NAME" >&2
    exit 2
}

# ---------------------------------------------------------------- binaries

find_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        d=$(pg_config --bindir 2>/dev/null)
    fi
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] ||
        die "no PostgreSQL server binaries (initdb, pg_ctl) found under /usr/lib/postgresql/*/bin or pg_config --bindir; install postgresql (scripts/deps.sh --install)"
    BINDIR=$d
}

# ---------------------------------------------------------------- users

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

# Runs a command as the cluster's owner: postgres when we are root.
as_owner() {
    if [ $IS_ROOT = 1 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_postgres_user() {
    [ $IS_ROOT = 1 ] || return 0
    id -u postgres >/dev/null 2>&1 && return 0
    echo "pgcluster: creating system user postgres" >&2
    useradd -r -M -d /nonexistent -s /usr/sbin/nologin postgres 2>/dev/null ||
        useradd -r -M postgres ||
        die "cannot create the system user postgres (needed to run PostgreSQL as root)"
}

# ---------------------------------------------------------------- paths

# Sets DIR to an absolute, symlink-free path; the cluster's files live in
# DATA, SOCK and LOGD below it.
resolve_dir() {
    local d=$1
    case "$d" in /*) ;; *) d="$PWD/$d" ;; esac
    GIVEN=${d%/}
    case "$d" in *"'"*|*"
"*) die "DIR must not contain a quote or a newline: $d" ;; esac
    if [ -e "$d" ] || [ -L "$d" ]; then
        d=$(readlink -f -- "$d") || die "cannot resolve $1"
    fi
    DIR=$d
    DATA=$DIR/data
    SOCK=$DIR/sock
    LOGD=$DIR/log
}

# Whether user postgres can enter and write directory $1.
owner_can_use() {
    [ $IS_ROOT = 1 ] || return 0
    runuser -u postgres -- test -w "$1" -a -x "$1" 2>/dev/null
}

# Creates DIR (or its relocated target) ready for the owner.
prepare_dir() {
    local link=$DIR hash target
    if [ ! -d "$DIR" ]; then
        mkdir -p -- "$DIR" || die "cannot create $DIR"
    fi
    if [ $IS_ROOT = 1 ]; then
        chown postgres:postgres "$DIR" || die "cannot chown $DIR to postgres"
        if ! owner_can_use "$DIR"; then
            # A parent directory is closed to postgres. Move the cluster to
            # a place it can reach, if DIR is still empty.
            if [ -n "$(ls -A -- "$DIR" 2>/dev/null)" ]; then
                die "user postgres cannot reach $DIR (a parent directory is not searchable by it) and $DIR is not empty; make the path searchable (chmod o+x on each parent) or choose another directory"
            fi
            hash=$(printf '%s' "$link" | sha256sum | cut -c1-16)
            target=$RELOCATE_BASE/pg-$hash
            mkdir -p -- "$RELOCATE_BASE" && chmod 755 "$RELOCATE_BASE" ||
                die "cannot create $RELOCATE_BASE"
            mkdir -p -- "$target" && chown postgres:postgres "$target" ||
                die "cannot create $target"
            owner_can_use "$target" ||
                die "user postgres cannot use $target either; set SENTRA_PG_RELOCATE_BASE to a directory it can reach"
            rmdir -- "$DIR" && ln -s -- "$target" "$DIR" ||
                die "cannot replace $DIR with a symlink to $target"
            echo "pgcluster: user postgres cannot reach $link; the cluster lives in $target ($link links to it)" >&2
            resolve_dir "$link"
        fi
    fi
    as_owner mkdir -p -- "$SOCK" "$LOGD" || die "cannot create $SOCK and $LOGD"
    as_owner chmod 700 "$SOCK" 2>/dev/null
    # The socket path must fit in sockaddr_un.sun_path (108 bytes).
    [ ${#SOCK} -le 90 ] || die "socket directory path too long (${#SOCK} > 90 bytes): $SOCK; choose a shorter DIR"
}

conninfo_of() {
    local h=$SOCK
    # libpq conninfo: a value with spaces, quotes or backslashes is quoted.
    case "$h" in
    *" "*|*"'"*|*\\*) h="'$(printf '%s' "$h" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")'" ;;
    esac
    printf 'host=%s port=%s dbname=%s user=sentra\n' "$h" "$PORT" "$1"
}

# ---------------------------------------------------------------- state

# 0 running, 3 stopped, 4 no cluster.
cluster_state() {
    [ -f "$DATA/PG_VERSION" ] || return 4
    as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
    case $? in
    0) return 0 ;;
    *) return 3 ;;
    esac
}

# The part of the configuration sentra controls. postgresql.conf includes it.
write_conf() {
    local fast=$1 sb=512MB ewc=8GB extra=""
    if [ "$fast" = 1 ]; then
        sb=128MB
        extra="fsync = off
synchronous_commit = off
full_page_writes = off"
    fi
    as_owner tee "$DATA/sentra.conf" >/dev/null <<EOF
# Written by scripts/pgcluster.sh; rewritten by it, do not edit.
# Sized for a 2-core, 24 GiB machine.
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = $sb
effective_cache_size = $ewc
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 2GB
min_wal_size = 256MB
random_page_cost = 1.1
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
log_min_duration_statement = 1000
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
log_timezone = 'UTC'
# sentra_fast = $fast
$extra
EOF
    [ $? = 0 ] || die "cannot write $DATA/sentra.conf"
}

conf_fast() {
    grep -q '^# sentra_fast = 1' "$DATA/sentra.conf" 2>/dev/null && echo 1 || echo 0
}

do_initdb() {
    ensure_postgres_user
    prepare_dir
    if [ -e "$DATA" ] && [ ! -f "$DATA/PG_VERSION" ] && [ -n "$(ls -A -- "$DATA" 2>/dev/null)" ]; then
        die "$DATA exists, is not empty and holds no cluster; remove it or choose another DIR"
    fi
    # Unix socket only, trust for local connections, no TCP at all. A fast
    # (test) cluster also skips initdb's final fsync of every file.
    local nosync=""
    [ "${SENTRA_PG_FAST:-0}" = 1 ] && nosync=--no-sync
    if ! as_owner "$BINDIR/initdb" -D "$DATA" -U "$SUPERUSER" --encoding=UTF8 \
            --locale=C.UTF-8 --auth-local=trust --auth-host=reject $nosync \
            >"$LOGD/initdb.log" 2>&1; then
        echo "pgcluster: initdb failed; its output ($LOGD/initdb.log):" >&2
        tail -20 "$LOGD/initdb.log" >&2
        exit 1
    fi
    write_conf "${SENTRA_PG_FAST:-0}"
    printf "\ninclude 'sentra.conf'\n" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null ||
        die "cannot edit $DATA/postgresql.conf"
}

do_start() {
    cluster_state
    case $? in
    0) return 0 ;;
    4) die "no cluster in $DIR (run: $0 ensure $DIR)" ;;
    esac
    prepare_dir
    # An explicit SENTRA_PG_FAST changes the mode; unset keeps it.
    if [ -n "${SENTRA_PG_FAST:-}" ]; then
        write_conf "$([ "$SENTRA_PG_FAST" = 1 ] && echo 1 || echo 0)"
    else
        write_conf "$(conf_fast)"
    fi
    # 9>&-: the server must not inherit (and so hold forever) our lock.
    if ! as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOGD/postgresql.log" -w -t 120 \
            -s start </dev/null >/dev/null 2>"$LOGD/pg_ctl.err" 9>&-; then
        echo "pgcluster: PostgreSQL did not start in $DIR; last lines of $LOGD/postgresql.log:" >&2
        tail -20 "$LOGD/postgresql.log" >&2 2>/dev/null
        cat "$LOGD/pg_ctl.err" >&2
        exit 1
    fi
}

# $1: the shutdown mode, fast unless given (destroy uses immediate: the data
# is deleted right after, so no checkpoint is worth waiting for).
do_stop() {
    cluster_state
    [ $? = 0 ] || return 0
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -m "${1:-fast}" -w -t 120 -s stop >/dev/null 2>&1
    cluster_state
    [ $? = 0 ] && die "PostgreSQL in $DIR did not stop"
    return 0
}

psql_admin() {
    "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$SUPERUSER" -d postgres "$@"
}

ensure_role_db() {
    local have
    have=$(psql_admin -Atc "SELECT 1 FROM pg_roles WHERE rolname = 'sentra'") ||
        die "cannot connect to the cluster in $DIR as $SUPERUSER"
    if [ "$have" != 1 ]; then
        psql_admin -c "CREATE ROLE sentra LOGIN CREATEDB" >/dev/null ||
            die "cannot create role sentra"
    fi
    have=$(psql_admin -Atc "SELECT 1 FROM pg_database WHERE datname = 'sentra'") || exit 1
    if [ "$have" != 1 ]; then
        psql_admin -c "CREATE DATABASE sentra OWNER sentra" >/dev/null ||
            die "cannot create database sentra"
    fi
}

# ---------------------------------------------------------------- commands

[ $# -ge 2 ] || usage
CMD=$1
resolve_dir "$2"
find_bindir

# One command at a time per cluster: two test processes may call ensure or
# start together. The lock lives beside DIR, so destroy can delete DIR.
# GIVEN is DIR as named, before symlinks resolve, so a relocated cluster
# keeps the same lock.
LOCK=""
case "$CMD" in
ensure|start|stop|destroy|createdb)
    mkdir -p -- "$(dirname -- "$GIVEN")" 2>/dev/null
    if exec 9>>"$GIVEN.pgcluster.lock" 2>/dev/null; then
        LOCK="$GIVEN.pgcluster.lock"
        flock 9
    fi
    ;;
esac

case "$CMD" in
ensure)
    [ -f "$DATA/PG_VERSION" ] || do_initdb
    do_start
    ensure_role_db
    conninfo_of sentra
    ;;
start)
    do_start
    ;;
stop)
    do_stop
    ;;
destroy)
    do_stop immediate
    if [ -L "$GIVEN" ]; then
        rm -rf -- "$DIR" && rm -f -- "$GIVEN" || die "cannot delete $DIR"
    elif [ -e "$DIR" ]; then
        rm -rf -- "$DIR" || die "cannot delete $DIR"
    fi
    [ -n "$LOCK" ] && rm -f -- "$LOCK"
    ;;
status)
    cluster_state
    rc=$?
    case $rc in
    0) echo running ;;
    3) echo stopped ;;
    *) echo absent ;;
    esac
    exit $rc
    ;;
conninfo)
    conninfo_of sentra
    ;;
createdb)
    [ $# -ge 3 ] || usage
    NAME=$3
    [[ "$NAME" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] ||
        die "bad database name '$NAME' (lower-case letters, digits, _; at most 63)"
    case "$NAME" in postgres|template0|template1|sentra)
        die "refusing to recreate database $NAME" ;;
    esac
    do_start
    ensure_role_db
    psql_admin -c "DROP DATABASE IF EXISTS $NAME WITH (FORCE)" >/dev/null ||
        die "cannot drop database $NAME"
    psql_admin -c "CREATE DATABASE $NAME OWNER sentra" >/dev/null ||
        die "cannot create database $NAME"
    conninfo_of "$NAME"
    ;;
*)
    usage
    ;;
esac
exit 0
