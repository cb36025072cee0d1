# The front door: `make run` serves, `make test` proves it. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What serving needs (`make run`), the debugging tools of the README (`make tools`: buf, grpcurl), and the whole
# development tool chain (`make test`): each installed once into .venv, when its description changes.
RUN_STAMP := $(VENV)/.installed-run
TOOLS_STAMP := $(VENV)/.installed-tools
STAMP := $(VENV)/.installed
PY_SOURCES := server clients/python tests bench tools
# setuptools warns, at every editable build, of folders named like the package: it is how this tree is laid out.
PIP := PYTHONWARNINGS=ignore $(BIN)/pip install --quiet

.PHONY: help run run-replicas test test-fast generate check-generated lint breaking bench soak clean
.DEFAULT_GOAL := help

help: ## This list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Both distributions, editable: the service (server/) and the client with the stubs (clients/python).
$(RUN_STAMP): pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(PIP) -e './clients/python[cli]' -e '.[simulator,tracing]'
	touch $@

$(TOOLS_STAMP): $(RUN_STAMP)
	$(PIP) -e '.[tools]'
	touch $@

$(STAMP): $(RUN_STAMP)
	$(PIP) -e './clients/python[cli]' -e '.[dev]'
	touch $@

.PHONY: tools
tools: $(TOOLS_STAMP) ## Install buf and grpcurl into .venv/bin (the README's walk-through uses them)

run: $(RUN_STAMP) ## Serve on 127.0.0.1:50051 (the built-in gateway simulator unless GATEWAY_URL is set)
	@$(BIN)/otari-batch-grpc

run-replicas: $(STAMP) ## Three replicas on ports 50051-50053, one PostgreSQL (DATABASE_URL), one simulator
	$(BIN)/python tools/run_replicas.py

# The generators buf.gen.yaml runs: .venv's (Python), Debian's (Go), clients/node's (the Node types).
NODE_MODULES := clients/node/node_modules/.package-lock.json
$(NODE_MODULES): clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund
.PHONY: generators
generators: $(STAMP) $(NODE_MODULES)
	@tools/install-go.sh

generate: generators ## Regenerate generated/ (every language) from protos/ (commit it)
	$(BIN)/python tools/generate.py

check-generated: generators ## Fail when anything in generated/ is stale
	@$(BIN)/python tools/generate.py --check

lint: $(STAMP) ## buf lint, ruff (complexity 15 at most), mypy (strict), the import contracts, sizes of server/
	$(BIN)/buf lint
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/sizes.py server

# Breaking-change check of protos/ against the main branch (run on a branch, before merging).
breaking: $(STAMP) ## buf breaking against the main branch
	$(BIN)/buf breaking --against '.git#branch=main'

test: $(STAMP) check-generated lint test-node test-go ## Everything: stubs fresh, lint, pytest, the Node and Go clients
	$(BIN)/python -m pytest -q

# The tier a change is tried on first: no PostgreSQL, no process started; on every core (pytest-xdist).
FAST := not postgres and not subprocess
test-fast: $(STAMP) ## pytest without the tests that need PostgreSQL or start a process; ends saying how many ran
	$(BIN)/python -m pytest -q -m '$(FAST)' -n 4

# The Node and Go clients against a real server (they start it from $(VENV)); each installs only what it lacks.
.PHONY: test-node test-go
test-node: $(STAMP) $(NODE_MODULES) ## The Node.js client against a real server
	cd clients/node && npm test

test-go: $(STAMP) ## The Go client against a real server
	clients/go/test.sh

bench: $(STAMP) ## The performance figures, each with PASS/MISS (exits non-zero on a miss)
	$(BIN)/python -m bench

# Not part of `make test`: a bounded run (SOAK_SECONDS) under faults; SOAK_SEED replays a run's fault schedule.
SOAK_SECONDS ?= 300
SOAK_SEED ?=
SOAK_FAULTS ?=
soak: $(STAMP) ## Three replicas under load and faults for SOAK_SECONDS (default 300), then invariants (SOAK_SEED replays)
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SEED=$(SOAK_SEED) SOAK_FAULTS=$(SOAK_FAULTS) $(BIN)/python -m bench.soak

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
