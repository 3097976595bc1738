# bench.mk: `make bench` (bench/run.sh) and the load generator it drives.
# Included from the Makefile; uses its variables (BUILD, ALL_CFLAGS, ...).
#
#   make bench                      the whole benchmark (several minutes)
#   make bench BENCH_ARGS="--quick" fewer and shorter runs
#   make cpu-bench                  instructions and system calls per request,
#                                   protocol by protocol (bench/cpu-per-request.sh;
#                                   CPU_BENCH_ARGS="--requests 2000" for a shorter run)
#   make loadgen                    only build $(BUILD)/bench/loadgen

LOADGEN := $(BUILD)/bench/loadgen
BENCH_ARGS ?=
CPU_BENCH_ARGS ?= --syscalls

# The stock gRPC server of the gRPC rows (bench/grpcpp_ping.cc): gRPC C++
# from Debian (libgrpc++-dev, protobuf-compiler-grpc), the same system.proto.
GRPCPP_DIR  := $(BUILD)/bench/grpcpp
GRPCPP_PING := $(GRPCPP_DIR)/grpcpp_ping
CXX         ?= c++

.PHONY: loadgen cpu-bench
loadgen: $(LOADGEN)

$(LOADGEN): bench/loadgen.c $(COMMON_OBJ) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ bench/loadgen.c $(COMMON_OBJ) $(LDFLAGS) $(PKG_LIBS) -lm

bench: all $(LOADGEN) $(GRPCPP_PING)
	scripts/deps.sh --bench
	LOADGEN=$(LOADGEN) SENTRAD=$(SENTRAD) GRPCPP_PING=$(GRPCPP_PING) bench/run.sh $(BENCH_ARGS) | tee $(BUILD)/bench/last.md

cpu-bench: all $(LOADGEN) $(GRPCPP_PING)
	scripts/deps.sh --bench
	@mkdir -p $(BUILD)/bench
	LOADGEN=$(LOADGEN) SENTRAD=$(SENTRAD) GRPCPP_PING=$(GRPCPP_PING) bench/cpu-per-request.sh $(CPU_BENCH_ARGS) \
	    | tee $(BUILD)/bench/cpu.md

$(GRPCPP_PING): bench/grpcpp_ping.cc proto/sentra/v1/system.proto
	scripts/deps.sh --bench
	@mkdir -p $(GRPCPP_DIR)
	protoc -Iproto --cpp_out=$(GRPCPP_DIR) --grpc_out=$(GRPCPP_DIR) \
	    --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) proto/sentra/v1/system.proto
	$(CXX) -O2 -std=c++17 -I$(GRPCPP_DIR) -o $@ bench/grpcpp_ping.cc \
	    $(GRPCPP_DIR)/sentra/v1/system.pb.cc $(GRPCPP_DIR)/sentra/v1/system.grpc.pb.cc \
	    $$(pkg-config --cflags --libs grpc++ protobuf)
