# The two entry points: `make demo` and `make test`. Both install missing Debian packages first.
BUILD ?= build
DIST_BUILD ?= build-dist
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build demo test bench dist clean

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

# The release tarball's test (tests/dist) runs in ctest, so the tarball is built first.
test: build dist
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The portable release binary: dist/lorakit-VERSION-linux-x86_64.tar.gz (cmake/dist.cmake).
dist: setup
	@cmake -S . -B $(DIST_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLORAKIT_DIST=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(DIST_BUILD) -j $(JOBS) --target dist

bench: build dist
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(DIST_BUILD) dist
