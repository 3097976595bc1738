#!/bin/sh
# Checks (--check) or installs (--install) what sentra needs to build, run
# and test. The Makefile calls --install only when --check fails. On Debian
# or Ubuntu as root it runs apt-get; otherwise it names what to install.
set -u

PKGS="build-essential pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
protobuf-compiler libpq-dev postgresql postgresql-contrib libjansson-dev
libcsv-dev libcmocka-dev xxd python3-protobuf libnghttp2-dev nghttp2-client
python3-grpcio python3-grpc-tools grpc-proto libhttp-parser-dev curl jq
libssl-dev openssl ca-certificates"
# Node and npm for the gRPC interop tests (tests/interop; the npm packages
# are pinned by its package-lock.json), installed only when missing: a
# machine may have another build of nodejs that ships its own npm.
NODE_PKGS="nodejs npm"

# `make ha-up` / `make ha-test` only (see --ha).
HA_PKGS="postgresql-15-auto-failover pg-auto-failover-cli haproxy"

missing() {
    m=""
    for pc in libuv libprotobuf-c libpq jansson cmocka libnghttp2 libssl libcrypto; do
        pkg-config --exists "$pc" 2>/dev/null || m="$m $pc"
    done
    # curl, jq, node and npm: the HTTP and gRPC interop tests (their npm
    # packages are installed at test time, pinned by package-lock.json);
    # openssl: the TLS tests and `make dev-cert`.
    for cmd in protoc-c protoc xxd nghttp h2load curl jq node npm openssl; do
        command -v "$cmd" >/dev/null 2>&1 || m="$m $cmd"
    done
    /usr/bin/python3 -c 'import grpc, grpc_tools' >/dev/null 2>&1 || m="$m python3-grpcio"
    [ -f /usr/share/grpc-proto/grpc/health/v1/health.proto ] || m="$m grpc-proto"
    [ -f /usr/include/csv.h ] || m="$m libcsv"
    # a strict protobuf decoder for the tests (tests/integration/strict_decoder.py)
    /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || m="$m python3-protobuf"
    [ -f /usr/include/http_parser.h ] || m="$m libhttp-parser"
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
        echo "  apt-get update && apt-get install -y" $PKGS npm >&2
        exit 1
    fi
    echo "sentra: installing with apt-get:" $PKGS >&2
    export DEBIAN_FRONTEND=noninteractive
    need_node=""
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_node=$NODE_PKGS
    apt-get update -qq >&2 && apt-get install -y -qq $PKGS $need_node >&2 || exit 1
    m=$(missing)
    [ -z "$m" ] || { echo "sentra: still missing:$m" >&2; exit 1; }
    ;;
--web)
    # The dashboard's tests (tests/integration/test_web_*.sh): node for the
    # unit tests, headless Chromium driven by Debian's selenium for the
    # browser test, and a font for its screenshots. Installed when missing
    # (as root with apt-get); otherwise named, and the browser test skips.
    need=""
    command -v node >/dev/null 2>&1 || need="$need nodejs"
    command -v chromium >/dev/null 2>&1 || need="$need chromium"
    command -v chromedriver >/dev/null 2>&1 || need="$need chromium-driver"
    /usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || need="$need python3-selenium"
    [ -d /usr/share/fonts/truetype/dejavu ] || need="$need fonts-dejavu-core"
    [ -z "$need" ] && exit 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "sentra: the web tests need:$need (as root: apt-get install -y$need)" >&2
        exit 1
    fi
    echo "sentra: installing with apt-get:$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $need >&2 || exit 1
    ;;
--bench)
    # Extra tools for `make bench`, `make cpu-bench`, `make fuzz` and
    # `make valgrind-test`.
    need=""
    for c in redis-server redis-benchmark clang valgrind callgrind_control strace grpc_cpp_plugin haproxy wrk; do
        command -v $c >/dev/null 2>&1 || need=yes
    done
    pkg-config --exists grpc++ 2>/dev/null || need=yes
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need=yes
    [ -z "$need" ] && exit 0
    if [ "$(id -u)" != 0 ]; then
        echo "sentra: as root, run: apt-get install -y redis-server clang valgrind strace libclang-rt-14-dev libgrpc++-dev protobuf-compiler-grpc haproxy wrk" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq redis-server clang valgrind strace libclang-rt-14-dev \
        libgrpc++-dev protobuf-compiler-grpc haproxy wrk >&2 || exit 1
    ;;
--ha)
    # Extra packages for `make ha-up` and `make ha-test` (issue 17): the
    # failover manager and the proxy, from Debian 12.
    need=""
    command -v pg_autoctl >/dev/null 2>&1 || need=yes
    command -v haproxy >/dev/null 2>&1 || need=yes
    ls /usr/lib/postgresql/15/lib/pgautofailover.so >/dev/null 2>&1 || need=yes
    [ -z "$need" ] && exit 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "sentra: as root on Debian 12, run: apt-get install -y $HA_PKGS" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $HA_PKGS >&2 || exit 1
    ;;
*)
    echo "usage: $0 --check | --install | --web | --bench | --ha" >&2
    exit 2
    ;;
esac
