"""What a failed BatchService call raises: `BatchError`, or the subclass named for its gRPC code, with the google.rpc
details the service sends with every error.

    try:
        batch = client.get(batch_id)
    except NotFoundError:
        ...
    except BatchError as error:  # any other failure
        print(error.reason, error.field_violations)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "AlreadyExistsError",
    "BatchError",
    "CancelledError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
]

# Codes a retry can cure whatever the details say (a server restarting, a connection refused). Any other code is
# retried only when the service says so with RetryInfo (a rate limit, say). CANCELLED is among them because it
# reaches this client only from the other side (a call this client cancels raises asyncio.CancelledError): a
# replica that stopped mid-call, say. Every call here is safe to repeat (create under one request_id).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})


class FieldViolation(NamedTuple):
    """One bad field of a request: its path (`requests[3].custom_id`) and what is wrong with it."""

    field: str
    description: str


class BatchError(Exception):
    """A failed BatchService call, with the google.rpc details the service sends with every error.

    `reason` and `domain` come from google.rpc.ErrorInfo (`metadata` too: `batch_id`, `status`, ...),
    `field_violations` from google.rpc.BadRequest, `retry_after` (seconds) from google.rpc.RetryInfo; each is
    empty (or None) when the error did not carry it, as errors raised by gRPC itself (a refused connection) do not.
    Each gRPC code has a subclass (`NotFoundError`, `InvalidArgumentError`, ...) to catch it by.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.retry_after = retry_after
        # create(): the request_id it sent. After DEADLINE_EXCEEDED or UNAVAILABLE the batch may exist: calling
        # create again with this request_id returns it rather than making a second one.
        self.request_id: str | None = None

    @staticmethod
    def of(error: grpc.aio.AioRpcError) -> BatchError:
        """The error a failed call raises: the subclass for its code, its details decoded with grpcio-status."""
        values: dict[str, Any] = {}
        for packed in _status_of(error).details:
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                values.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
            elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                packed.Unpack(bad)
                values["field_violations"] = [FieldViolation(v.field, v.description) for v in bad.field_violations]
            elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                packed.Unpack(retry)
                values["retry_after"] = retry.retry_delay.ToTimedelta().total_seconds()
        code: grpc.StatusCode = error.code()
        details: str | None = error.details()
        return error_class(code)(code, details or "", **values)

    @property
    def retryable(self) -> bool:
        """True when a retry can succeed: UNAVAILABLE, CANCELLED by the other side, or the service sent RetryInfo."""
        return self.code in RETRYABLE or self.retry_after is not None

    @property
    def repeats_first_violation(self) -> bool:
        """True when the message is the first field violation (as the service writes it): print it once."""
        if not self.field_violations:
            return False
        first = self.field_violations[0]
        return self.message.startswith(f"{first.field}: {first.description}")

    def __str__(self) -> str:
        head = f"{self.code.name} {self.reason}" if self.reason else self.code.name
        parts = [] if self.repeats_first_violation else [self.message]
        parts += [f"{v.field}: {v.description}" for v in self.field_violations]
        return f"{head}: " + "; ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, reason={self.reason!r}, message={self.message!r})"


class InvalidArgumentError(BatchError):
    """A request the service (or the gateway) refuses as it is: `field_violations` says which fields."""


class NotFoundError(BatchError):
    """No such batch for this caller (another user's batch is not found either)."""


class AlreadyExistsError(BatchError):
    """A request_id reused with a different request."""


class PermissionDeniedError(BatchError):
    """The key may not do this (a user that is not its own, a blocked user, a spent budget)."""


class UnauthenticatedError(BatchError):
    """No key, a malformed one, or one the gateway does not take (revoked, unknown)."""


class FailedPreconditionError(BatchError):
    """Not now: results of a batch not completed, a cancel of a finished batch, a token of a retired key."""


class OutOfRangeError(BatchError):
    """A position past the end (a start_index beyond the results)."""


class ResourceExhaustedError(BatchError):
    """A limit: the caller's, the gateway's rate limit. `retry_after` says when to try again."""


class UnavailableError(BatchError):
    """The service, the gateway or the provider cannot answer now, or nothing answers at the target."""


class DeadlineExceededError(BatchError):
    """The call's deadline passed (or the gateway's timeout). A create may have made its batch: retry it with
    `request_id`."""


class InternalError(BatchError):
    """A fault of the service's (logged there; the message says nothing more)."""


class CancelledError(BatchError):
    """The call was cancelled by the other side (a replica stopping mid-call). Not asyncio.CancelledError."""


_BY_CODE: dict[grpc.StatusCode, type[BatchError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def error_class(code: grpc.StatusCode) -> type[BatchError]:
    """The class a failure with `code` is raised as (BatchError for a code without one of its own)."""
    return _BY_CODE.get(code, BatchError)


def _status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    try:
        # An AioRpcError has the synchronous call's code(), details() and trailing_metadata() that from_call reads.
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details that contradict the status line: trust the status line, drop the details
        return status_pb2.Status()
    return status if isinstance(status, status_pb2.Status) else status_pb2.Status()
