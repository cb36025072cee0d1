#!/usr/bin/env bash
# Installs Debian 12's Go toolchain, its gRPC and protobuf libraries and the Go protoc plugins, where missing: what
# `make generate` (protoc-gen-go, protoc-gen-go-grpc) and `make test-go` (the rest) need. No Go module proxy is
# reachable from this project's machines, so the libraries are Debian's, used in GOPATH mode (clients/go/README.md).
set -euo pipefail
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
