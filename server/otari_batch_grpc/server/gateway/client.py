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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from otari_batch_grpc.server.gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
    http_error,
)
from otari_batch_grpc.server.gateway.results_document import ResultsDocumentError, ResultsParser
from otari_batch_grpc.server.gateway.transport import GatewayTransport
from otari_batch_grpc.server.telemetry import upstream_answer

JSON = dict[str, Any]

API_ROOTS = ("/api/v1", "/v1")

# Bodies larger than this are parsed off the event loop.
_PARSE_IN_THREAD_BYTES = 256 * 1024

T = TypeVar("T")
# Told of each answer to a caller's key: (key, HTTP status, when its request was sent).
Witness = Callable[[str, int, float], None]


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
        api_root: str = "/v1",
        platform_token: str | None = None,
        gate: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self._timeout = timeout
        self._results_timeout = results_timeout
        self.api_root = api_root  # "/v1" (the self-hosted gateway) or "/api/v1" (the otari platform, newer gateways)
        self._platform_token = platform_token
        # Requests are built by the client (base URL, headers, timeouts) and sent by its transport itself: no
        # cookie jar (a cookie one caller's answer set must never ride on another's request), no redirects, no auth.
        self._transport = transport or GatewayTransport(max_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            follow_redirects=False,
            transport=self._transport,
            headers={"user-agent": "otari-batch-grpc/0.1"},
        )
        # Health probes on a connection of their own: a pool busy with callers' calls is not a gateway that is down.
        self._probe_http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            follow_redirects=False,
            transport=GatewayTransport(max_connections=1) if transport is None else transport,
            headers={"user-agent": "otari-batch-grpc/0.1"},
        )
        # Holds one of the caller's gateway-call slots around each call (limits.Limits.upstream), by key.
        self._gate = gate or _no_gate
        # Told of every answer to a caller's key: (key, HTTP status, when the request was sent, epoch seconds).
        self._witnesses: list[Witness] = []

    def witness(self, witness: Witness) -> None:
        """Tell `witness` of every answer the gateway gives a caller's key from now on: the gateway's own word on
        that key (401: it refuses it; it authenticates before anything else, so any other 4xx or a 2xx: it takes
        it)."""
        self._witnesses.append(witness)

    def _answered(self, key: str, response: httpx.Response, sent: float) -> None:
        _note(response)
        for witness in self._witnesses:
            witness(key, response.status_code, sent)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._probe_http.aclose()

    async def find_api_root(self, *, within: float) -> str | None:
        """Which root serves the batch routes: `/api/v1` (the platform and newer gateways) or `/v1`; None when the
        gateway answers but serves neither. An OPTIONS request touches no route handler: a served path answers 405
        (or 200), an unknown one 404. Raises UpstreamUnreachable when nothing answers."""
        for root in API_ROOTS:
            try:
                response = await self._probe_http.options(f"{root}/batches", timeout=within)
            except httpx.HTTPError as exc:
                raise UpstreamUnreachable("probe", type(exc).__name__) from None
            if response.status_code != 404:
                return root
        return None

    def _headers(self, key: str) -> dict[str, str]:
        """The caller's key as the gateway takes it. With a platform token, the token is the Authorization and the
        key goes in Otari-Key, as the otari SDK sends them; without one, the key is the bearer token."""
        if self._platform_token:
            return {"authorization": f"Bearer {self._platform_token}", "otari-key": f"Bearer {key}"}
        return {"authorization": f"Bearer {key}"}

    @property
    def timeout(self) -> float:
        """Seconds a call may take at most (UPSTREAM_TIMEOUT); a caller's deadline shortens it."""
        return self._timeout

    async def create_batch(self, key: str, body: bytes, *, time_left: float | None) -> JSON:
        """POST /batches with `body`, a JSON object already encoded (see convert.create_body)."""
        data = await self._call("create", "POST", f"{self.api_root}/batches", key, time_left, json_body=body)
        return _expect_batch("create", data)

    async def get_batch(self, key: str, batch_id: str, provider: str, *, time_left: float | None) -> JSON:
        path = f"{self.api_root}/batches/{_seg(batch_id)}"
        data = await self._call("get", "GET", path, key, time_left, params={"provider": provider}, batch_id=batch_id)
        return _expect_batch("get", data)

    async def cancel_batch(self, key: str, batch_id: str, provider: str, *, time_left: float | None) -> JSON:
        path = f"{self.api_root}/batches/{_seg(batch_id)}/cancel"
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
        data = await self._call("list", "GET", f"{self.api_root}/batches", key, time_left, params=params)
        items = data.get("data")
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
            raise UpstreamBadResponse("list", 200, "'data' is not a list of batches")
        return items

    async def list_providers(self, key: str, *, time_left: float | None) -> list[str]:
        """The providers the gateway has models configured for, in its order: GET /models lists `provider:model`
        ids (it touches no provider)."""
        data = await self._call("models", "GET", f"{self.api_root}/models", key, time_left)
        items = data.get("data")
        if not isinstance(items, list):
            raise UpstreamBadResponse("models", 200, "'data' is not a list of models")
        ids = [item.get("id") for item in items if isinstance(item, dict)]
        return list(dict.fromkeys(i.split(":", 1)[0] for i in ids if isinstance(i, str) and ":" in i))

    async def check_key(self, key: str, *, time_left: float | None) -> None:
        """Ask the gateway whether it takes `key`, without touching a provider: the list route with no parameters
        answers 401 for a key it does not know and 422 (provider missing) for one it does, as it authenticates
        first. Raises UpstreamHTTPError 401 (or another failure) when it does not."""
        try:
            await self._call("key", "GET", f"{self.api_root}/batches", key, time_left)
        except UpstreamHTTPError as exc:
            if exc.status not in (400, 422):
                raise

    @contextlib.asynccontextmanager
    async def stream_results(
        self, key: str, batch_id: str, provider: str, parser: ResultsParser[T], *, time_left: float | None
    ) -> AsyncIterator[AsyncIterator[T]]:
        """A completed batch's results as they arrive, each as `parser` makes it: the body (one JSON document) is
        parsed incrementally, so memory stays flat and the first result is ready long before the last byte.
        Leaving the context closes the upstream response (a cancelled call stops the download)."""
        started = time.monotonic()
        operation = "results"
        async with self._gate(key), contextlib.AsyncExitStack() as stack:
            sent = time.time()
            with _about(batch_id):
                budget = self._budget(operation, self._results_timeout, _less(time_left, started))
                request = self._http.build_request(
                    "GET",
                    f"{self.api_root}/batches/{_seg(batch_id)}/results",
                    params={"provider": provider},
                    headers=self._headers(key),
                    timeout=budget,
                )
                try:
                    response = await self._send(request)
                except httpx.TimeoutException:
                    raise UpstreamTimeout(operation, budget, limit=self._results_timeout) from None
                except httpx.HTTPError as exc:
                    raise UpstreamUnreachable(operation, type(exc).__name__) from None
                stack.push_async_callback(response.aclose)
                self._answered(key, response, sent)
                if response.status_code != 200:
                    await response.aread()
                    raise _http_error(operation, response)
                # Closed here, in this task: left to the garbage collector, it would close elsewhere.
                items = await stack.enter_async_context(
                    contextlib.aclosing(_result_items(response, parser, budget, self._results_timeout))
                )
                yield items

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """The request sent as it was built, its answer's body left to read (streamed)."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    def _budget(self, operation: str, limit: float, time_left: float | None) -> float:
        """The seconds a call may take: the limit, shortened by the caller's deadline."""
        if time_left is None:
            return limit
        if time_left <= 0:
            raise UpstreamTimeout(operation, 0, limit=limit)
        return min(limit, time_left)

    async def ping(self, *, within: float) -> bool:
        """Whether the gateway answers HTTP at all (any status below 500 counts) within `within` seconds."""
        try:
            response = await self._probe_http.options(f"{self.api_root}/batches", timeout=within)
        except httpx.HTTPError:
            return False
        return response.status_code < 500 and response.status_code != 404  # it serves the batch routes

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        key: str,
        time_left: float | None,
        *,
        params: dict[str, str | int] | None = None,
        json_body: bytes | None = None,
        batch_id: str | None = None,
    ) -> JSON:
        """One gateway call, in one of the caller's slots (waiting for one counts against `time_left`)."""
        started = time.monotonic()
        async with self._gate(key):
            time_left = _less(time_left, started)
            with _about(batch_id):
                budget = self._budget(operation, self._timeout, time_left)
                headers = self._headers(key)
                if json_body is not None:
                    headers["content-type"] = "application/json"
                request = self._http.build_request(
                    method, path, params=params, content=json_body, headers=headers, timeout=budget
                )
                sent = time.time()
                try:
                    response = await self._send(request)
                except httpx.TimeoutException:
                    raise UpstreamTimeout(operation, budget, limit=self._timeout) from None
                except httpx.HTTPError as exc:
                    raise UpstreamUnreachable(operation, type(exc).__name__) from None
                try:  # the gateway answered (it is done with the request); its body may still break off
                    await response.aread()
                except httpx.HTTPError as exc:
                    problem = f"cut short ({type(exc).__name__})"
                    raise UpstreamBadResponse(operation, response.status_code, problem) from None
                finally:
                    await response.aclose()
                self._answered(key, response, sent)
                if response.status_code != 200:
                    raise _http_error(operation, response)
                try:
                    data = await _loads(response.content)
                except ValueError:
                    raise UpstreamBadResponse(operation, 200, "not JSON") from None
                if not isinstance(data, dict):
                    raise UpstreamBadResponse(operation, 200, "not a JSON object")
                return data


async def _result_items(
    response: httpx.Response, parser: ResultsParser[T], budget: float, limit: float
) -> AsyncGenerator[T, None]:
    """Each `{custom_id, result, error}` of `{"results": [...]}`, as the bytes arrive (see results_document): the first
    result is ready long before the last byte, and memory holds about one network chunk."""
    operation = "results"
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            for item in parser.feed(chunk):
                yield item
        for item in parser.end():
            yield item
    except httpx.TimeoutException:
        raise UpstreamTimeout(operation, budget, limit=limit) from None
    except httpx.HTTPError as exc:
        raise UpstreamUnreachable(operation, type(exc).__name__) from None
    except UnicodeDecodeError:
        raise UpstreamBadResponse(operation, 200, "not UTF-8") from None
    except ResultsDocumentError as exc:
        raise UpstreamBadResponse(operation, 200, str(exc)) from None
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]  # here, in this task


@contextlib.contextmanager
def _about(batch_id: str | None) -> Iterator[None]:
    """Name the batch a failed call was about on the exception, for the caller's error details."""
    try:
        yield
    except UpstreamError as exc:
        exc.batch_id = batch_id
        raise


@contextlib.asynccontextmanager
async def _no_gate(_key: str) -> AsyncIterator[None]:
    yield


def _less(time_left: float | None, since: float) -> float | None:
    """The time a call has left, less what passed since `since` (waiting for a slot, say)."""
    return None if time_left is None else time_left - (time.monotonic() - since)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _expect_batch(operation: str, data: JSON) -> JSON:
    if not isinstance(data.get("id"), str) or not isinstance(data.get("status"), str):
        raise UpstreamBadResponse(operation, 200, "not a batch object (no string 'id' and 'status')")
    return data


def _note(response: httpx.Response) -> None:
    upstream_answer.note(response.status_code, response.headers.get("otari-attempt-id"))


def _http_error(operation: str, response: httpx.Response) -> UpstreamHTTPError:
    error = http_error(
        operation, response.status_code, _detail(response), _retry_after(response.headers.get("retry-after"))
    )
    error.error_code = response.headers.get("otari-error-code")
    error.attempt_id = response.headers.get("otari-attempt-id")
    return error


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
