# The front door: `make run` serves, `make test` proves it. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GENERATED := generated/python/otari_batch_grpc/v1
PY_SOURCES := server clients/python tests bench tools

.PHONY: help run run-replicas test generate check-generated lint breaking bench clean
.DEFAULT_GOAL := help

help: ## This list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# Both distributions, editable: the service (server/) and the client with the stubs (clients/python).
$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./clients/python -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## Serve on 127.0.0.1:50051 (the built-in gateway simulator unless GATEWAY_URL is set)
	@$(BIN)/otari-batch-grpc

run-replicas: $(STAMP) ## Three replicas on ports 50051-50053, one PostgreSQL (DATABASE_URL), one simulator
	$(BIN)/python tools/run_replicas.py

# Python stubs, .pyi type stubs and the reflection descriptor set from protos/, into the project's namespace.
generate: $(STAMP) ## Regenerate the stubs from protos/ (commit them)
	$(BIN)/python tools/gen_protos.py $(GENERATED)

# Fails when the generated stubs do not match what `make generate` would write now.
check-generated: $(STAMP) ## Fail when the committed stubs are stale
	@tmp=$$(mktemp -d) && $(BIN)/python tools/gen_protos.py $$tmp/v1 && \
	if diff -r -x __pycache__ $$tmp/v1 $(GENERATED) >/dev/null; then rm -rf $$tmp; echo "$(GENERATED) is fresh"; \
	else diff -r -x __pycache__ $$tmp/v1 $(GENERATED) | head -20; rm -rf $$tmp; \
		echo "$(GENERATED) is stale: run 'make generate' and commit it"; exit 1; fi

lint: $(STAMP) ## buf lint, ruff, mypy (strict)
	$(BIN)/buf lint
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy

# Breaking-change check of protos/ against the main branch (run on a branch, before merging).
breaking: $(STAMP) ## buf breaking against the main branch
	$(BIN)/buf breaking --against '.git#branch=main'

test: $(STAMP) check-generated lint test-node test-go ## Everything: stubs fresh, lint, pytest, the Node and Go clients
	$(BIN)/python -m pytest -q

# The Node and Go clients against a real server (they start it from $(VENV)); each installs only what it lacks.
.PHONY: test-node test-go
test-node: $(STAMP) ## The Node.js client against a real server
	cd clients/node && npm ci --no-audit --no-fund && npm test

test-go: $(STAMP) ## The Go client against a real server
	clients/go/test.sh

bench: $(STAMP) ## The performance figures, each with PASS/MISS (exits non-zero on a miss)
	$(BIN)/python -m bench

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
