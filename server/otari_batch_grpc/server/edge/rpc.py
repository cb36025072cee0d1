"""The edge every RPC passes through: the request decoded here (bad bytes are INVALID_ARGUMENT, not grpcio's
UNKNOWN), errors become rich gRPC statuses, one log line, metrics and a trace span per call, and open streams that
end with UNAVAILABLE (so clients resume elsewhere) when the server drains.

Handlers are declared with `@unary`, `@server_stream` or `@client_stream`; `register` serves them, wrapping each in
its edge there, where the method's descriptor (the request's message type) is known. Called directly, a handler is
a plain method.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc import aio
from grpc_status import rpc_status
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import Counter, Histogram

from otari_batch_grpc.server.domain.errors import (
    CALL_DEADLINE_PASSED,
    Code,
    ServiceError,
    as_service_error,
    internal,
    shutting_down,
)
from otari_batch_grpc.server.edge.credentials import credential_from_metadata
from otari_batch_grpc.server.telemetry import metrics, tracing, upstream_answer
from otari_batch_grpc.server.telemetry.logs import Fields

log = logging.getLogger("otari_batch_grpc.rpc")

H = TypeVar("H", bound=Callable[..., Any])
Context = aio.ServicerContext[Any, Any]
Metadata = Collection[tuple[str, str | bytes]]  # what a call's invocation_metadata() holds

Kind = Literal["unary", "server_stream", "client_stream"]
_KIND: dict[Callable[..., Any], Kind] = {}
# Codes that are the server's (or the gateway's) fault: the span is marked as an error (OpenTelemetry's gRPC rule).
_SERVER_FAULTS = frozenset(
    (
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    )
)


# How loud a call's line is: a failure the caller can fix (a bad field, a key the gateway refuses, a batch that is
# not there, a limit) is WARNING; one that is ours or the gateway's is ERROR (the service's codes for those are
# UNAVAILABLE, DEADLINE_EXCEEDED and INTERNAL, and a DEADLINE_EXCEEDED is the gateway's when the service answered it);
# a call that ended well, that the client ended, or that a draining server ended (clients resume) is INFO.
_OURS_OR_THE_GATEWAYS = frozenset((Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL))
_NOT_A_FAILURE = frozenset(("SERVER_SHUTTING_DOWN",))
_THE_CALLERS = frozenset((CALL_DEADLINE_PASSED,))  # a deadline too short for the gateway: the caller's to fix


def log_level(code: grpc.StatusCode, error: ServiceError | None) -> int:
    """The level of a call's one log line, by how it ended (see above)."""
    if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        return logging.INFO
    if error is None:  # the client's deadline passed before the service answered
        return logging.WARNING
    if error.reason in _NOT_A_FAILURE:
        return logging.INFO
    if error.reason in _THE_CALLERS:
        return logging.WARNING
    return logging.ERROR if error.code in _OURS_OR_THE_GATEWAYS else logging.WARNING


class OpenStreams:
    """The server-streaming calls in flight, so a draining server can end them (they never end by themselves)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: asyncio.Task[Any]) -> None:
        if task not in self._tasks:
            self._tasks.add(task)
            metrics.OPEN_STREAMS.inc()

    def discard(self, task: asyncio.Task[Any]) -> None:
        if task in self._tasks:
            self._tasks.discard(task)
            metrics.OPEN_STREAMS.dec()

    def drain(self) -> None:
        """End every open stream with UNAVAILABLE; new streams are refused the same way."""
        self.draining = True
        for task in list(self._tasks):
            task.cancel()


class HasStreams(Protocol):
    streams: OpenStreams


def unary(handler: H) -> H:
    """Declare a unary handler: `register` serves it behind the edge (decoding, errors, log line, metrics, span)."""
    _KIND[handler] = "unary"
    return handler


def server_stream(handler: H) -> H:
    """Declare a server-streaming handler: as `unary`, and the stream ends with UNAVAILABLE when the server drains."""
    _KIND[handler] = "server_stream"
    return handler


def client_stream(handler: H) -> H:
    """Declare a client-streaming handler: as `unary`; it gets the request messages as an async iterator, each
    decoded by the edge (the first is the one the call's log line shows)."""
    _KIND[handler] = "client_stream"
    return handler


def _as_service_error(exc: Exception) -> ServiceError:
    error = as_service_error(exc)
    if error is None:
        log.exception("unexpected error in handler")
        return internal()
    return error


async def abort(context: Context, error: ServiceError) -> None:
    """End the call with the error's status and its google.rpc details (grpc-status-details-bin)."""
    status = rpc_status.to_status(error.to_status())
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


# Seconds of deadline a call may still show when grpc ends it for its deadline (the clocks are read apart).
_DEADLINE_SLACK = 0.05


def _ended_by_client(context: aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """How a call the client ended is counted: DEADLINE_EXCEEDED when its deadline passed (what the client saw),
    CANCELLED when it gave up."""
    left = context.time_remaining()
    return (
        grpc.StatusCode.DEADLINE_EXCEEDED if left is not None and left <= _DEADLINE_SLACK else grpc.StatusCode.CANCELLED
    )


# The log line's `reason` for a call its client ended (no ErrorInfo was sent: the client was gone).
_CLIENT_ENDED = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "CLIENT_DEADLINE_PASSED",
    grpc.StatusCode.CANCELLED: "CLIENT_CANCELLED",
}


def grpc_code(error: ServiceError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code.name]


# -- decoding -----------------------------------------------------------------------------------------------------
# upb's reasons, in words a caller can act on.
_DECODE_REASONS = (
    ("MaxDepth", "messages are nested deeper than protobuf's limit (100 levels)"),
    ("UTF-8", "a string field is not valid UTF-8"),
    ("corrupt", "the bytes are not a serialized message (garbage, truncated, or nested too deep)"),
)


def _malformed(type_name: str, size: int, exc: Exception) -> ServiceError:
    text = str(exc)
    why = next((words for key, words in _DECODE_REASONS if key in text), "the bytes do not parse")
    return ServiceError(
        Code.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        f"The request ({size} bytes) is not a valid {type_name}: {why}.",
        metadata={"message_type": type_name},
    )


# -- one call -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Method:
    """What the edge knows of one RPC, worked out once at registration."""

    name: str  # GetBatch: the `method` label and log field
    span_name: str  # otari.batch.v1.BatchService/GetBatch (OpenTelemetry's name for an RPC span)
    service: str
    type_name: str
    decode: Callable[[bytes], Any]
    batch_id_in_request: bool
    request_id_in_request: bool
    batch_in_response: bool
    seconds: Histogram  # the duration histogram's child for this method
    service_key: str | None

    @classmethod
    def of(cls, method: MethodDescriptor, service_key: str | None) -> _Method:
        request_type = message_factory.GetMessageClass(method.input_type)
        fields = method.input_type.fields_by_name
        return cls(
            name=method.name,
            span_name=f"{method.containing_service.full_name}/{method.name}",
            service=method.containing_service.full_name,
            type_name=method.input_type.full_name,
            decode=request_type.FromString,
            batch_id_in_request="batch_id" in fields,
            request_id_in_request="request_id" in fields,
            batch_in_response="batch_id" not in fields and "batch" in method.output_type.fields_by_name,
            seconds=metrics.RPC_SECONDS.labels(method.name),
            service_key=service_key,
        )


_counts: dict[tuple[str, grpc.StatusCode], Counter] = {}


class _Call:
    """A call's bookkeeping from its start to its one log line, its metrics and the end of its span."""

    __slots__ = ("code", "error", "metadata", "method", "peer", "request", "response", "span", "started")

    def __init__(self, method: _Method, context: Context) -> None:
        self.started = time.perf_counter()
        self.method = method
        self.peer = context.peer()  # read now: after a client cancels, the call's peer is gone (grpcio crashes on it)
        self.metadata: Metadata = context.invocation_metadata() or ()
        self.code = grpc.StatusCode.OK
        self.error: ServiceError | None = None  # what the call was answered with, when not OK
        self.request: Any = None
        self.response: Any = None
        self.span: trace.Span | None = None
        upstream_answer.forget()
        tracer = tracing.tracer
        if tracer is not None:
            self.span = _server_span(tracer, method, self.metadata)

    def fail(self, exc: Exception) -> ServiceError:
        error = _as_service_error(exc)
        self.code, self.error = grpc_code(error), error
        if self.span is not None and self.code in _SERVER_FAULTS:
            self.span.record_exception(exc)
        return error

    def finish(self) -> None:
        method, code = self.method, self.code
        seconds = time.perf_counter() - self.started
        method.seconds.observe(seconds)
        count = _counts.get((method.name, code))
        if count is None:
            count = _counts[(method.name, code)] = metrics.RPCS.labels(method.name, code.name)
        count.inc()
        trace_id = None
        if self.span is not None:
            trace_id = _end_span(self.span, code)
        level = log_level(code, self.error)
        if log.isEnabledFor(level):
            log.log(level, self._fields(seconds, trace_id))

    def _fields(self, seconds: float, trace_id: str | None) -> Fields:
        method, request = self.method, self.request
        fields = Fields(event="rpc", method=method.name, code=self.code.name, duration_ms=round(seconds * 1000, 2))
        if self.error is not None:  # why: the ErrorInfo reason, and the first bad field's path (never its value)
            fields["reason"] = self.error.reason
            if self.error.violations:
                fields["field"] = self.error.violations[0].field[:200]
        elif (ended := _CLIENT_ENDED.get(self.code)) is not None:
            fields["reason"] = ended
        batch_id = ""
        if request is not None and method.batch_id_in_request:
            batch_id = request.batch_id[:200]  # a caller's value: bounded
        elif method.batch_in_response and self.response is not None and not isinstance(self.response, bytes):
            batch_id = self.response.batch.id  # CreateBatch: the batch it made
        if batch_id:
            fields["batch_id"] = batch_id
        if request is not None and method.request_id_in_request and request.request_id:
            fields["request_id"] = request.request_id[:200]
        if trace_id is not None:
            fields["trace_id"] = trace_id
        if (status := upstream_answer.last_status.get()) is not None:
            fields["upstream_status"] = status
        if (attempt := upstream_answer.last_attempt.get()) is not None:
            fields["upstream_attempt_id"] = attempt
        fields["peer"] = self.peer
        if (owner := owner_tag(self.metadata, service_key=method.service_key)) is not None:
            fields["owner"] = owner
        return fields


def owner_tag(metadata: Metadata, *, service_key: str | None) -> str | None:
    """A short tag of the caller's key for log lines (the first 8 hex digits of its SHA-256: it tells callers apart
    and finds one caller's lines, and reveals nothing of the key); None when the call carries no usable key."""
    try:
        credential = credential_from_metadata(metadata, service_key=service_key)
    except ServiceError:
        return None
    return hashlib.sha256(credential.key.encode()).hexdigest()[:8]


def _server_span(tracer: trace.Tracer, method: _Method, metadata: Metadata) -> trace.Span:
    """The call's server span, a child of the caller's `traceparent`, made current for the call's task (each call
    runs in a task of its own, so it is never detached: like the upstream context variables above)."""
    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    span = tracer.start_span(
        method.span_name,
        context=propagate.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": method.service, "rpc.method": method.name},
    )
    otel_context.attach(trace.set_span_in_context(span))
    return span


def _end_span(span: trace.Span, code: grpc.StatusCode) -> str | None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_FAULTS:
        span.set_status(trace.StatusCode.ERROR, code.name)
    span.end()
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


# -- the edges ----------------------------------------------------------------------------------------------------
def _unary_edge(
    behaviour: Callable[[Any, Context], Awaitable[Any]], method: _Method
) -> Callable[[bytes, Context], Awaitable[Any]]:
    async def edge(raw: bytes, context: Context) -> Any:
        call = _Call(method, context)

        async def answer() -> Any:
            call.request = _decoded(method, raw)
            return await behaviour(call.request, context)

        return await _answered(call, context, answer)

    return edge


def _client_stream_edge(
    behaviour: Callable[[AsyncIterator[Any], Context], Awaitable[Any]], method: _Method
) -> Callable[[AsyncIterator[bytes], Context], Awaitable[Any]]:
    async def edge(raw_messages: AsyncIterator[bytes], context: Context) -> Any:
        call = _Call(method, context)

        async def decoded() -> AsyncIterator[Any]:
            async for raw in raw_messages:
                message = _decoded(method, raw)
                if call.request is None:
                    call.request = message
                yield message

        return await _answered(call, context, lambda: behaviour(decoded(), context))

    return edge


def _decoded(method: _Method, raw: bytes) -> Any:
    """A request message from its bytes; bytes that are none are INVALID_ARGUMENT (MALFORMED_REQUEST)."""
    try:
        return method.decode(raw)
    except Exception as exc:
        raise _malformed(method.type_name, len(raw), exc) from None


async def _answered(call: _Call, context: Context, answer: Callable[[], Awaitable[Any]]) -> Any:
    """The one answer of a call (to one request, or a stream of them): an error as the call's status, the call's
    line written at its end."""
    try:
        call.response = await answer()
        return call.response
    except asyncio.CancelledError:
        call.code = _ended_by_client(context)
        raise
    except Exception as exc:
        await abort(context, call.fail(exc))
        raise AssertionError("unreachable: abort raises") from None
    finally:
        call.finish()


def _stream_edge(
    behaviour: Callable[[Any, Context], AsyncIterator[Any]], method: _Method, streams: OpenStreams
) -> Callable[[bytes, Context], AsyncIterator[Any]]:
    async def edge(raw: bytes, context: Context) -> AsyncIterator[Any]:
        call = _Call(method, context)
        task = asyncio.current_task()
        assert task is not None
        streams.add(task)

        # A client that cancels while a message is being written leaves this generator suspended at `yield`
        # (grpcio does not close it), so `finally` below may run late: the call's end is the reliable moment.
        def ended(_: Context) -> None:
            streams.discard(task)

        context.add_done_callback(ended)  # type: ignore[arg-type]  # types-grpcio: a class, not a Protocol
        try:
            if streams.draining:
                raise shutting_down()
            call.request = _decoded(method, raw)
            async for item in behaviour(call.request, context):
                data, item = _send(item), None  # serialized now: an idle stream holds no message, only its bytes
                yield data
        except asyncio.CancelledError:
            if not streams.draining:
                call.code = _ended_by_client(context)  # the client went away: nothing more to send
                raise
            task.uncancel()
            await abort(context, call.fail(shutting_down()))
        except Exception as exc:
            await abort(context, call.fail(exc))
        finally:
            streams.discard(task)
            call.finish()

    return edge


def _send(message: Any) -> bytes:
    """A response serializer that also passes ready bytes through (results served from the cache)."""
    if isinstance(message, bytes):
        return message
    data: bytes = message.SerializeToString()
    return data


def register(server: aio.Server, servicer: HasStreams, service: ServiceDescriptor) -> None:
    """Serve `servicer`'s methods for every RPC of `service`, as the generated add_*_to_server would, except that
    requests arrive as bytes and are decoded by the edge (so bad bytes get INVALID_ARGUMENT and a log line), and a
    handler may yield serialized messages (bytes) as well as messages."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    service_key: str | None = getattr(servicer, "service_key", None)
    for descriptor in service.methods:
        behaviour = getattr(servicer, descriptor.name)
        kind = _KIND.get(getattr(behaviour, "__func__", behaviour))
        expected: Kind = "server_stream" if descriptor.server_streaming else "unary"
        if descriptor.client_streaming:
            expected = "client_stream"
        if kind != expected or (descriptor.client_streaming and descriptor.server_streaming):
            raise TypeError(f"{type(servicer).__name__}.{descriptor.name} must be declared @{expected}")
        method = _Method.of(descriptor, service_key)
        if descriptor.client_streaming:
            handlers[descriptor.name] = grpc.stream_unary_rpc_method_handler(
                _client_stream_edge(behaviour, method), response_serializer=_send
            )
        elif descriptor.server_streaming:
            handlers[descriptor.name] = grpc.unary_stream_rpc_method_handler(
                _stream_edge(behaviour, method, servicer.streams), response_serializer=_send
            )
        else:
            handlers[descriptor.name] = grpc.unary_unary_rpc_method_handler(
                _unary_edge(behaviour, method), response_serializer=_send
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
