"""OpenTelemetry traces: a server span per RPC (edge/rpc.py), a client span per gateway request
(gateway/transport.py), the W3C `traceparent` read from the call's metadata and sent on to the gateway, so one trace
runs from the caller through this service into the gateway.

Configured by the standard OTEL_* environment variables, and off unless they ask for it: traces are on when
OTEL_TRACES_EXPORTER names an exporter (not `none`), or, with it unset, when OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the exporter is then `otlp`); OTEL_SDK_DISABLED=true turns them off
whatever else is set. Off, the edge and the transport test one module attribute and do nothing else.

The SDK reads the rest itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the service name defaults to
otari-batch-grpc), OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_EXPORTER_OTLP_* (endpoint, headers, protocol...),
OTEL_PROPAGATORS (tracecontext,baggage by default).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

SERVICE_NAME = "otari-batch-grpc"
INSTRUMENTATION = "otari_batch_grpc"

# The tracer spans are made with; None while tracing is off (the only thing the hot paths look at).
tracer: trace.Tracer | None = None
_untraced: contextvars.ContextVar[bool] = contextvars.ContextVar("otari_batch_grpc_untraced", default=False)

# OTEL_TRACES_EXPORTER's `otlp` is the gRPC exporter unless OTEL_EXPORTER_OTLP(_TRACES)_PROTOCOL says otherwise,
# as in the SDK's own auto-configuration.
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http", "http/json": "otlp_proto_http"}


class TracingError(ValueError):
    """The OTEL_* settings ask for something this installation cannot do."""


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* settings in `environ` turn traces on (see the module's docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None and exporters.strip():
        return _exporter_names(exporters) != []
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Start tracing as the OTEL_* settings say, and return the provider (shut it down at exit, to flush); None,
    and nothing imported from the SDK, when they do not ask for traces. Raises TracingError for an exporter that
    is not installed, or when the SDK is not (it comes with the `tracing` extra)."""
    environ = os.environ if environ is None else environ
    if not wanted(environ):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingError(
            "OTEL_* asks for traces, but the OpenTelemetry SDK is not installed: pip install "
            "'otari-batch-grpc[tracing]' (or unset OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_*)"
        ) from None

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    for name in _exporter_names(environ.get("OTEL_TRACES_EXPORTER") or "otlp"):
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, environ)()))
    enable(provider)
    return provider


def enable(provider: trace.TracerProvider) -> None:
    """Trace with `provider` (tests hand one with an in-memory exporter). Not the global provider: that can be set
    once per process, and this service makes every span itself."""
    global tracer
    tracer = provider.get_tracer(INSTRUMENTATION)


def disable() -> None:
    global tracer
    tracer = None


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No spans for gateway requests made inside (the health probe's, every few seconds, would each be a trace)."""
    token = _untraced.set(True)
    try:
        yield
    finally:
        _untraced.reset(token)


def background() -> contextvars.Context:
    """A context for a background task (`asyncio.create_task(..., context=tracing.background())`): no caller's span
    to inherit, and no spans of its own for the gateway requests it makes (a poll every few seconds is no one's call;
    the metrics still count them)."""
    context = contextvars.Context()
    context.run(_untraced.set, True)
    return context


def silenced() -> bool:
    return _untraced.get()


def _exporter_names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip() and name.strip() != "none"]


def _exporter(name: str, environ: Mapping[str, str]) -> type:
    if name == "otlp":
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
        )
        if protocol.strip() not in _OTLP_BY_PROTOCOL:
            raise TracingError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf, got {protocol!r}")
        name = _OTLP_BY_PROTOCOL[protocol.strip()]
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        hint = " (pip install opentelemetry-exporter-otlp-proto-http)" if name == "otlp_proto_http" else ""
        raise TracingError(f"OTEL_TRACES_EXPORTER: no span exporter named {name!r} is installed{hint}")
    exporter: type = next(iter(found)).load()
    return exporter
