"""The service's errors: one exception type the domain raises, and the table that maps the gateway's failures onto it.

A `ServiceError` names a canonical code (google.rpc.Code, the vocabulary every gRPC client knows), an ErrorInfo
reason, a message a person can act on, and the details that help: BadRequest field violations for bad input,
RetryInfo for what a retry can cure. Nothing here knows grpcio or HTTP clients: `to_status` builds the
google.rpc.Status, and the edge (`rpc`) sends it (grpcio-status). Every error carries exactly one ErrorInfo
(AIP-193).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from otari_batch_grpc.server.gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from otari_batch_grpc.server.store import StoreUnavailable

log = logging.getLogger("otari_batch_grpc.rpc")

DOMAIN = "batch.otari.mozilla.ai"
# What a status may carry, in UTF-8 bytes, so that it always fits the trailers it travels in (ServiceError.to_status).
MAX_MESSAGE_BYTES = 400
MAX_FIELD_BYTES = 120
MAX_DESCRIPTION_BYTES = 300
VIOLATIONS_BUDGET_BYTES = 3_000


# The reason of a call on the id of a part of a batch of several (core.batches.a_part): no batch of its own.
A_PART = "BATCH_IS_A_PART"


class Code(enum.Enum):
    """The canonical codes this service answers with (google.rpc.Code; grpc.StatusCode has the same names)."""

    INVALID_ARGUMENT = code_pb2.INVALID_ARGUMENT
    NOT_FOUND = code_pb2.NOT_FOUND
    ALREADY_EXISTS = code_pb2.ALREADY_EXISTS
    PERMISSION_DENIED = code_pb2.PERMISSION_DENIED
    UNAUTHENTICATED = code_pb2.UNAUTHENTICATED
    FAILED_PRECONDITION = code_pb2.FAILED_PRECONDITION
    OUT_OF_RANGE = code_pb2.OUT_OF_RANGE
    RESOURCE_EXHAUSTED = code_pb2.RESOURCE_EXHAUSTED
    UNAVAILABLE = code_pb2.UNAVAILABLE
    DEADLINE_EXCEEDED = code_pb2.DEADLINE_EXCEEDED
    INTERNAL = code_pb2.INTERNAL


@dataclass(frozen=True)
class FieldViolation:
    """One field of a request and what is wrong with it."""

    field: str
    description: str


@dataclass
class ServiceError(Exception):
    """An error to answer a call with. `reason` is an UPPER_SNAKE_CASE ErrorInfo reason."""

    code: Code
    reason: str
    message: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: Sequence[FieldViolation] = ()
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status with its details, as sent in the grpc-status-details-bin trailer. It travels in
        HTTP/2 trailers, which grpc-core caps at 16 KiB (8 KiB by default on some clients): every text is cut to
        a length, and the violations listed stop at a byte budget (the message says how many there are)."""
        status = status_pb2.Status(code=self.code.value, message=_cut(self.message, MAX_MESSAGE_BYTES))
        metadata = {_cut(k, MAX_FIELD_BYTES): _cut(v, MAX_FIELD_BYTES) for k, v in self.metadata.items()}
        _pack(status, error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=metadata))
        if self.violations:
            _pack(status, error_details_pb2.BadRequest(field_violations=listed_violations(self.violations)))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            _pack(status, error_details_pb2.RetryInfo(retry_delay=delay))
        return status


def listed_violations(violations: Sequence[FieldViolation]) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The violations a status's BadRequest lists: each cut to a length, in order, until the byte budget is spent."""
    listed: list[error_details_pb2.BadRequest.FieldViolation] = []
    spent = 0
    for v in violations:
        field, description = _cut(v.field, MAX_FIELD_BYTES), _cut(v.description, MAX_DESCRIPTION_BYTES)
        spent += len(field.encode()) + len(description.encode())
        if listed and spent > VIOLATIONS_BUDGET_BYTES:
            break
        listed.append(error_details_pb2.BadRequest.FieldViolation(field=field, description=description))
    return listed


def _cut(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes of `text` (what the trailers count), always encodable: a lone surrogate (from
    a JSON "\ud800", say) is escaped, not a failure to send the status."""
    data = text.encode("utf-8", "backslashreplace")
    return data.decode() if len(data) <= limit else data[: limit - 3].decode("utf-8", "ignore") + "…"


def _pack(status: status_pb2.Status, detail: object) -> None:
    packed = any_pb2.Any()
    packed.Pack(detail)  # type: ignore[arg-type]
    status.details.append(packed)


def invalid_argument(violations: Sequence[FieldViolation], *, reason: str = "INVALID_REQUEST") -> ServiceError:
    """INVALID_ARGUMENT listing every violation, the first of them in the message."""
    first, others = violations[0], len(violations) - 1
    listed = len(listed_violations(violations))
    if not others:
        more = ""
    elif listed == len(violations):
        more = f" (and {others} more: see BadRequest details)"
    else:  # the trailers hold so much: say how many the details list
        more = f" (and {others} more; BadRequest details list the first {listed})"
    return ServiceError(
        Code.INVALID_ARGUMENT,
        reason,
        f"{first.field}: {first.description}{more}",
        metadata={"field": first.field},
        violations=violations,
    )


LIMIT_EXCEEDED = "LIMIT_EXCEEDED"  # the ErrorInfo reason of every refusal of a limit
CALL_DEADLINE_PASSED = "CALL_DEADLINE_PASSED"  # the caller's deadline, not the gateway's timeout, ended a wait
# How long a caller refused by a limit is told to wait before trying again.
_LIMIT_RETRY_SECONDS = 1.0


def refusal(limit: str, message: str, *, retry: bool = True) -> ServiceError:
    """RESOURCE_EXHAUSTED for a call past `limit` (the edge's per-caller limits, the hub's watched batches), with
    the limit's name and when to retry (none for a limit no retry gets under: a batch too large)."""
    return ServiceError(
        Code.RESOURCE_EXHAUSTED,
        LIMIT_EXCEEDED,
        message,
        {"limit": limit},
        retry_after=_LIMIT_RETRY_SECONDS if retry else None,
    )


def shutting_down() -> ServiceError:
    """How open streams end when the server drains: retryable, so clients resume elsewhere or after restart."""
    return ServiceError(
        Code.UNAVAILABLE,
        "SERVER_SHUTTING_DOWN",
        "The server is shutting down; retry (a watch resumes with its last resume_token).",
        retry_after=1.0,
    )


def state_unavailable() -> ServiceError:
    """The service's state database did not answer (replicas on PostgreSQL, when it is down or cut off)."""
    return ServiceError(
        Code.UNAVAILABLE,
        "STATE_UNAVAILABLE",
        "The service's state database did not answer; retry shortly (nothing was lost: a create retried with its "
        "request_id makes one batch).",
        retry_after=2.0,
    )


def as_service_error(exc: Exception) -> ServiceError | None:
    """What a failure the domain let through answers: its own error as it is, the gateway's and the state
    database's as the service's; None for anything else (a fault of the service: INTERNAL, logged)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, UpstreamError):
        return from_upstream(exc)
    if isinstance(exc, StoreUnavailable):
        log.warning("the state database did not answer: %s", exc.__cause__ or exc)
        return state_unavailable()
    return None


def internal() -> ServiceError:
    return ServiceError(Code.INTERNAL, "INTERNAL", "An internal error occurred; it has been logged on the server.")


# -- the gateway's failures ---------------------------------------------------------------------------------------
_DEFAULT_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class _Mapping:
    code: Code
    reason: str
    retryable: bool = False  # carries RetryInfo (the gateway's Retry-After, or a second)


# The gateway's HTTP status -> this service's answer. 400/422 (field violations), 409 (the batch's status) and 502
# (ambiguous) get their details in `_from_http`; a status not listed falls back by class.
HTTP_STATUS_TABLE: Mapping[int, _Mapping] = {
    400: _Mapping(Code.INVALID_ARGUMENT, "GATEWAY_REJECTED_REQUEST"),
    401: _Mapping(Code.UNAUTHENTICATED, "GATEWAY_UNAUTHENTICATED"),
    402: _Mapping(Code.FAILED_PRECONDITION, "PAYMENT_REQUIRED"),  # the platform: insufficient funds
    403: _Mapping(Code.PERMISSION_DENIED, "GATEWAY_PERMISSION_DENIED"),
    404: _Mapping(Code.NOT_FOUND, "BATCH_NOT_FOUND"),
    409: _Mapping(Code.FAILED_PRECONDITION, "BATCH_NOT_COMPLETED"),
    422: _Mapping(Code.INVALID_ARGUMENT, "GATEWAY_REJECTED_REQUEST"),
    429: _Mapping(Code.RESOURCE_EXHAUSTED, "GATEWAY_RATE_LIMITED", retryable=True),
    500: _Mapping(Code.INTERNAL, "GATEWAY_INTERNAL_ERROR"),
    502: _Mapping(Code.UNAVAILABLE, "PROVIDER_ERROR", retryable=True),
    503: _Mapping(Code.UNAVAILABLE, "GATEWAY_UNAVAILABLE", retryable=True),
    504: _Mapping(Code.DEADLINE_EXCEEDED, "GATEWAY_TIMEOUT"),
}
_OTHER_4XX = _Mapping(Code.FAILED_PRECONDITION, "GATEWAY_REJECTED_REQUEST")
# A 403 that is a budget refusal, not a missing permission (otari's budget_service words it "User '…' has exceeded
# budget limit" and sends Otari-Error-Code: budget_exceeded), or a user the gateway blocked.
_BUDGET_EXCEEDED = _Mapping(Code.RESOURCE_EXHAUSTED, "BUDGET_EXCEEDED")
_USER_BLOCKED = _Mapping(Code.PERMISSION_DENIED, "USER_BLOCKED")
_BUDGET_WORDS = re.compile(r"exceeded (its |the |their )?budget|budget (limit )?exceeded|over budget", re.I)
_BLOCKED_WORDS = re.compile(r"\bis blocked\b|\bblocked user\b", re.I)
_OTHER_5XX = _Mapping(Code.UNAVAILABLE, "GATEWAY_UNAVAILABLE", retryable=True)
_USER_NOT_FOUND = re.compile(r"\bUser '.*' not found\b")  # the gateway's words for a user it does not know

# Where FastAPI's 422 `loc` names a gateway parameter, the name of the same thing in this contract.
_LOC_TO_FIELD = {
    ("query", "provider"): "provider",
    ("query", "limit"): "page_size",
    ("query", "after"): "page_token",
}
_STATUS_IN_DETAIL = re.compile(r"\(status: ([a-z_]+)\)")
_PROVIDER_ERROR_HINT = (
    ". The gateway says this when the provider is down, and also when the provider does not know the batch id, "
    "the provider name is not the batch's, or the provider refused the request. Check the batch id and provider; "
    "if they are right, retry later."
)


@contextlib.contextmanager
def upstream_errors() -> Iterator[None]:
    """The gateway's failures as the service's errors (the table below)."""
    try:
        yield
    except UpstreamError as exc:
        raise from_upstream(exc) from None


def from_upstream(exc: UpstreamError) -> ServiceError:
    """The answer to a gateway failure. Callers that know more (a batch's state) refine it first."""
    meta = {"operation": exc.operation}
    if exc.batch_id:
        meta["batch_id"] = exc.batch_id
    if isinstance(exc, UpstreamUnreachable):
        return ServiceError(
            Code.UNAVAILABLE,
            "GATEWAY_UNREACHABLE",
            f"The otari gateway could not be reached ({exc.cause}); retry shortly.",
            meta,
            retry_after=_DEFAULT_RETRY_SECONDS,
        )
    if isinstance(exc, UpstreamTimeout) and exc.callers:
        return ServiceError(
            Code.DEADLINE_EXCEEDED,
            CALL_DEADLINE_PASSED,
            f"The call's deadline passed before the otari gateway answered (it had {exc.timeout:.3g} s of it).",
            meta,
        )
    if isinstance(exc, UpstreamTimeout):
        return ServiceError(
            Code.DEADLINE_EXCEEDED,
            "GATEWAY_TIMEOUT",
            f"The otari gateway did not answer within {exc.timeout:.3g} s.",
            meta,
        )
    if isinstance(exc, UpstreamBadResponse):
        return ServiceError(
            Code.UNAVAILABLE,
            "GATEWAY_BAD_RESPONSE",
            f"The otari gateway answered with a body that is not the JSON expected: {exc.problem}.",
            {**meta, "http_status": str(exc.status)},
            retry_after=_DEFAULT_RETRY_SECONDS,
        )
    assert isinstance(exc, UpstreamHTTPError)
    return _from_http(exc, meta)


def _from_http(exc: UpstreamHTTPError, meta: dict[str, str]) -> ServiceError:
    status, detail = exc.status, exc.detail_text
    mapping = HTTP_STATUS_TABLE.get(status) or (_OTHER_4XX if 400 <= status < 500 else _OTHER_5XX)
    if status == 403 and (exc.error_code == "user_blocked" or _BLOCKED_WORDS.search(detail)):
        mapping = _USER_BLOCKED
    elif status == 403 and (exc.error_code == "budget_exceeded" or _BUDGET_WORDS.search(detail)):
        mapping = _BUDGET_EXCEEDED
    meta = {**meta, "http_status": str(status)}
    if exc.attempt_id:
        meta["otari_attempt_id"] = exc.attempt_id
    if status == 404 and exc.operation == "create" and _USER_NOT_FOUND.search(detail):  # a master-key create's user
        return ServiceError(
            Code.INVALID_ARGUMENT,
            "USER_NOT_FOUND",
            f"The gateway knows no such user ({detail}): name a user it has, in 'user'.",
            {**meta, "field": "user"},
            [FieldViolation("user", f"is not a user the gateway knows ({detail})")],
        )
    message = f"The gateway answered {status}: {detail}"
    violations: list[FieldViolation] = []
    if status in (400, 422):
        violations = [FieldViolation(_field_of(loc), msg) for loc, msg in exc.field_errors]
        violations = violations or [FieldViolation(_guess_field(detail, exc.operation), detail)]
    elif status == 409 and (match := _STATUS_IN_DETAIL.search(detail)):
        meta["status"] = match.group(1)
    elif status == 502:
        message += _PROVIDER_ERROR_HINT
    retry_after = None
    if mapping.retryable:
        retry_after = exc.retry_after if exc.retry_after is not None else _DEFAULT_RETRY_SECONDS
    return ServiceError(mapping.code, mapping.reason, message, meta, violations, retry_after)


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
