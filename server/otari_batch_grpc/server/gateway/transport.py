"""The transport under the gateway client: httpx's API over aiohttp's HTTP/1.1 connection pool.

httpx's own transport (httpcore on anyio) spends about 0.7 ms of CPU on a small GET here, more than the gRPC call it
serves, and its pool does work in proportion to its connections on every request: a storm of watched batches (500
polled, #20) spent 45% of the server's CPU there, and subscribers waited 16 s for a snapshot (1.2 s on this one).
aiohttp's C-accelerated client does a small GET in about 0.45 ms (measured for #12). The adapter is
`httpx-aiohttp`, the one the OpenAI SDK ships as its aiohttp backend. Its own error mapping names a refused
connection a timeout, so failures are renamed here, from the aiohttp exception, into the httpx exception that
means the same thing: the gateway client keeps telling "the gateway took too long" from "nothing answered".

Every request to the gateway passes here, so this is where each is counted and timed (metrics) and, with tracing
on, gets a client span whose W3C `traceparent` goes to the gateway in the request's headers.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from opentelemetry import propagate, trace

from otari_batch_grpc.server.telemetry import metrics, tracing

# First match wins: aiohttp's timeouts are also TimeoutError, its connect failures also OSError.
_AS_HTTPX: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientError, httpx.NetworkError),
)


def _renamed(exc: BaseException) -> httpx.TransportError | None:
    origin = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None else exc
    for foreign, own in _AS_HTTPX:
        if isinstance(origin, foreign):
            return own(str(origin) or type(origin).__name__)
    return None


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
        renamed = _renamed(exc)
        if renamed is None:
            raise
        raise renamed from exc


class _Body(httpx.AsyncByteStream):
    """A response body whose read failures carry httpx's names too."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._inner.aclose()


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """The TLS context every transport verifies the gateway with: made once (loading the CA bundle takes ~20 ms),
    shared by the client's pools."""
    return httpx.create_ssl_context(trust_env=False)


class GatewayTransport(AiohttpTransport):
    """aiohttp under httpx, failures named as httpx names them."""

    def __init__(self, *, max_connections: int) -> None:
        super().__init__(
            verify=_verifying_context(),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    def get_client(self) -> aiohttp.ClientSession:
        """The library's session and pool, less its cookie jar: a cookie the gateway's answer to one caller sets
        must never ride on another caller's request."""
        limit = self.limits.max_connections or 0
        connector = aiohttp.TCPConnector(
            keepalive_timeout=self.limits.keepalive_expiry, ssl=self.ssl_context, limit=limit
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The path as sent (still percent-encoded): an id's own characters never split it into more segments.
        route = route_of(request.method, request.url.raw_path.decode("ascii").partition("?")[0])
        span = None
        if tracing.tracer is not None and not tracing.silenced():
            span = _client_span(tracing.tracer, request, route)
        started = time.perf_counter()
        try:
            with _httpx_errors():
                response = await super().handle_async_request(request)
        except BaseException as exc:  # a transport error, or the call cancelled: counted under its name
            _count(route, type(exc).__name__, started)
            if span is not None:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                span.end()
            raise
        _count(route, str(response.status_code), started)
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(trace.StatusCode.ERROR, str(response.status_code))
            span.end()
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response


def _count(route: str, status: str, started: float) -> None:
    metrics.GATEWAY_SECONDS.labels(route).observe(time.perf_counter() - started)
    metrics.GATEWAY_REQUESTS.labels(route, status).inc()


# The words of the gateway's paths; any other segment is an id (so a route label has few values, whatever the ids).
_ROUTE_WORDS = frozenset(("", "v1", "api", "batches", "cancel", "results"))


def route_of(method: str, path: str) -> str:
    """`GET /v1/batches/{id}/results`: the request's method and path, every segment that is not a word of the
    gateway's routes (a batch id) as {id}."""
    return method + " " + "/".join(part if part in _ROUTE_WORDS else "{id}" for part in path.split("/"))


def _client_span(tracer: trace.Tracer, request: httpx.Request, route: str) -> trace.Span:
    """A client span for this request, a child of the current one (the call's server span), its context sent to the
    gateway as `traceparent` (by the configured propagators: W3C trace context and baggage by default)."""
    url = request.url
    span = tracer.start_span(
        route,
        kind=trace.SpanKind.CLIENT,
        attributes={
            "http.request.method": request.method,
            "url.template": route.partition(" ")[2],
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        },
    )
    propagate.inject(request.headers, context=trace.set_span_in_context(span))
    return span
