# lowbit: the two commands a user needs.
#   make test   installs what is missing, builds, runs every test
#   make demo   installs what is missing, builds, runs the main job
#   make test-isa   runtime and end-to-end tests again with each kernel level forced (LOWBIT_ISA)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build test test-isa demo bench clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@mkdir -p $(BUILD) && cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > $(BUILD)/configure.log 2>&1 || (cat $(BUILD)/configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-isa: build
	@bash scripts/test_isa_levels.sh $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

bench: build
	@bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD)
