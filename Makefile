# sentra: build, run and test.
#
#   make            build bin/sentrad, bin/sentra-cli, build/lib/libsentra.{a,so}
#   make run        build, prepare the private PostgreSQL cluster, run the server
#   make test       build and run the whole test suite (own cluster and server)
#   make asan       the same build with AddressSanitizer and UBSan (build-asan/)
#   make stop       stop the private cluster started by `make run`
#   make dev-cert   a local CA and certificates for trying TLS (var/tls)
#   make destroy-db delete the private cluster (var/pg) and its data
#   make install PREFIX=/usr/local
#
# Sources are found by directory: every .c under server/ goes into sentrad, every
# client/lib/*.c into libsentra, every client/cli/*.c into sentra-cli, every
# common/*.c into both, and every tests/unit/test_*.c becomes a test program.

PREFIX     ?= /usr/local
BUILD      ?= build
CC         ?= cc
PKGS        = libuv libprotobuf-c libpq libssl libcrypto
SERVER_PKGS = libnghttp2 jansson
CLI_PKGS    = libuv libprotobuf-c jansson libssl libcrypto
TEST_PKGS   = cmocka

WARN       := -Wall -Wextra -Wstrict-prototypes -Wno-unused-parameter -Wshadow
ifeq ($(CI),true)
WARN       += -Werror
endif
OPT        ?= -O2 -g
SAN        ?=
CFLAGS     += -std=gnu11 $(OPT) $(WARN) $(SAN) -fPIC -D_GNU_SOURCE
LDFLAGS    += $(SAN)

# Missing packages are installed (or named) by scripts/deps.sh, called only
# when something is missing.
DEPS_OK := $(shell scripts/deps.sh --check >/dev/null 2>&1 && echo yes)
ifneq ($(DEPS_OK),yes)
DEPS_RUN := $(shell scripts/deps.sh --install >&2 || echo failed)
ifeq ($(DEPS_RUN),failed)
$(error missing packages: see the message above)
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(CLI_PKGS) $(SERVER_PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
# http-parser (Debian libhttp-parser-dev) ships no .pc file.
SERVER_LIBS:= $(shell pkg-config --libs $(SERVER_PKGS)) -lhttp_parser
CLI_LIBS   := $(shell pkg-config --libs $(CLI_PKGS)) -lcsv
TEST_LIBS  := $(shell pkg-config --libs $(TEST_PKGS))

GEN        := $(BUILD)/gen
PROTOS     := $(wildcard proto/sentra/v1/*.proto)
PB_C       := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PB_H       := $(PB_C:.c=.h)
DESC_C     := $(GEN)/descriptor_set.c
PB_LIST    := $(GEN)/pb_messages.h

# Standard .proto files the server implements or sends, compiled for the
# server only: gRPC health and reflection (Debian grpc-proto), google.rpc's
# Status and BadRequest (vendored in proto/google/rpc, see its README) and
# protobuf's own Any and descriptor.proto (reflection reads descriptors).
GRPC_PROTO_DIR ?= /usr/share/grpc-proto
PB_INC     ?= /usr/include
GRPC_PROTOS:= grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto
STD_PROTOS := $(GRPC_PROTOS) google/rpc/status.proto google/rpc/error_details.proto \
              google/protobuf/any.proto google/protobuf/descriptor.proto
STD_PB_C   := $(patsubst %.proto,$(GEN)/%.pb-c.c,$(STD_PROTOS))
PB_H       += $(STD_PB_C:.c=.h)   # (install copies only our own, $(PB_C:.c=.h))
# Served by reflection beside our own (clients look for them there).
DESC_EXTRA := $(addprefix $(GRPC_PROTO_DIR)/,$(GRPC_PROTOS) grpc/reflection/v1alpha/reflection.proto)

# server/ has rooms (docs/DESIGN.md): transport/ (bytes to calls), core/
# (calls, methods, tokens), db/ (the pool, migrations), services/ (the
# handlers). Headers are included by name from any of them.
SERVER_DIRS:= server server/core server/transport server/db server/services
INCS       := -I$(GEN) -Icommon $(addprefix -I,$(SERVER_DIRS)) -Iclient/include -Iclient/lib -Iclient/cli
ALL_CFLAGS  = $(CFLAGS) $(INCS) $(PKG_CFLAGS)

# common/pbjson.c (proto3 JSON, on jansson) goes into sentrad and
# sentra-cli but not into libsentra, which needs no JSON library.
COMMON_SRC := $(filter-out common/pbjson.c,$(wildcard common/*.c))
SERVER_SRC := $(filter-out server/main.c,$(foreach d,$(SERVER_DIRS),$(wildcard $(d)/*.c)))
LIB_SRC    := $(wildcard client/lib/*.c)
CLI_SRC    := $(wildcard client/cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
ITEST_SRC  := $(wildcard tests/integration/test_*.c)
TESTLIB_SRC:= $(wildcard tests/lib/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
PB_OBJ     := $(patsubst $(BUILD)/%.c,$(BUILD)/obj/%.o,$(PB_C))
STD_PB_OBJ := $(patsubst $(BUILD)/%.c,$(BUILD)/obj/%.o,$(STD_PB_C))
DESC_OBJ   := $(BUILD)/obj/gen/descriptor_set.o
COMMON_OBJ := $(call obj,$(COMMON_SRC)) $(PB_OBJ)
PBJSON_OBJ := $(call obj,common/pbjson.c)
SERVER_OBJ := $(call obj,$(SERVER_SRC))
LIB_OBJ    := $(call obj,$(LIB_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
TESTLIB_OBJ:= $(call obj,$(TESTLIB_SRC))

LIBSENTRA_A  := $(BUILD)/lib/libsentra.a
LIBSENTRA_SO := $(BUILD)/lib/libsentra.so
LIBSERVER_A  := $(BUILD)/lib/libsentrad.a
SENTRAD      := bin/sentrad
SENTRA_CLI   := bin/sentra-cli
ifneq ($(BUILD),build)
SENTRAD      := $(BUILD)/bin/sentrad
SENTRA_CLI   := $(BUILD)/bin/sentra-cli
endif
UNIT_BIN     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_BIN    := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

.PHONY: all run test valgrind-test asan asan-test stop destroy-db install clean bench fuzz demo-data \
        regions-full national-data tests dev-cert
all: $(SENTRAD) $(SENTRA_CLI) $(LIBSENTRA_A) $(LIBSENTRA_SO)

# ---------------------------------------------------------------- codegen

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto $(PROTOS)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto -I$(PB_INC) $<

$(GEN)/grpc/%.pb-c.c $(GEN)/grpc/%.pb-c.h: $(GRPC_PROTO_DIR)/grpc/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I$(GRPC_PROTO_DIR) $<

$(GEN)/google/protobuf/%.pb-c.c $(GEN)/google/protobuf/%.pb-c.h: $(PB_INC)/google/protobuf/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I$(PB_INC) $<

# The FileDescriptorSet served by reflection (GetDescriptorSet, and gRPC's
# ServerReflection), as a C array: our files, with gRPC health and reflection.
$(DESC_C): $(PROTOS) $(DESC_EXTRA) Makefile
	@mkdir -p $(GEN)
	protoc --include_imports --descriptor_set_out=$(GEN)/descriptor_set.bin -Iproto \
	    -I$(GRPC_PROTO_DIR) $(PROTOS) $(DESC_EXTRA)
	scripts/bin2c.sh sentra__descriptor_set $(GEN)/descriptor_set.bin > $@

# Every top-level message, for tests that go over all of them.
$(PB_LIST): $(PROTOS) scripts/pb-messages.sh
	@mkdir -p $(GEN)
	scripts/pb-messages.sh $(PROTOS) > $@

# ---------------------------------------------------------------- objects

$(BUILD)/obj/%.o: %.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- libraries

$(LIBSENTRA_A): $(LIB_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSENTRA_SO): $(LIB_OBJ) $(COMMON_OBJ) client/libsentra.sym
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libsentra.so.1 -Wl,--version-script=client/libsentra.sym \
	    $(LDFLAGS) -o $@ $(LIB_OBJ) $(COMMON_OBJ) $(PKG_LIBS)

$(LIBSERVER_A): $(SERVER_OBJ) $(DESC_OBJ) $(STD_PB_OBJ) $(PBJSON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# ---------------------------------------------------------------- programs

$(SENTRAD): $(BUILD)/obj/server/main.o $(LIBSERVER_A) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(SERVER_LIBS) $(PKG_LIBS) -lm

$(SENTRA_CLI): $(CLI_OBJ) $(PBJSON_OBJ) $(LIBSENTRA_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LIBS) -lm

# ---------------------------------------------------------------- tests

$(BUILD)/tests/%: tests/unit/%.c $(LIBSERVER_A) $(LIBSENTRA_A) $(TESTLIB_OBJ) $(PB_H) $(PB_LIST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/lib -o $@ $< $(TESTLIB_OBJ) $(LIBSERVER_A) $(LIBSENTRA_A) \
	    $(LDFLAGS) $(SERVER_LIBS) $(PKG_LIBS) $(TEST_LIBS) -lm

$(BUILD)/tests/%: tests/integration/%.c $(LIBSENTRA_A) $(TESTLIB_OBJ) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/lib -o $@ $< $(TESTLIB_OBJ) $(LIBSENTRA_A) \
	    $(LDFLAGS) $(PKG_LIBS) $(ITEST_LIBS) $(TEST_LIBS) -lm

# Integration tests that need more than the client's libraries.
$(BUILD)/tests/test_memory_http: ITEST_LIBS = $(shell pkg-config --libs libnghttp2)

tests: all $(UNIT_BIN) $(ITEST_BIN)

# scripts/deps.sh --web installs what the dashboard's tests need (node,
# Chromium, selenium) where it can; where it cannot, the browser test says
# why and is counted as skipped.
test: tests
	@scripts/deps.sh --web || echo "make test: the browser test will be skipped (see above)"
	BUILD=$(BUILD) SENTRAD=$(SENTRAD) SENTRA_CLI=$(SENTRA_CLI) scripts/run-tests.sh

# The suite with every test program and every sentrad under valgrind's
# memcheck (slow: tens of minutes); any error or leak fails it.
valgrind-test: tests
	scripts/deps.sh --bench
	VALGRIND=1 BUILD=$(BUILD) SENTRAD=$(SENTRAD) SENTRA_CLI=$(SENTRA_CLI) scripts/run-tests.sh

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all

asan-test:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# ---------------------------------------------------------------- running

run: all
	scripts/run.sh

stop:
	scripts/pgcluster.sh stop var/pg

# A local CA, a server certificate for localhost and a client certificate
# in var/tls (scripts/dev-cert.sh; never for production: docs/DEPLOY.md).
dev-cert:
	scripts/dev-cert.sh var/tls

destroy-db:
	scripts/pgcluster.sh destroy var/pg

# Data for the database `make run` uses (or SENTRA_DB_URL): migrations first.
# demo-data: the SYNTHETIC Lampung set (73 sentra, 54 designated).
# regions-full: every sub-district and village (idn-area-data, ODbL).
# national-data: N (default 20000) SYNTHETIC sentra over all 514 regencies,
#   with MEMBERS (default 1000000) member businesses, OBSTACLES and
#   ASSISTANCE (default 100000 each) records, and institutions.
demo-data: all
	bin/sentrad migrate
	scripts/demo-data.sh "$$(bin/sentrad db-url)"

regions-full: all
	bin/sentrad migrate
	scripts/load-regions.sh "$$(bin/sentrad db-url)"

national-data: all
	bin/sentrad migrate
	scripts/gen-national.sh "$$(bin/sentrad db-url)" $(or $(N),20000) \
	    --members $(or $(MEMBERS),1000000) --obstacles $(or $(OBSTACLES),100000) \
	    --assistance $(or $(ASSISTANCE),100000)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/sentra \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBSENTRA_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSENTRA_SO) $(DESTDIR)$(PREFIX)/lib/libsentra.so.1
	ln -sf libsentra.so.1 $(DESTDIR)$(PREFIX)/lib/libsentra.so
	install -m 644 client/include/sentra/*.h $(DESTDIR)$(PREFIX)/include/sentra/
	install -d $(DESTDIR)$(PREFIX)/include/sentra/v1
	install -m 644 $(PB_C:.c=.h) $(DESTDIR)$(PREFIX)/include/sentra/v1/
	install -m 755 $(SENTRAD) $(SENTRA_CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' client/sentra.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sentra.pc

clean:
	rm -rf build build-asan bin

-include bench/bench.mk tests/fuzz/fuzz.mk tests/ha/ha.mk
