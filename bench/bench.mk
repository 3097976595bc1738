# bench.mk: `make bench` (bench/run.sh) and the load generator it drives.
# Included from the Makefile; uses its variables (BUILD, ALL_CFLAGS, ...).
#
#   make bench                      the whole benchmark (several minutes)
#   make bench BENCH_ARGS="--quick" fewer and shorter runs
#   make loadgen                    only build $(BUILD)/bench/loadgen

LOADGEN := $(BUILD)/bench/loadgen
BENCH_ARGS ?=

.PHONY: loadgen
loadgen: $(LOADGEN)

$(LOADGEN): bench/loadgen.c $(COMMON_OBJ) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ bench/loadgen.c $(COMMON_OBJ) $(LDFLAGS) $(PKG_LIBS) -lm

bench: all $(LOADGEN)
	scripts/deps.sh --bench
	LOADGEN=$(LOADGEN) SENTRAD=$(SENTRAD) bench/run.sh $(BENCH_ARGS) | tee $(BUILD)/bench/last.md
