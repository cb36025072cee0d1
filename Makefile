# The front door: `make run` serves, `make test` proves it. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GENERATED := src/otari_batch_grpc/v1
PY_SOURCES := src tests bench tools

.PHONY: run test generate check-generated lint breaking bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/otari-batch-grpc

# Python stubs, .pyi type stubs and the reflection descriptor set from protos/, into the project's namespace.
generate: $(STAMP)
	$(BIN)/python tools/gen_protos.py $(GENERATED)

# Fails when the generated stubs do not match what `make generate` would write now.
check-generated: $(STAMP)
	@tmp=$$(mktemp -d) && $(BIN)/python tools/gen_protos.py $$tmp/v1 && \
	if diff -r $$tmp/v1 $(GENERATED) >/dev/null; then rm -rf $$tmp; echo "$(GENERATED) is fresh"; \
	else diff -r $$tmp/v1 $(GENERATED) | head -20; rm -rf $$tmp; \
		echo "$(GENERATED) is stale: run 'make generate' and commit it"; exit 1; fi

lint: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy

# Breaking-change check of protos/ against the main branch (run on a branch, before merging).
breaking: $(STAMP)
	$(BIN)/buf breaking --against '.git#branch=main'

test: $(STAMP) check-generated lint test-node test-go
	$(BIN)/python -m pytest -q

# The Node and Go clients against a real server (they start it from $(VENV)); each installs only what it lacks.
.PHONY: test-node test-go
test-node: $(STAMP)
	cd clients/node && npm ci --no-audit --no-fund && npm test

test-go: $(STAMP)
	clients/go/test.sh

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
