#!/usr/bin/env bash
# `make test-go`: installs Debian 12's Go toolchain and gRPC libraries if they are missing (tools/install-go.sh),
# checks that each go.mod requires the versions tested here, then vets and tests the client against a real server
# (started by the tests from the repository's .venv). GOPATH mode: the libraries come from /usr/share/gocode, not a
# module proxy. (`make check-generated` checks the stubs in generated/go are fresh.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$root/tools/install-go.sh"

# go.mod names what a module elsewhere builds against: the Debian packages these tests build with.
for pair in google.golang.org/grpc:golang-google-grpc-dev google.golang.org/protobuf:golang-google-protobuf-dev \
  github.com/golang/protobuf:golang-github-golang-protobuf-1-5-dev; do
  module="${pair%%:*}"; version="v$(dpkg-query -W -f '${Version}' "${pair#*:}" | sed 's/-[^-]*$//')"
  for mod in "$here/go.mod" "$root/generated/go/go.mod"; do
    required="$(awk -v m="$module" '$1 == m {print $2}' "$mod")"
    [ -z "$required" ] || [ "$required" = "$version" ] ||
      { echo "$mod requires $module $required, tested with $version (Debian's ${pair#*:})"; exit 1; }
  done
done
unformatted="$(gofmt -l "$here/otaribatch")"
[ -z "$unformatted" ] || { echo "not gofmt'ed: $unformatted"; exit 1; }

# The import path github.com/mozilla-ai/otari-batch-grpc resolves to this checkout through a GOPATH of our own.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gopath/src/github.com/mozilla-ai"
ln -s "$root" "$tmp/gopath/src/github.com/mozilla-ai/otari-batch-grpc"
export GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOFLAGS= OTARI_REPO_ROOT="$root"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/go-build}"
pkgs=(github.com/mozilla-ai/otari-batch-grpc/generated/go/otari/batch/v1
  github.com/mozilla-ai/otari-batch-grpc/clients/go/otaribatch)
cd "$tmp/gopath/src/github.com/mozilla-ai/otari-batch-grpc/clients/go"
go vet "${pkgs[@]}"
go test -count=1 -v "${pkgs[@]}"

# The README's snippet as a program of a user's own, outside this repository's folders, built against the package.
user="$tmp/gopath/src/example.com/user"
mkdir -p "$user"
{
  printf 'package main\n\nimport (\n\t"context"\n\t"fmt"\n\t"log"\n\n'
  printf '\t"github.com/mozilla-ai/otari-batch-grpc/clients/go/otaribatch"\n)\n\nfunc main() {\n'
  awk '/^```go$/ {on = 1; next} on && /^```$/ {exit} on {print (length($0) ? "\t" $0 : "")}' "$here/README.md"
  printf '}\n'
} > "$user/main.go"
(cd "$user" && go vet . && go build -o /dev/null .)
echo "the README's snippet builds as a program of its own ($user)"
