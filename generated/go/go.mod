module github.com/mozilla-ai/otari-batch-grpc/generated/go

// package batchv1 (otari/batch/v1): the stubs of protos/otari/batch/v1, made by `make generate`; this file is
// written by hand. The versions are those the tests build with (Debian 12's packages, see clients/go/README.md);
// newer releases of both should work (untested here).
go 1.19

require (
	github.com/golang/protobuf v1.5.2 // indirect
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
