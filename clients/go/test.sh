#!/usr/bin/env bash
# `make test-go`: installs Debian 12's Go toolchain and gRPC libraries if they are missing, checks that the
# committed stubs are what gen.sh makes now, then vets and tests the client against a real server (started by the
# tests from the repository's .venv). GOPATH mode: the libraries come from /usr/share/gocode, not a module proxy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
gocode=/usr/share/gocode/src

need=()
command -v go >/dev/null || need+=(golang-go)
command -v protoc-gen-go >/dev/null || need+=(protoc-gen-go)
command -v protoc-gen-go-grpc >/dev/null || need+=(protoc-gen-go-grpc)
[ -d "$gocode/google.golang.org/grpc" ] || need+=(golang-google-grpc-dev)
[ -d "$gocode/google.golang.org/protobuf" ] || need+=(golang-google-protobuf-dev)
[ -d "$gocode/google.golang.org/genproto/googleapis/rpc/errdetails" ] || need+=(golang-google-genproto-dev)
# grpc-go accepts golang/protobuf 1.3 or 1.5; only 1.5 (APIv2-based) works with the generated code.
grep -qs ProtoPackageIsVersion4 "$gocode/github.com/golang/protobuf/proto/proto.go" ||
  need+=(golang-github-golang-protobuf-1-5-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/gen.sh" "$tmp/gen"
if diff -r "$tmp/gen/otari/batch/v1" "$here/otari/batch/v1" >/dev/null; then
  echo "clients/go/otari/batch/v1 is fresh"
else
  diff -r "$tmp/gen/otari/batch/v1" "$here/otari/batch/v1" | head -20
  echo "clients/go/otari/batch/v1 is stale: run clients/go/gen.sh and commit it"; exit 1
fi
unformatted="$(gofmt -l "$here/otaribatch")"
[ -z "$unformatted" ] || { echo "not gofmt'ed: $unformatted"; exit 1; }

# The import path github.com/mozilla-ai/otari-batch-grpc resolves to this checkout through a GOPATH of our own.
mkdir -p "$tmp/gopath/src/github.com/mozilla-ai"
ln -s "$root" "$tmp/gopath/src/github.com/mozilla-ai/otari-batch-grpc"
export GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOFLAGS= OTARI_REPO_ROOT="$root"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/go-build}"
pkgs=(github.com/mozilla-ai/otari-batch-grpc/clients/go/otari/batch/v1
  github.com/mozilla-ai/otari-batch-grpc/clients/go/otaribatch)
cd "$tmp/gopath/src/github.com/mozilla-ai/otari-batch-grpc/clients/go"
go vet "${pkgs[@]}"
go test -count=1 -v "${pkgs[@]}"
