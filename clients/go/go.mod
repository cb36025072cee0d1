module github.com/mozilla-ai/otari-batch-grpc/clients/go

// Tested in GOPATH mode with Debian 12's packages (README.md): grpc-go 1.33.3 and protobuf-go 1.28.1,
// listed here, plus the genproto that grpc 1.33.3 asks for; newer releases should work (untested here).
// go.sum is not committed (this project's CI reaches no module proxy): `go mod tidy` fills it in a module
// that uses this one.
go 1.19

require (
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
