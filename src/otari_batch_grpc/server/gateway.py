"""The one HTTP client to the otari gateway. Speaks JSON; failures become typed exceptions.

This module knows HTTP and the gateway's routes, nothing of gRPC or protobuf. One `httpx.AsyncClient` is shared by
every call; the caller's key goes on each request and nowhere else (never into a log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

import httpx

JSON = dict[str, Any]

# The HTTP status of the last gateway answer in this task, for the per-RPC log line.
last_upstream_status: ContextVar[int | None] = ContextVar("last_upstream_status", default=None)

# Bodies larger than this are parsed off the event loop.
_PARSE_IN_THREAD_BYTES = 256 * 1024


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


class GatewayClient:
    """The otari gateway's batch routes. Every method takes the caller's key and the time the call has left."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        results_timeout: float,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._results_timeout = results_timeout
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            transport=transport,
            headers={"user-agent": "otari-batch-grpc/0.1"},
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_batch(self, key: str, body: JSON, *, time_left: float | None) -> JSON:
        data = await self._call("create", "POST", "/v1/batches", key, time_left, json_body=body)
        return _expect_batch("create", data)

    async def get_batch(self, key: str, batch_id: str, provider: str, *, time_left: float | None) -> JSON:
        path = f"/v1/batches/{_seg(batch_id)}"
        data = await self._call("get", "GET", path, key, time_left, params={"provider": provider}, batch_id=batch_id)
        return _expect_batch("get", data)

    async def cancel_batch(self, key: str, batch_id: str, provider: str, *, time_left: float | None) -> JSON:
        path = f"/v1/batches/{_seg(batch_id)}/cancel"
        data = await self._call(
            "cancel", "POST", path, key, time_left, params={"provider": provider}, batch_id=batch_id
        )
        return _expect_batch("cancel", data)

    async def list_batches(
        self, key: str, provider: str, *, after: str | None, limit: int, time_left: float | None
    ) -> list[JSON]:
        params: dict[str, str | int] = {"provider": provider, "limit": limit}
        if after:
            params["after"] = after
        data = await self._call("list", "GET", "/v1/batches", key, time_left, params=params)
        items = data.get("data")
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
            raise UpstreamBadResponse("list", 200, "'data' is not a list of batches")
        return items

    async def batch_results(self, key: str, batch_id: str, provider: str, *, time_left: float | None) -> list[JSON]:
        path = f"/v1/batches/{_seg(batch_id)}/results"
        data = await self._call(
            "results",
            "GET",
            path,
            key,
            time_left,
            params={"provider": provider},
            limit=self._results_timeout,
            batch_id=batch_id,
        )
        items = data.get("results")
        if not isinstance(items, list) or not all(isinstance(i, dict) and "custom_id" in i for i in items):
            raise UpstreamBadResponse("results", 200, "'results' is not a list of {custom_id, result, error}")
        return items

    async def ping(self, *, within: float) -> bool:
        """Whether the gateway answers HTTP at all (any status below 500 counts) within `within` seconds."""
        try:
            response = await self._http.get("/health/liveness", timeout=within)
        except httpx.HTTPError:
            return False
        return response.status_code < 500

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        key: str,
        time_left: float | None,
        *,
        params: dict[str, str | int] | None = None,
        json_body: JSON | None = None,
        limit: float | None = None,
        batch_id: str | None = None,
    ) -> JSON:
        with _about(batch_id):
            budget = limit or self._timeout
            if time_left is not None:
                if time_left <= 0:
                    raise UpstreamTimeout(operation, 0)
                budget = min(budget, time_left)
            content = None
            headers = {"authorization": f"Bearer {key}"}
            if json_body is not None:
                content = await _dumps(json_body)
                headers["content-type"] = "application/json"
            try:
                response = await self._http.request(
                    method, path, params=params, content=content, headers=headers, timeout=budget
                )
            except httpx.TimeoutException:
                raise UpstreamTimeout(operation, budget) from None
            except httpx.HTTPError as exc:
                raise UpstreamUnreachable(operation, type(exc).__name__) from None
            last_upstream_status.set(response.status_code)
            if response.status_code != 200:
                raise UpstreamHTTPError(
                    operation,
                    response.status_code,
                    _detail(response),
                    _retry_after(response.headers.get("retry-after")),
                )
            try:
                data = await _loads(response.content)
            except ValueError:
                raise UpstreamBadResponse(operation, 200, "not JSON") from None
            if not isinstance(data, dict):
                raise UpstreamBadResponse(operation, 200, "not a JSON object")
            return data


@contextlib.contextmanager
def _about(batch_id: str | None) -> Iterator[None]:
    """Name the batch a failed call was about on the exception, for the caller's error details."""
    try:
        yield
    except UpstreamError as exc:
        exc.batch_id = batch_id
        raise


def _seg(value: str) -> str:
    return quote(value, safe="")


def _expect_batch(operation: str, data: JSON) -> JSON:
    if not isinstance(data.get("id"), str) or not isinstance(data.get("status"), str):
        raise UpstreamBadResponse(operation, 200, "not a batch object (no string 'id' and 'status')")
    return data


def _detail(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] if text else None
    return body.get("detail") if isinstance(body, dict) else body


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def _loads(content: bytes) -> Any:
    if len(content) > _PARSE_IN_THREAD_BYTES:
        return await asyncio.to_thread(json.loads, content)
    return json.loads(content)


async def _dumps(body: JSON) -> bytes:
    # A 10,000-request batch serialises to megabytes: keep that off the event loop.
    if len(body.get("requests", ())) > 500:
        return await asyncio.to_thread(_encode, body)
    return _encode(body)


def _encode(body: JSON) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
