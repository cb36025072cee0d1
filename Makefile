# The front door: `make run` serves, `make test` proves it. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find protos -name '*.proto' | sort)
# protoc with the Python, gRPC and mypy-protobuf plugins; the output folder is appended.
PROTOC = $(BIN)/python -m grpc_tools.protoc -I protos \
	--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	$(PROTO_FILES) --python_out=$(1) --mypy_out=$(1) --grpc_python_out=$(1) --mypy_grpc_out=$(1)

.PHONY: run test generate check-generated lint breaking bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m server

# Python stubs and .pyi type stubs from protos/, written into generated/.
generate: $(STAMP)
	find generated -name "*_pb2*" -delete
	$(call PROTOC,generated)
	for d in $$(find generated/otari -type d); do touch $$d/__init__.py; done

# Fails when generated/ does not match what `make generate` would write now.
check-generated: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(call PROTOC,$$tmp) && \
	for d in $$(find $$tmp/otari -type d); do touch $$d/__init__.py; done && \
	if diff -r $$tmp/otari generated/otari >/dev/null; then rm -rf $$tmp; echo "generated/ is fresh"; \
	else diff -r $$tmp/otari generated/otari | head -20; rm -rf $$tmp; \
		echo "generated/ is stale: run 'make generate' and commit it"; exit 1; fi

lint: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/ruff check server clients tests bench
	$(BIN)/ruff format --check server clients tests bench
	$(BIN)/mypy

# Breaking-change check of protos/ against the main branch (run on a branch, before merging).
breaking: $(STAMP)
	$(BIN)/buf breaking --against '.git#branch=main'

test: $(STAMP) check-generated lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
