"""The service's Prometheus metrics, and the HTTP listener that serves them (METRICS_ADDRESS; off by default).

Every metric is created here, once per process, in prometheus-client's default registry (which adds the process_*
and python_* collectors: CPU, memory, open files, GC). Updating one is a lock and an addition, about a microsecond;
the hot paths keep the labelled children they use, so they do not look them up per call.

The listener is prometheus-client's own (`start_http_server`): a small HTTP server on a thread of its own. A scrape
then never waits behind the event loop (and still answers when the loop is stuck, which is when it is needed), and
rendering the text of a few hundred series never holds the loop up either.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

T = TypeVar("T")

# From half a millisecond (a GetBatch served locally) to five minutes (a results download, a long WaitBatch).
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)

# -- the edge (rpc.py) --------------------------------------------------------------------------------------------
RPCS = Counter("otari_batch_grpc_rpcs", "RPCs finished, by method and gRPC status code.", ["method", "code"])
RPC_SECONDS = Histogram(
    "otari_batch_grpc_rpc_duration_seconds",
    "Seconds from a call's start to its end, by method (a stream's whole life, for the streaming methods).",
    ["method"],
    buckets=_LATENCY_BUCKETS,
)
OPEN_STREAMS = Gauge("otari_batch_grpc_open_streams", "Server-streaming calls open now (results, watches).")
LIMIT_REJECTIONS = Counter(
    "otari_batch_grpc_limit_rejections",
    "Calls refused with RESOURCE_EXHAUSTED by one of the service's limits.",
    ["limit"],
)

# -- the gateway (gateway/transport.py: every HTTP request the service makes to the gateway) ------------------------
GATEWAY_REQUESTS = Counter(
    "otari_batch_grpc_gateway_requests",
    "HTTP requests to the gateway, by route (method and path, ids as {id}) and HTTP status (or the exception's "
    "name when no status came back: ConnectError, ReadTimeout, ...).",
    ["route", "status"],
)
GATEWAY_SECONDS = Histogram(
    "otari_batch_grpc_gateway_request_duration_seconds",
    "Seconds from sending a request to the gateway to its response's headers (a body streams on after them).",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)

# -- the results cache (results.py, store.py) ---------------------------------------------------------------------
RESULTS_CACHE_HITS = Counter(
    "otari_batch_grpc_results_cache_hits", "StreamResults calls served from the service's cache."
)
RESULTS_CACHE_MISSES = Counter(
    "otari_batch_grpc_results_cache_misses", "StreamResults calls that fetched the results from the gateway."
)
RESULTS_CACHE_BYTES = Gauge("otari_batch_grpc_results_cache_bytes", "Bytes of results the cache holds.")

# -- the watch hub (domain/subscriptions) ------------------------------------------------------------------------------
WATCH_SUBSCRIPTIONS = Gauge(
    "otari_batch_grpc_watch_subscriptions",
    "Subscriptions to live batches' poll loops (one per stream and batch it follows: WatchBatch, WatchBatches, "
    "WaitBatch, StreamResults with wait).",
)
WATCH_POLL_LOOPS = Gauge(
    "otari_batch_grpc_watch_poll_loops", "Poll loops running: one per live batch that someone is watching."
)
WATCH_POLLS = Counter(
    "otari_batch_grpc_watch_polls",
    "Polls of the gateway made by the watch hub, by outcome (ok, or the error code).",
    ["outcome"],
)

# -- webhooks (domain/notifications) -------------------------------------------------------------------------------
WEBHOOK_TRIES = Counter(
    "otari_batch_grpc_webhook_tries",
    "Webhook delivery tries, by outcome: delivered, retried (a failed try, tried again), dropped, gone (410).",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "otari_batch_grpc_webhook_delivery_seconds",
    "Seconds from the change saved (its event in the outbox) to the receiver's 2xx.",
    buckets=(*_LATENCY_BUCKETS, 900.0, 3600.0, 21600.0, 86400.0),
)

# -- the state database (store.py) --------------------------------------------------------------------------------
STORE_SECONDS = Histogram(
    "otari_batch_grpc_store_transaction_seconds",
    "Seconds a write transaction of the state database takes, waiting for the database's lock included.",
    buckets=_LATENCY_BUCKETS,
)


def counted_polls(poll: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """`poll`, counting each call in WATCH_POLLS by its outcome (the hub's Poll: one line where the hub keeps it)."""
    ok = WATCH_POLLS.labels("ok")

    async def counted(*args: Any) -> T:
        try:
            result = await poll(*args)
        except Exception as exc:
            code = getattr(exc, "code", None)
            WATCH_POLLS.labels(getattr(code, "name", type(exc).__name__)).inc()
            raise
        ok.inc()
        return result

    return counted


def limit_refused(limit: str) -> None:
    """Count one call refused by `limit` (limits.Limits' `on_refusal`)."""
    LIMIT_REJECTIONS.labels(limit).inc()


class MetricsListener:
    """The /metrics endpoint on `host:port`, served from a thread of its own. `port` is the bound one (port 0 picks)."""

    def __init__(self, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host)  # raises OSError when it cannot bind
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def close(self) -> None:
        # shutdown() waits for the serving loop's next turn (up to half a second): not on the event loop.
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
