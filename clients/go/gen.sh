#!/usr/bin/env bash
# Generates the Go stubs of protos/otari/batch/v1 into OUT_DIR (default: clients/go, where they are committed).
# protoc is grpc_tools' (pinned in pyproject.toml, in .venv); protoc-gen-go and protoc-gen-go-grpc are Debian 12's
# (protoc-gen-go 1.28.1, protoc-gen-go-grpc 1.0 from grpc-go 1.33.3): the generated code builds against Debian's
# golang-google-protobuf-dev and golang-google-grpc-dev, and against any newer release of both.
#     clients/go/gen.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here}"
py="$root/.venv/bin/python"
include="$("$py" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
mkdir -p "$out"
cd "$root/protos"
"$py" -m grpc_tools.protoc -I. -I"$include" \
  --plugin=protoc-gen-go="$(command -v protoc-gen-go)" \
  --plugin=protoc-gen-go-grpc="$(command -v protoc-gen-go-grpc)" \
  --go_out="$out" --go_opt=module=github.com/mozilla-ai/otari-batch-grpc/clients/go \
  --go-grpc_out="$out" --go-grpc_opt=module=github.com/mozilla-ai/otari-batch-grpc/clients/go \
  otari/batch/v1/*.proto
