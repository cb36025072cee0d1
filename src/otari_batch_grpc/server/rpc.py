"""What every RPC handler shares: errors become rich gRPC statuses, one log line per call, and open streams
that end with UNAVAILABLE (so clients resume elsewhere) when the server drains."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Concatenate, Protocol, TypeVar

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc import aio
from grpc_status import rpc_status

from otari_batch_grpc.server.errors import ServiceError, from_upstream, internal, shutting_down
from otari_batch_grpc.server.gateway import last_upstream_attempt, last_upstream_status
from otari_batch_grpc.server.upstream import UpstreamError

log = logging.getLogger("otari_batch_grpc.rpc")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
S = TypeVar("S", bound="HasStreams")


class OpenStreams:
    """The server-streaming calls in flight, so a draining server can end them (they never end by themselves)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)

    def discard(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)

    def drain(self) -> None:
        """End every open stream with UNAVAILABLE; new streams are refused the same way."""
        self.draining = True
        for task in list(self._tasks):
            task.cancel()


class HasStreams(Protocol):
    streams: OpenStreams


def _as_service_error(exc: Exception) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, UpstreamError):
        return from_upstream(exc)
    log.exception("unexpected error in handler")
    return internal()


async def abort(context: aio.ServicerContext[Any, Any], error: ServiceError) -> None:
    """End the call with the error's status and its google.rpc details (grpc-status-details-bin)."""
    status = rpc_status.to_status(error.to_status())
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


def grpc_code(error: ServiceError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code.name]


def _log_call(method: str, code: grpc.StatusCode, started: float, peer: str) -> None:
    record = {
        "event": "rpc",
        "method": method,
        "code": code.name,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "upstream_status": last_upstream_status.get(),
        "upstream_attempt_id": last_upstream_attempt.get(),
        "peer": peer,
    }
    log.info(json.dumps(record))


def unary(
    handler: Callable[Concatenate[S, Req, aio.ServicerContext[Req, Resp], ...], Awaitable[Resp]],
) -> Callable[[S, Req, aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
    """Wrap a unary handler: typed errors -> status with details; a log line."""
    method = handler.__name__

    @functools.wraps(handler)
    async def wrapper(self: S, request: Req, context: aio.ServicerContext[Req, Resp]) -> Resp:
        started = time.perf_counter()
        peer = context.peer()  # read now: after a client cancels, the call's peer is gone (grpcio crashes on it)
        last_upstream_status.set(None)
        last_upstream_attempt.set(None)
        code = grpc.StatusCode.OK
        try:
            return await handler(self, request, context)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            error = _as_service_error(exc)
            code = grpc_code(error)
            await abort(context, error)
            raise AssertionError("unreachable: abort raises") from None
        finally:
            _log_call(method, code, started, peer)

    return wrapper


def server_stream(
    handler: Callable[Concatenate[S, Req, aio.ServicerContext[Req, Resp], ...], AsyncIterator[Resp]],
) -> Callable[[S, Req, aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]]:
    """Wrap a server-streaming handler: as `unary`, and the stream ends with UNAVAILABLE when the server drains."""
    method = handler.__name__

    @functools.wraps(handler)
    async def wrapper(self: S, request: Req, context: aio.ServicerContext[Req, Resp]) -> AsyncIterator[Resp]:
        started = time.perf_counter()
        peer = context.peer()  # read now: after a client cancels, the call's peer is gone (grpcio crashes on it)
        last_upstream_status.set(None)
        last_upstream_attempt.set(None)
        code = grpc.StatusCode.OK
        task = asyncio.current_task()
        assert task is not None
        self.streams.add(task)

        # A client that cancels while a message is being written leaves this generator suspended at `yield`
        # (grpcio does not close it), so `finally` below may run late: the call's end is the reliable moment.
        def ended(_: aio.ServicerContext[Req, Resp]) -> None:
            self.streams.discard(task)

        context.add_done_callback(ended)  # type: ignore[arg-type]  # types-grpcio: a class, not a Protocol
        try:
            if self.streams.draining:
                raise shutting_down()
            async for item in handler(self, request, context):
                yield item
        except asyncio.CancelledError:
            if not self.streams.draining:
                code = grpc.StatusCode.CANCELLED  # the client went away: nothing more to send
                raise
            task.uncancel()
            error = shutting_down()
            code = grpc_code(error)
            await abort(context, error)
        except Exception as exc:
            error = _as_service_error(exc)
            code = grpc_code(error)
            await abort(context, error)
        finally:
            self.streams.discard(task)
            _log_call(method, code, started, peer)

    return wrapper


def _send(message: Any) -> bytes:
    """A response serializer that also passes ready bytes through (results served from the cache)."""
    if isinstance(message, bytes):
        return message
    data: bytes = message.SerializeToString()
    return data


def register(server: aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Serve `servicer`'s methods for every RPC of `service`, as the generated add_*_to_server would, except that
    a handler may yield serialized messages (bytes) as well as messages."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        behaviour = getattr(servicer, method.name)
        request_type = message_factory.GetMessageClass(method.input_type)
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                behaviour, request_deserializer=request_type.FromString, response_serializer=_send
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                behaviour, request_deserializer=request_type.FromString, response_serializer=_send
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
