# fuzz.mk: `make fuzz`, libFuzzer targets built with clang under ASan and
# UBSan in their own build folder (build-fuzz). Included from the Makefile.
#
#   make fuzz                       every target for FUZZ_SECONDS (default 30) each
#   make fuzz FUZZ_SECONDS=300      longer
#   make fuzz FUZZ_TARGETS=frame    one target
#
# Seeds are in tests/fuzz/corpus/<target>/ (committed, small). What a run
# finds goes to build-fuzz/fuzz/<target>/ (its growing corpus and any
# crash-* files); tests/fuzz/run.sh says what to do with a crash.

FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= frame request validate h2 http1 tls
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined

.PHONY: fuzz fuzz-build
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh build-fuzz/fuzz $(FUZZ_TARGETS)

fuzz-build:
	scripts/deps.sh --bench
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g -fno-omit-frame-pointer" SAN="$(FUZZ_SAN)" \
	    $(patsubst %,build-fuzz/fuzz/fuzz_%,$(FUZZ_TARGETS))

# Only meaningful inside the sub-make above (BUILD=build-fuzz, CC=clang).
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIBSERVER_A) $(COMMON_OBJ) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBSERVER_A) $(COMMON_OBJ) \
	    $(LDFLAGS) $(SERVER_LIBS) $(PKG_LIBS) -lm
