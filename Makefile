# rlhf.c — one library (build/librlhf.a), one binary (build/rlhf).
#
#   make            build (-O3 -march=native)
#   make PORTABLE=1 build without -march=native (binaries that run on any x86-64)
#   make check      fast unit tests (the edit loop)
#   make test       install deps, build, run every test tier (what CI runs)
#   make asan       build with AddressSanitizer + UBSan into build-asan/ and run the unit + CLI tiers
#   make deps       install missing Debian packages (as root; otherwise print the command)
#   make demo       the whole pipeline on the default data
#
# Build dirs are separate per configuration (BUILD=...), so parallel work and
# sanitizer builds never mix objects.

BUILD    ?= build
CC       ?= cc
PORTABLE ?= 0
SAN      ?=
PY       ?= /usr/bin/python3

ifeq ($(PORTABLE),1)
  ARCH :=
else
  ARCH := -march=native
endif

WARN   := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wvla
# OPT is the optimisation level (the asan target lowers it); EXTRA_CFLAGS is for
# the user. CFLAGS itself is built here, so a command-line CFLAGS cannot drop
# the warnings or the sanitizer flags.
OPT    ?= -O3 $(ARCH)
override CFLAGS := $(OPT) -std=gnu11 -g $(WARN) -fno-strict-aliasing -D_GNU_SOURCE $(SAN) $(EXTRA_CFLAGS)
LDLIBS := -lm -lpthread

# ---- dependency detection ----------------------------------------------------
HASH := \#
have = $(shell printf '$(HASH)include <$(1)>\nint main(void){return 0;}\n' | $(CC) -x c - -o /dev/null $(2) >/dev/null 2>&1 && echo yes || echo no)

HAVE_OPENMP  := $(call have,omp.h,-fopenmp)
HAVE_OPENBLAS:= $(call have,cblas.h,-lopenblas)
HAVE_SQLITE  := $(call have,sqlite3.h,-lsqlite3)
HAVE_MHD     := $(call have,microhttpd.h,-lmicrohttpd)
HAVE_JANSSON := $(call have,jansson.h,-ljansson)
HAVE_SODIUM  := $(call have,sodium.h,-lsodium)
HAVE_ZLIB    := $(call have,zlib.h,-lz)
HAVE_MPI     := $(shell command -v mpicc >/dev/null 2>&1 && echo yes || echo no)
HAVE_CUDA    := $(shell command -v nvcc >/dev/null 2>&1 && echo yes || echo no)

REQUIRED := SQLITE=$(HAVE_SQLITE) MHD=$(HAVE_MHD) JANSSON=$(HAVE_JANSSON) SODIUM=$(HAVE_SODIUM) ZLIB=$(HAVE_ZLIB)
MISSING  := $(patsubst %=no,%,$(filter %=no,$(REQUIRED)))

ifeq ($(HAVE_OPENMP),yes)
  override CFLAGS += -fopenmp
  LDLIBS += -fopenmp
endif
ifeq ($(HAVE_OPENBLAS),yes)
  override CFLAGS += -DRL_HAVE_OPENBLAS
  LDLIBS += -lopenblas
endif
ifeq ($(HAVE_MPI),yes)
  override CFLAGS += -DRL_HAVE_MPI $(shell mpicc --showme:compile)
  LDLIBS += $(shell mpicc --showme:link)
endif
LDLIBS += -lsqlite3 -lmicrohttpd -ljansson -lsodium -lz

# ---- sources -----------------------------------------------------------------
SRC      := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/librlhf.a
BIN      := $(BUILD)/rlhf
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps check test test-unit test-cli test-ref test-js test-browser test-mpi asan demo bench clean features print-features
all: print-features $(BIN) $(UNIT_BIN) $(TOOL_BIN)
	@if [ "$(BUILD)" = build ]; then ln -sf build/rlhf rlhf; fi

print-features:
ifneq ($(MISSING),)
	@echo "missing required libraries: $(MISSING)"; echo "run 'make deps' (as root) to install them"; exit 1
endif
	@echo "features: openmp=$(HAVE_OPENMP) openblas=$(HAVE_OPENBLAS) sqlite=$(HAVE_SQLITE) libmicrohttpd=$(HAVE_MHD) jansson=$(HAVE_JANSSON) libsodium=$(HAVE_SODIUM) zlib=$(HAVE_ZLIB) mpi=$(HAVE_MPI) cuda=$(HAVE_CUDA)"

# The git commit recorded in every checkpoint's provenance (src/model/ckpt_secure.c):
# $(BUILD)/gen/rl_git.h is rewritten only when the commit (or dirtiness) changes.
GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git rev-parse HEAD >/dev/null 2>&1 && ! git diff --quiet HEAD -- 2>/dev/null && echo -dirty)
override CFLAGS += -I$(BUILD)/gen
.PHONY: FORCE
$(BUILD)/gen/rl_git.h: FORCE
	@mkdir -p $(dir $@); echo '#define RL_GIT_COMMIT "$(GIT_COMMIT)"' > $@.tmp; cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(BUILD)/src/model/ckpt_secure.o: $(BUILD)/gen/rl_git.h

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/tools/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

-include $(OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- set-up ------------------------------------------------------------------
deps:
	@sh scripts/deps.sh

# ---- tests -------------------------------------------------------------------
# Each tier prints its own "N passed, N failed" line; tests/run_tier.sh sums them.
check: all
	@sh tests/run_tier.sh unit $(BUILD)

test-unit: check

test-cli: all
	@sh tests/run_tier.sh cli $(BUILD)

test-ref: all
	@sh tests/run_tier.sh ref $(BUILD)

test-js: all
	@sh tests/run_tier.sh js $(BUILD)

test-browser: all
	@sh tests/run_tier.sh browser $(BUILD)

test-mpi: all
	@sh tests/run_tier.sh mpi $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory asan
	@sh tests/run_tier.sh all $(BUILD)

# Sanitizer build: its own directory, then the unit and CLI tiers under it.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 $(ARCH)" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 RLHF_TIER_TAG=asan sh tests/run_tier.sh sanitize build-asan

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

bench: all
	@sh bench/run.sh

clean:
	rm -rf build build-asan build-* rlhf
