# See https://tech.davis-hansson.com/p/make/
SHELL := bash
.DELETE_ON_ERROR:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables
MAKEFLAGS += --no-builtin-rules
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
# Playwright (the browser tests) drives Debian's /usr/bin/chromium: never a download of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
VENV := .venv
BIN := $(VENV)/bin
# The stamp is newer than pyproject.toml, setup.py and the native codec's C sources once the
# dev environment matches them: editing a C file makes the next `make ...` re-run the
# editable install, which rebuilds the extension.
VENV_STAMP := $(VENV)/.installed
# The generator's own environment: see requirements/gen.txt for why it is separate.
GEN_VENV := .venv-gen
GEN_STAMP := $(GEN_VENV)/.installed
# buf, from npm (its registry is out of reach here, so it reads protoc-built images).
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
BUF_STAMP := .tools/.buf-$(BUF_VERSION)
# ESLint for the web page's JavaScript, from npm like buf (in a prefix of its own: an npm
# install without a package.json would remove what another one installed beside it).
ESLINT_VERSION := 10.16.0
ESLINT_PACKAGES := eslint@$(ESLINT_VERSION) @eslint/js@10.0.1 globals@17.15.0
ESLINT := .tools/eslint/node_modules/.bin/eslint
ESLINT_STAMP := .tools/.eslint-$(ESLINT_VERSION)
# buf breaking compares proto/ with this commit's (the previous commit of main, in CI).
BUF_AGAINST ?= HEAD~1
# The lowest supported version of every runtime dependency (requirements/lowest.txt).
LOWEST_VENV := .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed
NATIVE_SOURCES := $(wildcard v1op_pb/_codec/native/*.c v1op_pb/_codec/native/*.h)
# The tests that exercise the JSON codec: `make test` runs them a second time in
# pure-Python mode, and `make sanitize` under AddressSanitizer and UBSan.
CODEC_TESTS := tests/codec tests/test_json.py tests/test_stream.py
PURE_PYTHON := V1OP_PB_PURE_PYTHON=1
# The suite on every core (pytest-xdist), a test module at a time: its module-scoped
# fixtures (servers, stores) start once, and tests that build on each other's state (the
# README's blocks, one module's server) stay in order. (--dist loadgroup would spread
# single tests, but its groups are ignored with pytest 9.) `make test PYTEST_WORKERS=0`
# runs the suite in this one process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadscope
PROTO_FILES := $(shell find proto -name '*.proto' | sort)
# protoc from the pinned grpcio-tools (no system protoc), seeing our protos, the well-known
# types it ships and the googleapis protos that googleapis-common-protos ships.
PROTOC_IMPORTS = $(GEN_VENV)/bin/python -m grpc_tools.protoc \
	-I "$$($(GEN_VENV)/bin/python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
	-I "$$($(BIN)/python -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))')"
PROTOC = $(PROTOC_IMPORTS) -I proto
# Only files that define services get gRPC stubs (_pb2_grpc.py).
SERVICE_PROTO_FILES := $(shell grep -l '^service ' $(PROTO_FILES))

.PHONY: help
help: ## Describe useful make targets
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "%-15s %s\n", $$1, $$2}'

# The venv's own pip (23.0 and later, with every supported Python) installs editable
# packages; --no-compile leaves byte-compiling to the first import of each module, so the
# install does not compile the thousands of files of the tools that the tests never import.
PIP_INSTALL = -m pip install --quiet --no-compile --disable-pip-version-check

$(VENV_STAMP): pyproject.toml setup.py $(NATIVE_SOURCES)
	$(PYTHON) -m venv $(VENV)
	# The development build must have the C core (the tests check it against the Python
	# codec): a failed compile is an error here, not the users' warning and fallback.
	V1OP_PB_REQUIRE_NATIVE=1 $(BIN)/python $(PIP_INSTALL) -e '.[dev]'
	touch $@

.PHONY: install
install: $(VENV_STAMP) ## Create .venv and install the package with its development tools

$(GEN_STAMP): requirements/gen.txt
	$(PYTHON) -m venv $(GEN_VENV)
	$(GEN_VENV)/bin/python $(PIP_INSTALL) -r requirements/gen.txt
	touch $@

$(BUF_STAMP):
	npm install --silent --no-save --prefix .tools @bufbuild/buf@$(BUF_VERSION)
	touch $@

$(ESLINT_STAMP):
	mkdir -p .tools/eslint
	npm install --silent --no-save --prefix .tools/eslint $(ESLINT_PACKAGES)
	touch $@

$(LOWEST_STAMP): pyproject.toml requirements/lowest.txt
	$(PYTHON) -m venv $(LOWEST_VENV)
	V1OP_PB_REQUIRE_NATIVE=1 $(LOWEST_VENV)/bin/python $(PIP_INSTALL) -c requirements/lowest.txt -e '.[test]'
	touch $@

.PHONY: gen
gen: $(VENV_STAMP) ## Delete gen/ and regenerate it from proto/
	rm -rf gen
	$(MAKE) gen-into OUT=gen

.PHONY: gen-into
gen-into: $(VENV_STAMP) $(GEN_STAMP)
	mkdir -p $(OUT)
	# Message classes, and their stubs from mypy-protobuf (in .venv, pinned in the dev extra).
	$(PROTOC) \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--python_out=$(OUT) --mypy_out=$(OUT) \
		$(PROTO_FILES)
	# gRPC stubs and servicers, typed for both grpc and grpc.aio.
	$(PROTOC) \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		--grpc_python_out=$(OUT) --mypy_grpc_out=$(OUT) \
		$(SERVICE_PROTO_FILES)
	# Regular packages, so that the wheel and every import system see them.
	find $(OUT) -mindepth 1 -type d -exec touch {}/__init__.py \;
	# The services' protos with their comments (source info), for the OpenAPI document
	# (`v1op openapi`): its descriptions are the proto comments, as protoc-gen-openapiv2's.
	$(PROTOC) --include_source_info --descriptor_set_out=$(OUT)/v1op/v1/source_info.binpb \
		$(filter proto/v1op/v1/%,$(PROTO_FILES)) google/protobuf/any.proto
	# The sources beside the modules they made, and the typing marker: both ship in the wheel.
	for f in $(PROTO_FILES); do install -D -m 644 "$$f" "$(OUT)/$${f#proto/}"; done
	touch $(OUT)/v1op/py.typed

.PHONY: check-gen
check-gen: $(VENV_STAMP) ## Fail when gen/ differs from what proto/ generates
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(MAKE) gen-into OUT="$$tmp" && \
		diff -r --exclude=__pycache__ gen "$$tmp" || \
		{ echo "gen/ is stale: run 'make gen' and commit the result" >&2; exit 1; }

.PHONY: test
test: $(VENV_STAMP) $(BUF_STAMP) ## Run the test suite (the codec tests twice: native core, pure Python)
	$(MAKE) check-gen
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)
	$(PURE_PYTHON) $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) $(CODEC_TESTS)

.PHONY: sanitize
sanitize: $(VENV_STAMP) ## Run the codec tests with the native core built with ASan and UBSan
	# In a copy of the tree, so that the development build is left as it is. The
	# interpreter is not built with ASan: libasan is preloaded, and its leak report (the
	# interpreter's own allocations at exit) is off; reference leaks have a test of their own.
	# Among the tests: long fractions, surrogate pairs, every input fuzz-native found
	# (fuzz/regressions/native) and input at the depth limit on a 256 KiB thread stack.
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$$tmp" && \
		cd "$$tmp" && \
		CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g" \
		LDFLAGS="-fsanitize=address,undefined" V1OP_PB_REQUIRE_NATIVE=1 \
			$(abspath $(BIN))/python setup.py -q build_ext --inplace && \
		export LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
			ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
			V1OP_PB_EXPECT_NATIVE_UNDER="$$tmp" && \
		$(abspath $(BIN))/python -m pytest -q -p no:cacheprovider $(CODEC_TESTS)

FUZZ_SECONDS ?= 300
FUZZ_CLANG ?= clang
.PHONY: fuzz-native
fuzz-native: $(VENV_STAMP) ## Coverage-guided fuzzing of the native codec core against the Python codec (clang; FUZZ_SECONDS, default 300; not in CI)
	# In a copy of the tree, the core is built by clang with -fsanitize=fuzzer-no-link,address,
	# undefined, and run with one runtime holding ASan (with UBSan) and libFuzzer, linked here
	# from clang's own runtime archives (atheris needs them in one library): libFuzzer then
	# sees the C code's coverage beside the Python code's, and a memory error or undefined
	# behaviour in the C is a finding. tests/codec/fuzz_native.py says what is run.
	@missing=""; command -v $(FUZZ_CLANG) >/dev/null || missing="$(FUZZ_CLANG)"; \
	if [ -z "$$missing" ]; then rt=$$(dirname "$$($(FUZZ_CLANG) -print-file-name=libclang_rt.asan-x86_64.a)"); \
		for lib in asan fuzzer_no_main; do test -f "$$rt/libclang_rt.$$lib-x86_64.a" || \
			missing="$$missing $$rt/libclang_rt.$$lib-x86_64.a"; done; fi; \
	if [ -n "$$missing" ]; then version=$$($(FUZZ_CLANG) -dumpversion 2>/dev/null | cut -d. -f1 || true); \
		echo "make fuzz-native: missing $$missing; on Debian: apt-get install clang libclang-rt-$${version:-14}-dev" >&2; \
		exit 1; fi
	$(BIN)/python -m pip install --quiet atheris
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$$tmp" && \
		cd "$$tmp" && rt=$$(dirname "$$($(FUZZ_CLANG) -print-file-name=libclang_rt.asan-x86_64.a)") && \
		mkdir -p rt/asan rt/fuzzer && \
		(cd rt/asan && ar x "$$rt/libclang_rt.asan-x86_64.a" && rm -f asan_preinit.cpp.o) && \
		(cd rt/fuzzer && ar x "$$rt/libclang_rt.fuzzer_no_main-x86_64.a") && \
		$(FUZZ_CLANG) -shared -o asan_with_fuzzer.so rt/asan/*.o rt/fuzzer/*.o -lstdc++ -lpthread -ldl -lm -lrt && \
		CC=$(FUZZ_CLANG) LDSHARED="$(FUZZ_CLANG) -shared" \
		CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g" \
		LDFLAGS="-fsanitize=address,undefined" V1OP_PB_REQUIRE_NATIVE=1 \
			$(abspath $(BIN))/python setup.py -q build_ext --inplace && \
		TMPDIR="$$tmp" LD_PRELOAD="$$tmp/asan_with_fuzzer.so" \
		ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		$(abspath $(BIN))/python tests/codec/fuzz_native.py -max_total_time=$(FUZZ_SECONDS) \
			-rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=$${TMPDIR:-/tmp}/v1op-fuzz-native-

.PHONY: test-lowest
test-lowest: $(LOWEST_STAMP) $(BUF_STAMP) ## Run the test suite on the lowest supported dependencies
	$(LOWEST_VENV)/bin/python -c 'import google.protobuf, grpc, orjson, aiohttp; print("lowest: protobuf", google.protobuf.__version__, "grpcio", grpc.__version__, "orjson", orjson.__version__, "aiohttp", aiohttp.__version__)'
	$(LOWEST_VENV)/bin/python -m pytest $(PYTEST_PARALLEL)

.PHONY: lint
lint: $(VENV_STAMP) ## Lint: ruff, mypy --strict (package and examples), eslint (the web page), buf lint and breaking
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy v1op_pb examples
	$(MAKE) eslint
	$(MAKE) buf

.PHONY: eslint
eslint: $(ESLINT_STAMP) ## ESLint the web page's JavaScript (v1op_pb/gateway/ui, rules in eslint.config.mjs)
	$(ESLINT) --max-warnings 0 v1op_pb/gateway/ui

.PHONY: buf
buf: $(VENV_STAMP) $(GEN_STAMP) $(BUF_STAMP) ## buf lint proto/, and buf breaking against BUF_AGAINST
	# buf cannot fetch the googleapis imports from its registry here: it reads images that
	# protoc builds with the same imports as make gen, and checks our files (--path v1op).
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PROTOC) --include_imports --include_source_info \
		--descriptor_set_out="$$tmp/current.binpb" $(PROTO_FILES) && \
	$(BUF) lint "$$tmp/current.binpb" --config buf.yaml --path v1op && \
	if git rev-parse --verify --quiet "$(BUF_AGAINST)^{commit}" >/dev/null; then \
		mkdir "$$tmp/against" && git archive "$(BUF_AGAINST)" proto | tar -x -C "$$tmp/against" && \
		(cd "$$tmp/against" && find proto -name '*.proto' | sort) > "$$tmp/files" && \
		$(PROTOC_IMPORTS) -I "$$tmp/against/proto" --include_imports \
			--descriptor_set_out="$$tmp/against.binpb" \
			$$(sed "s|^|$$tmp/against/|" "$$tmp/files") && \
		$(BUF) breaking "$$tmp/current.binpb" --against "$$tmp/against.binpb" \
			--config buf.yaml --path v1op && \
		echo "buf breaking: proto/ is compatible with $(BUF_AGAINST)"; \
	else \
		echo "buf breaking: NOT RUN: $(BUF_AGAINST) is not in this clone (shallow or first commit)" >&2; \
	fi

.PHONY: format
format: $(VENV_STAMP) ## Format the hand-written code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: demo
demo: $(VENV_STAMP) ## Convert a shipped example between JSON, binary and text
	bash examples/demo.sh $(BIN)

# The server benchmark's load generator: h2load, from Debian's nghttp2-client.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: h2load
h2load:
	@command -v h2load >/dev/null || { \
		echo "bench: installing h2load (Debian's nghttp2-client)"; \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nghttp2-client; }

.PHONY: bench
bench: $(VENV_STAMP) h2load ## Run the benchmarks (outside the test suite) and print their tables
	$(BIN)/python -m bench.grpc_bench
	$(BIN)/python -m bench.scale_bench
	$(BIN)/python -m bench.server_bench
	$(BIN)/python -m bench.codec_bench

# Seconds of fuzzing per target; `make fuzz FUZZ_SECONDS=600` for a longer run.
FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: $(VENV_STAMP) ## Fuzz the codecs, the gateway and gRPC requests (atheris, FUZZ_SECONDS each)
	PYTHONPATH=gen:. $(BIN)/python -m fuzz --seconds $(FUZZ_SECONDS)

.PHONY: clean
clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(GEN_VENV) $(LOWEST_VENV) .tools .mypy_cache .pytest_cache .hypothesis .ruff_cache .fuzz build dist *.egg-info
