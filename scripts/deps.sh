#!/bin/sh
# Checks (--check) or installs (--install) what sentra needs to build, run
# and test. The Makefile calls --install only when --check fails. On Debian
# or Ubuntu as root it runs apt-get; otherwise it names what to install.
set -u

PKGS="build-essential pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
protobuf-compiler libpq-dev postgresql postgresql-contrib libjansson-dev
libcsv-dev libcmocka-dev xxd libssl-dev"

missing() {
    m=""
    for pc in libuv libprotobuf-c libpq jansson cmocka libcrypto; do
        pkg-config --exists "$pc" 2>/dev/null || m="$m $pc"
    done
    for cmd in protoc-c protoc xxd; do
        command -v "$cmd" >/dev/null 2>&1 || m="$m $cmd"
    done
    [ -f /usr/include/csv.h ] || m="$m libcsv"
    pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] || m="$m postgresql-server"
    echo "$m"
}

case "${1:---check}" in
--check)
    m=$(missing)
    [ -z "$m" ] && exit 0
    echo "missing:$m" >&2
    exit 1
    ;;
--install)
    m=$(missing)
    [ -z "$m" ] && exit 0
    echo "sentra: missing:$m" >&2
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "sentra: as root on Debian 12, run:" >&2
        echo "  apt-get update && apt-get install -y" $PKGS >&2
        exit 1
    fi
    echo "sentra: installing with apt-get:" $PKGS >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq $PKGS >&2 || exit 1
    m=$(missing)
    [ -z "$m" ] || { echo "sentra: still missing:$m" >&2; exit 1; }
    ;;
--bench)
    # Extra tools for `make bench`, `make fuzz` and `make valgrind-test`.
    need=""
    for c in redis-server redis-benchmark clang valgrind; do
        command -v $c >/dev/null 2>&1 || need=yes
    done
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need=yes
    [ -z "$need" ] && exit 0
    if [ "$(id -u)" != 0 ]; then
        echo "sentra: as root, run: apt-get install -y redis-server clang valgrind libclang-rt-14-dev" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq redis-server clang valgrind libclang-rt-14-dev >&2 || exit 1
    ;;
*)
    echo "usage: $0 --check | --install | --bench" >&2
    exit 2
    ;;
esac
