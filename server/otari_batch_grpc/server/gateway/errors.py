"""What can go wrong when the service calls the otari gateway, as exceptions that know nothing of HTTP clients.

`gateway` raises these; `errors.from_upstream` maps them onto the service's errors (a table, by HTTP status). The
answers whose status means something particular at this gateway have exceptions of their own (`http_error`
picks them), so the rest of the service reads what happened, not a status code.
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
    """The gateway did not answer in the time the call had: `timeout` seconds, less than the service's `limit` when
    the caller's deadline was what ended the wait (`callers`)."""

    def __init__(self, operation: str, timeout: float, *, limit: float | None = None) -> None:
        super().__init__(operation, f"gateway timed out after {timeout:.3g}s")
        self.timeout = timeout
        self.callers = limit is not None and timeout < limit


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

    @property
    def refused(self) -> bool:
        """Whether the answer says the gateway did nothing with the request: any 4xx, or a 502/503 (the provider,
        or the gateway itself, turned it down)."""
        return 400 <= self.status < 500 or self.status in (502, 503)


class KeyRefused(UpstreamHTTPError):
    """401: the gateway does not take the caller's key."""


class ProviderFailed(UpstreamHTTPError):
    """502 "LLM provider error": the provider failed, or it does not know the batch id; the gateway answers both
    alike (and a cancel of a batch that already finished too), so whoever gets this settles which it was."""


class NotCompleted(UpstreamHTTPError):
    """409 on a batch's results: it is not completed (the results do not exist yet, or ever)."""


_MEANINGS: dict[int, type[UpstreamHTTPError]] = {401: KeyRefused, 409: NotCompleted, 502: ProviderFailed}


def http_error(operation: str, status: int, detail: object, retry_after: float | None) -> UpstreamHTTPError:
    """The gateway's error answer as the exception that says what it means (UpstreamHTTPError where no more)."""
    return _MEANINGS.get(status, UpstreamHTTPError)(operation, status, detail, retry_after)
