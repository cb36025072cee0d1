package otaribatch

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FieldViolation is one entry of a google.rpc.BadRequest: which field of the request, and what is wrong with it.
type FieldViolation struct {
	Field       string // a path such as "requests[3].custom_id"
	Description string
}

// Error is a failed BatchService call with its google.rpc details (from the grpc-status-details-bin trailer).
// Every error the Client returns for a failed call is an *Error; get it with errors.As or AsError.
type Error struct {
	Code            codes.Code
	Message         string
	Reason          string            // google.rpc.ErrorInfo.reason, e.g. "BATCH_NOT_COMPLETED"
	Domain          string            // google.rpc.ErrorInfo.domain, "batch.otari.mozilla.ai"
	Metadata        map[string]string // google.rpc.ErrorInfo.metadata, e.g. {"batch_id": ..., "status": ...}
	FieldViolations []FieldViolation  // google.rpc.BadRequest, on INVALID_ARGUMENT
	RetryDelay      *time.Duration    // google.rpc.RetryInfo.retry_delay; nil when the error carries none

	status *status.Status
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("otari batch: %s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("otari batch: %s: %s", e.Code, e.Message)
}

// GRPCStatus lets status.FromError and status.Code see through an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Retryable says whether the same call may succeed later: UNAVAILABLE, or any error carrying RetryInfo.
func (e *Error) Retryable() bool { return e.Code == codes.Unavailable || e.RetryDelay != nil }

// AsError returns the *Error in err's chain, if there is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// newError turns a gRPC status error into an *Error; other errors (nil included) pass through unchanged.
func newError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*Error); ok {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain, e.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			delay := d.GetRetryDelay().AsDuration()
			e.RetryDelay = &delay
		}
	}
	return e
}
