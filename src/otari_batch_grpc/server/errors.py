"""Errors the service answers with: one exception type, turned into a gRPC status with google.rpc details.

Every error carries exactly one ErrorInfo (AIP-193); bad input adds BadRequest field violations, and an error a
retry can cure adds RetryInfo. `from_upstream` maps the gateway's HTTP errors onto this per DESIGN.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from otari_batch_grpc.server.gateway import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

DOMAIN = "batch.otari.mozilla.ai"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One field of a request and what is wrong with it."""

    field: str
    description: str


@dataclass
class ServiceError(Exception):
    """An error to answer a call with. `reason` is an UPPER_SNAKE_CASE ErrorInfo reason."""

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: Sequence[FieldViolation] = ()
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status with its details, as sent in the grpc-status-details-bin trailer."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=dict(self.metadata))
        _pack(status, info)
        if self.violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in self.violations
                ]
            )
            _pack(status, bad_request)
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            _pack(status, error_details_pb2.RetryInfo(retry_delay=delay))
        return status

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ((STATUS_DETAILS_KEY, self.to_status().SerializeToString()),)


def _pack(status: status_pb2.Status, detail: object) -> None:
    packed = any_pb2.Any()
    packed.Pack(detail)  # type: ignore[arg-type]
    status.details.append(packed)


def invalid_argument(violations: Sequence[FieldViolation], *, reason: str = "INVALID_REQUEST") -> ServiceError:
    """INVALID_ARGUMENT listing every violation, the first of them in the message."""
    first = violations[0]
    more = f" (and {len(violations) - 1} more: see BadRequest details)" if len(violations) > 1 else ""
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
        f"{first.field}: {first.description}{more}",
        metadata={"field": first.field},
        violations=violations,
    )


def shutting_down() -> ServiceError:
    """How open streams end when the server drains: retryable, so clients resume elsewhere or after restart."""
    return ServiceError(
        grpc.StatusCode.UNAVAILABLE,
        "SERVER_SHUTTING_DOWN",
        "The server is shutting down; retry (a watch resumes with its last resume_token).",
        retry_after=1.0,
    )


# Where FastAPI's 422 `loc` names a gateway parameter, the name of the same thing in this contract.
_LOC_TO_FIELD = {
    ("query", "provider"): "provider",
    ("query", "limit"): "page_size",
    ("query", "after"): "page_token",
}

_DEFAULT_RETRY_SECONDS = 1.0
_STATUS_IN_DETAIL = re.compile(r"\(status: ([a-z_]+)\)")


def from_upstream(exc: UpstreamError) -> ServiceError:
    """The gRPC answer to a gateway failure. Callers that know more (a batch's state) refine it first."""
    meta = {"operation": exc.operation}
    if exc.batch_id:
        meta["batch_id"] = exc.batch_id
    if isinstance(exc, UpstreamUnreachable):
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            "GATEWAY_UNREACHABLE",
            f"The otari gateway could not be reached ({exc.cause}); retry shortly.",
            meta,
            retry_after=_DEFAULT_RETRY_SECONDS,
        )
    if isinstance(exc, UpstreamTimeout):
        return ServiceError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "GATEWAY_TIMEOUT",
            f"The otari gateway did not answer within {exc.timeout:.3g} s.",
            meta,
        )
    if isinstance(exc, UpstreamBadResponse):
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            "GATEWAY_BAD_RESPONSE",
            f"The otari gateway answered with a body that is not the JSON expected: {exc.problem}.",
            {**meta, "http_status": str(exc.status)},
            retry_after=_DEFAULT_RETRY_SECONDS,
        )
    assert isinstance(exc, UpstreamHTTPError)
    return _from_http(exc, meta)


def _from_http(exc: UpstreamHTTPError, meta: dict[str, str]) -> ServiceError:
    status, detail = exc.status, exc.detail_text
    meta = {**meta, "http_status": str(status)}
    said = f"The gateway answered {status}: {detail}"
    if status in (400, 422):
        violations = [FieldViolation(_field_of(loc), msg) for loc, msg in exc.field_errors]
        if not violations:
            violations = [FieldViolation(_guess_field(detail, exc.operation), detail)]
        return ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT, "GATEWAY_REJECTED_REQUEST", said, meta, violations=violations
        )
    if status == 401:
        return ServiceError(grpc.StatusCode.UNAUTHENTICATED, "GATEWAY_UNAUTHENTICATED", said, meta)
    if status == 403:
        return ServiceError(grpc.StatusCode.PERMISSION_DENIED, "GATEWAY_PERMISSION_DENIED", said, meta)
    if status == 404:
        return ServiceError(grpc.StatusCode.NOT_FOUND, "BATCH_NOT_FOUND", said, meta)
    if status == 409:
        match = _STATUS_IN_DETAIL.search(detail)
        if match:
            meta["status"] = match.group(1)
        return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, "BATCH_NOT_COMPLETED", said, meta)
    if status == 429:
        return ServiceError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "GATEWAY_RATE_LIMITED",
            said,
            meta,
            retry_after=exc.retry_after if exc.retry_after is not None else _DEFAULT_RETRY_SECONDS,
        )
    if status == 502:
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            "PROVIDER_ERROR",
            f"{said}. The gateway says this when the provider is down, and also when the provider does not "
            "know the batch id, the provider name is not the batch's, or the provider refused the request. "
            "Check the batch id and provider; if they are right, retry later.",
            meta,
            retry_after=exc.retry_after if exc.retry_after is not None else _DEFAULT_RETRY_SECONDS,
        )
    if status in (503,):
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            "GATEWAY_UNAVAILABLE",
            said,
            meta,
            retry_after=exc.retry_after if exc.retry_after is not None else _DEFAULT_RETRY_SECONDS,
        )
    if status == 504:
        return ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "GATEWAY_TIMEOUT", said, meta)
    if status == 500:
        return ServiceError(grpc.StatusCode.INTERNAL, "GATEWAY_INTERNAL_ERROR", said, meta)
    if 400 <= status < 500:
        return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, "GATEWAY_REJECTED_REQUEST", said, meta)
    return ServiceError(
        grpc.StatusCode.UNAVAILABLE, "GATEWAY_UNAVAILABLE", said, meta, retry_after=_DEFAULT_RETRY_SECONDS
    )


def _field_of(loc: Sequence[object]) -> str:
    """FastAPI's `loc` (["body", "requests", 0, "custom_id"]) as a field path of this contract."""
    parts = [str(p) for p in loc]
    if tuple(parts[:2]) in _LOC_TO_FIELD:
        return _LOC_TO_FIELD[(parts[0], parts[1])]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "request"


def _guess_field(detail: str, operation: str) -> str:
    """The field a plain-string 400/422 is about: on create, the user or the model (which names the provider);
    elsewhere, the provider query parameter."""
    if operation == "create":
        return "user" if "'user'" in detail else "model"
    return "provider"
