"""The transport under the gateway client: httpx's own (httpcore's HTTP/1.1 connection pool), instrumented.

Every request to the gateway passes here, so this is where each is counted and timed (metrics) and, with tracing
on, gets a client span whose W3C `traceparent` goes to the gateway in the request's headers. Failures are httpx's
own: a refused connection is `httpx.ConnectError`, a gateway that does not answer in time `httpx.ReadTimeout`.
"""

from __future__ import annotations

import time

import httpx
from opentelemetry import propagate, trace

from otari_batch_grpc.server import metrics, tracing


class GatewayTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, each request counted, timed and (with tracing on) traced."""

    def __init__(self, *, max_connections: int) -> None:
        super().__init__(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The path as sent (still percent-encoded): an id's own characters never split it into more segments.
        route = route_of(request.method, request.url.raw_path.decode("ascii").partition("?")[0])
        span = None
        if tracing.tracer is not None and not tracing.silenced():
            span = _client_span(tracing.tracer, request, route)
        started = time.perf_counter()
        try:
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
