module github.com/mozilla-ai/otari-batch-grpc/clients/go

// Tested in GOPATH mode with Debian 12's packages (README.md): grpc-go 1.33.3, protobuf-go 1.28.1 and
// golang/protobuf 1.5.2, listed here (test.sh checks they agree), plus the genproto that grpc 1.33.3 asks for; newer
// releases should work (untested here). go.sum is not committed (this project's CI reaches no module proxy):
// `go mod tidy` fills it in a module that uses this one. The stubs are the module in ../../generated/go, required at
// this repository's version (v0.1.0, not tagged yet) and replaced by the checkout's own copy when built here.
go 1.19

require (
	github.com/golang/protobuf v1.5.2 // indirect
	github.com/mozilla-ai/otari-batch-grpc/generated/go v0.1.0
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

replace github.com/mozilla-ai/otari-batch-grpc/generated/go => ../../generated/go
