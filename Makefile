# lowbit: the commands a user needs.
#   make test   installs what is missing, builds, runs every test
#   make demo   installs what is missing, builds, runs the main job
#   make test-isa   runtime and end-to-end tests again with each kernel level forced (LOWBIT_ISA)
#   make test-aarch64   cross-builds the runtime for aarch64, runs its tests under qemu per NEON level
#   make sanitize   numerics + runtime tests under ASan/UBSan, threaded ones under TSan
#   make fuzz       libFuzzer harnesses, FUZZ_SECONDS each (default 60), or FUZZ_RUNS executions each
#   make bench      the benchmarks (BENCH_SET=quick|full), results in bench/results/
BUILD ?= build
AARCH64_BUILD ?= build-aarch64
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

.PHONY: all setup configure build test test-isa test-aarch64 sanitize fuzz demo bench clean

all: build

# `make test` also installs chromium (the report's browser check, tests/report); a target-specific
# variable reaches the setup prerequisite.
SETUP_ARGS ?=
test: SETUP_ARGS += --browser

setup:
	@bash scripts/setup.sh $(SETUP_ARGS)

configure: setup
	@mkdir -p $(BUILD) && cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > $(BUILD)/configure.log 2>&1 || (cat $(BUILD)/configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-isa: build
	@bash scripts/test_isa_levels.sh $(BUILD)

test-aarch64:
	@JOBS=$(JOBS) bash scripts/test_aarch64.sh $(AARCH64_BUILD)

sanitize: setup
	@JOBS=$(JOBS) bash scripts/sanitize.sh build-asan build-tsan

fuzz:
	@bash scripts/setup.sh --fuzz
	@JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_ONLY=$(FUZZ_ONLY) bash scripts/fuzz.sh build-fuzz

demo: build
	@bash scripts/demo.sh $(BUILD)

bench: build
	@bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
