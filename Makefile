# The two entry points: `make demo` and `make test`. Both install missing Debian packages first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build demo test bench python clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The demo needs only the CLI and the example generator.
demo: configure
	@cmake --build $(BUILD) -j $(JOBS) --target lorakit lorakit-gen
	@bash scripts/demo.sh $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@bash bench/run.sh $(BUILD)

# A wheel of the Python package for Debian's python3, in $(BUILD)/dist, built in $(BUILD) (no second
# compile). Install it into any environment of the same Python version (e.g. ComfyUI's venv) with
# `pip install $(BUILD)/dist/lorakit-*.whl`.
python: configure
	@LORAKIT_BUILD_DIR=$(abspath $(BUILD)) /usr/bin/python3 -m pip wheel --no-build-isolation --no-index --no-deps \
	    -w $(BUILD)/dist ./python

clean:
	rm -rf $(BUILD)
