# Entry points: `make demo` and `make test`; both install missing Debian packages first.
#   make test           the normal build's tests, then the ASan+UBSan build's tests and the fuzz corpora
#                       replayed, then a short libFuzzer run of every target (what CI runs)
#   make test-sanitize  the ASan+UBSan build's tests and the TSan build's tests of the threaded code
#   make fuzz           every libFuzzer target for FUZZ_SECONDS (default 600) each
BUILD ?= build
DIST_BUILD ?= build-dist
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
# Sanitizer builds use clang (libFuzzer needs it); no benchmarks, to keep them affordable in CI, and no
# Python extension (loaded into an unsanitized python3 it lacks the sanitizer runtimes; the Release
# build's pytest suites cover that layer).
SANITIZER_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DLORAKIT_BUILD_BENCH=OFF \
                  -DLORAKIT_PYTHON=OFF $(CMAKE_FLAGS)
export ASAN_OPTIONS ?= halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1
# What the TSan build tests: the threaded paths (planner, ordered writer, batch) and the end-to-end and
# CLI tests that run them (ctest labels are the test-file areas).
TSAN_LABELS = ^(plan|e2e|batch|cli)$$
# Prints how long a step took: $(call timed,NAME,COMMANDS).
timed = start=$$(date +%s); $(2); status=$$?; echo "make: $(1) took $$(( $$(date +%s) - start )) s"; exit $$status

.PHONY: all setup configure build demo test bench dist python clean test-asan test-tsan test-sanitize \
        fuzz fuzz-smoke configure-asan configure-tsan

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@$(call timed,build,cmake --build $(BUILD) -j $(JOBS))

# The demo needs only the CLI and the example generator.
demo: configure
	@cmake --build $(BUILD) -j $(JOBS) --target lorakit lorakit-gen
	@bash scripts/demo.sh $(BUILD)

# The release tarball's test (tests/dist) runs in ctest, so the tarball is built first.
test: build dist
	@$(call timed,tests,cd $(BUILD) && ctest --output-on-failure -j $(JOBS))
	@$(MAKE) --no-print-directory test-asan fuzz-smoke

configure-asan: setup
	@cmake -S . -B $(ASAN_BUILD) $(SANITIZER_CMAKE) -DLORAKIT_SANITIZE=address,undefined -DLORAKIT_FUZZ=ON >/dev/null

# ASan+UBSan: the whole suite, the fuzz corpora replayed by the libFuzzer binaries included.
test-asan: configure-asan
	@$(call timed,ASan+UBSan build,cmake --build $(ASAN_BUILD) -j $(JOBS))
	@$(call timed,ASan+UBSan tests,cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS))

configure-tsan: setup
	@cmake -S . -B $(TSAN_BUILD) $(SANITIZER_CMAKE) -DLORAKIT_SANITIZE=thread >/dev/null

test-tsan: configure-tsan
	@$(call timed,TSan build,cmake --build $(TSAN_BUILD) -j $(JOBS))
	@$(call timed,TSan tests,cd $(TSAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L '$(TSAN_LABELS)')

test-sanitize: test-asan test-tsan

fuzz-smoke: configure-asan
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target safetensors_header_fuzz adapter_model_fuzz resize_fuzz
	@$(call timed,fuzz smoke run,bash scripts/fuzz.sh $(ASAN_BUILD) $(FUZZ_SMOKE_SECONDS))

fuzz: configure-asan
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target safetensors_header_fuzz adapter_model_fuzz resize_fuzz
	@bash scripts/fuzz.sh $(ASAN_BUILD) $(FUZZ_SECONDS)

# The portable release binary: dist/lorakit-VERSION-linux-x86_64.tar.gz (cmake/dist.cmake).
dist: setup
	@cmake -S . -B $(DIST_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLORAKIT_DIST=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(DIST_BUILD) -j $(JOBS) --target dist

bench: build dist
	@bash bench/run.sh $(BUILD)

# A wheel of the Python package for Debian's python3, in $(BUILD)/dist, built in $(BUILD) (no second
# compile). Install it into any environment of the same Python version (e.g. ComfyUI's venv) with
# `pip install $(BUILD)/dist/lorakit-*.whl`.
python: configure
	@LORAKIT_BUILD_DIR=$(abspath $(BUILD)) /usr/bin/python3 -m pip wheel --no-build-isolation --no-index --no-deps \
	    -w $(BUILD)/dist ./python

clean:
	rm -rf $(BUILD) $(DIST_BUILD) dist $(ASAN_BUILD) $(TSAN_BUILD)
