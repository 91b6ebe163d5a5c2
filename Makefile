# nnedge top-level driver. Every target installs missing build dependencies first
# (scripts/setup.sh, idempotent), then drives CMake. See README.md.
#
#   make run     build, then run the main job (see README)
#   make test    build with -Werror, run all tests; then ASan+UBSan build, unit tests under
#                it; then a build without the classical codecs and its codec tests; then a
#                short libFuzzer run of every fuzz target
#   make fuzz FUZZ_SECONDS=600 [FUZZ_TARGET=fuzz_model_file]   long fuzzing by hand

JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
MIN_BUILD   ?= build-min
FUZZ_SECONDS ?= 15
FUZZ_TARGET ?=
NNEDGE      = $(BUILD)/nnedge

.PHONY: all setup build run test test-release test-asan test-minimal fuzz fuzz-smoke clean format

all: build

setup:
	@sh scripts/setup.sh --fuzz

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DNNE_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(NNEDGE) info cae-seed
	$(NNEDGE) metrics samples/wiki-crop.png samples/wiki-crop-q30.png

test: test-release test-asan test-minimal fuzz-smoke
	@echo "make test: all stages passed"

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNNE_SANITIZE=ON -DNNE_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ctest --output-on-failure -j $(JOBS) -L unit

# -DNNE_CLASSICAL_CODECS=OFF (docs/build.md): the CLI and the tests of the codec set, and no
# webp/openjp2/avif/jxl library linked.
test-minimal: setup
	@cmake -S . -B $(MIN_BUILD) -DCMAKE_BUILD_TYPE=Release -DNNE_WERROR=ON \
	  -DNNE_CLASSICAL_CODECS=OFF >/dev/null
	@cmake --build $(MIN_BUILD) -j $(JOBS) --target nnedge_cli imgcodec_test_imgcodec cli_test_rd_cli
	cd $(MIN_BUILD) && ctest --output-on-failure -R '^(imgcodec[.]test_imgcodec|cli[.]test_rd_cli)$$'
	@if ldd $(MIN_BUILD)/nnedge | grep -E 'webp|openjp2|avif|jxl'; then \
	  echo "test-minimal: $(MIN_BUILD)/nnedge links a classical codec library" >&2; exit 1; fi

$(FUZZ_BUILD)/.configured:
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNNE_FUZZ=ON \
	  -DNNE_SANITIZE=ON -DBUILD_TESTING=OFF >/dev/null
	@touch $@

fuzz-build: setup $(FUZZ_BUILD)/.configured
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Short run of every fuzz target from its seed corpus (new inputs go to a scratch folder).
fuzz-smoke: fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGET)

fuzz: fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGET)

format:
	clang-format -i include/nnedge/*.h src/*/*.c src/*/*/*.c programs/*/*.c tests/*/*.c fuzz/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(MIN_BUILD) $(FUZZ_BUILD)
