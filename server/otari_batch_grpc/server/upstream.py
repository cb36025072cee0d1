"""What can go wrong when the service calls the otari gateway, as exceptions that know nothing of HTTP clients.

`gateway` raises these; `errors.from_upstream` maps them onto the service's errors (a table, by HTTP status).
"""

from __future__ import annotations

from collections.abc import Sequence


class UpstreamError(Exception):
    """The gateway call did not give the answer asked for."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.batch_id: str | None = None  # the batch the call was about, if any


class UpstreamUnreachable(UpstreamError):
    """No HTTP answer: connection refused or reset, DNS, TLS."""

    def __init__(self, operation: str, cause: str) -> None:
        super().__init__(operation, f"gateway unreachable: {cause}")
        self.cause = cause


class UpstreamTimeout(UpstreamError):
    """The gateway did not answer in the time the call had."""

    def __init__(self, operation: str, timeout: float) -> None:
        super().__init__(operation, f"gateway timed out after {timeout:.3g}s")
        self.timeout = timeout


class UpstreamBadResponse(UpstreamError):
    """An answer whose body is not the JSON this route returns."""

    def __init__(self, operation: str, status: int, problem: str) -> None:
        super().__init__(operation, f"gateway answered {status} with an unexpected body: {problem}")
        self.status = status
        self.problem = problem


class UpstreamHTTPError(UpstreamError):
    """The gateway answered with an error status and (usually) a FastAPI `{"detail": ...}` body."""

    def __init__(self, operation: str, status: int, detail: object, retry_after: float | None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.error_code: str | None = None  # the gateway's Otari-Error-Code header (e.g. budget_exceeded)
        self.attempt_id: str | None = None  # its Otari-Attempt-ID: where to look on the gateway's side
        self.field_errors: list[tuple[Sequence[object], str]] = []
        if isinstance(detail, list):
            for item in detail:
                if isinstance(item, dict):
                    loc = item.get("loc")
                    self.field_errors.append((loc if isinstance(loc, list) else [], str(item.get("msg", "invalid"))))
            self.detail_text = "; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in self.field_errors)
        else:
            self.detail_text = str(detail) if detail is not None else "(no detail)"
        super().__init__(operation, f"gateway answered {status}: {self.detail_text}")
