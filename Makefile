# See https://tech.davis-hansson.com/p/make/
SHELL := bash
.DELETE_ON_ERROR:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables
MAKEFLAGS += --no-builtin-rules
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is newer than pyproject.toml once the dev environment matches it.
VENV_STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find proto -name '*.proto' | sort)
# protoc from grpcio-tools (no system protoc), seeing our protos, the well-known types it
# ships and the googleapis protos that googleapis-common-protos ships.
PROTOC = $(BIN)/python -m grpc_tools.protoc -I proto \
	-I "$$($(BIN)/python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
	-I "$$($(BIN)/python -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))')"
# Only files that define services get gRPC stubs (_pb2_grpc.py).
SERVICE_PROTO_FILES := $(shell grep -l '^service ' $(PROTO_FILES))

.PHONY: help
help: ## Describe useful make targets
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "%-15s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install
install: $(VENV_STAMP) ## Create .venv and install the package with its development tools

.PHONY: gen
gen: $(VENV_STAMP) ## Delete gen/ and regenerate it from proto/
	rm -rf gen
	$(MAKE) gen-into OUT=gen

.PHONY: gen-into
gen-into: $(VENV_STAMP)
	mkdir -p $(OUT)
	$(PROTOC) \
		--python_out=$(OUT) --pyi_out=$(OUT) \
		$(PROTO_FILES)
	$(PROTOC) \
		--grpc_python_out=$(OUT) \
		$(SERVICE_PROTO_FILES)
	# Regular packages, so that the wheel and every import system see them.
	find $(OUT) -mindepth 1 -type d -exec touch {}/__init__.py \;
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
test: $(VENV_STAMP) ## Run the test suite
	$(MAKE) check-gen
	$(BIN)/python -m pytest

.PHONY: lint
lint: $(VENV_STAMP) ## Lint and check formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: $(VENV_STAMP) ## Format the hand-written code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: demo
demo: $(VENV_STAMP) ## Convert a shipped example between JSON, binary and text
	bash examples/demo.sh $(BIN)

.PHONY: bench
bench: $(VENV_STAMP) ## Run the benchmarks (outside the test suite) and print their tables
	$(BIN)/python -m bench.grpc_bench
	$(BIN)/python -m bench.codec_bench

.PHONY: clean
clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build dist *.egg-info
