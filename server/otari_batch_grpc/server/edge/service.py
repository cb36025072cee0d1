"""BatchService: proto <-> domain adapters that read like the contract. No HTTP, no SQL and no policy here.

Each handler validates its request (the constraints the .proto states), asks the domain (`core`, `feed` and `many` for
what follows batches, `results`, `idempotency`) and shapes the answer. Errors are the domain's; `rpc` turns them into
gRPC statuses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from grpc import aio

from otari_batch_grpc.server.domain.callers import Caller, OwnerHasher
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import FieldViolation, invalid_argument
from otari_batch_grpc.server.domain.idempotency import IdempotentCreates
from otari_batch_grpc.server.domain.parts.requests import InMessage, Requests, Spool, UnknownChunkFields
from otari_batch_grpc.server.domain.results import Message, ResultStreams
from otari_batch_grpc.server.domain.subscriptions.feed import Feed, Subscription
from otari_batch_grpc.server.domain.subscriptions.many import WATCH_MAX_BATCHES, ManyFeed
from otari_batch_grpc.server.edge import validation
from otari_batch_grpc.server.edge.credentials import credential_from_metadata
from otari_batch_grpc.server.edge.limits import Limits
from otari_batch_grpc.server.edge.rpc import OpenStreams, client_stream, server_stream, unary
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

Context = aio.ServicerContext[Any, Any]
pb = batch_service_pb2

WAIT_MAX_SECONDS = 3600.0


class BatchService:
    """The handlers of otari.batch.v1.BatchService (registered by `rpc.register`)."""

    def __init__(
        self,
        *,
        core: Batches,
        feed: Feed,
        many: ManyFeed,
        creates: IdempotentCreates,
        results: ResultStreams,
        owners: OwnerHasher,
        service_key: str | None,
        limits: Limits,
        wait_default_seconds: float,
    ) -> None:
        self.core = core
        self.hub = core.hub
        self.feed = feed
        self.many = many
        self.creates = creates
        self.results = results
        self.owners = owners
        self.service_key = service_key
        self.limits = limits
        self.wait_default_seconds = wait_default_seconds
        self.streams = OpenStreams()

    @unary
    async def CreateBatch(self, request: pb.CreateBatchRequest, context: Context) -> pb.CreateBatchResponse:
        validation.check_create(request)
        caller = self._caller(context)
        self.limits.batch_size(len(request.requests))
        batch = await self._create(InMessage(request), caller, context)
        return pb.CreateBatchResponse(batch=batch)

    @client_stream
    async def UploadBatch(
        self, messages: AsyncIterator[pb.UploadBatchRequest], context: Context
    ) -> pb.UploadBatchResponse:
        caller = self._caller(context)
        await self.core.vouch(caller, time_left=context.time_remaining())  # a key the gateway refuses spools nothing
        with self.limits.spooling(caller.owner) as spooled:
            spool = await _spooled(messages, self.limits, spooled)
            try:
                batch = await self._create(spool, caller, context)
            finally:
                spool.close()
        return pb.UploadBatchResponse(batch=batch)

    async def _create(self, requests: Requests, caller: Caller, context: Context) -> batch_pb2.Batch:
        """A (validated) batch made, its parts counted against the caller's parts in flight while it is."""
        plan = self.core.wholes.plan(requests)
        with self.limits.parts_in_flight(caller.owner, len(plan) if plan else 0):
            return await self.creates.create_from(requests, caller, plan=plan, time_left=context.time_remaining())

    @unary
    async def GetBatch(self, request: pb.GetBatchRequest, context: Context) -> pb.GetBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        caller = self._caller(context)
        provider = await self.core.provider_of(
            caller, request.batch_id, request.provider, time_left=context.time_remaining()
        )
        batch = await self.core.get(caller, request.batch_id, provider, time_left=context.time_remaining())
        return pb.GetBatchResponse(batch=batch)

    @unary
    async def ListBatches(self, request: pb.ListBatchesRequest, context: Context) -> pb.ListBatchesResponse:
        validation.check_list(request)
        caller = self._caller(context)
        listing = await self.core.list(
            caller,
            request.provider,
            page_size=validation.page_size(request.page_size),
            page_token=request.page_token,
            time_left=context.time_remaining(),
        )
        return pb.ListBatchesResponse(
            batches=listing.batches,
            next_page_token=listing.next_page_token,
            incomplete_providers=listing.incomplete_providers,
        )

    @unary
    async def CancelBatch(self, request: pb.CancelBatchRequest, context: Context) -> pb.CancelBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        caller = self._caller(context)
        provider = await self.core.provider_of(
            caller, request.batch_id, request.provider, time_left=context.time_remaining()
        )
        batch = await self.core.cancel(caller, request.batch_id, provider, time_left=context.time_remaining())
        return pb.CancelBatchResponse(batch=batch)

    @server_stream
    async def StreamResults(self, request: pb.StreamResultsRequest, context: Context) -> AsyncIterator[Message]:
        validation.check_batch_ref(request.batch_id, request.provider, start_index=request.start_index)
        caller = self._caller(context)
        self._open_stream(caller, context)
        provider = await self.core.provider_of(
            caller, request.batch_id, request.provider, time_left=context.time_remaining()
        )
        async for message in self.results.stream(
            caller,
            request.batch_id,
            provider,
            start=request.start_index,
            wait=request.wait,
            time_left=context.time_remaining(),
        ):
            yield message

    @server_stream
    async def WatchBatch(self, request: pb.WatchBatchRequest, context: Context) -> AsyncIterator[pb.WatchBatchResponse]:
        validation.check_batch_ref(request.batch_id, request.provider)
        caller = self._caller(context)
        self._open_stream(caller, context)
        subscription = self._subscription(caller, context)
        provider = await self.core.provider_of(
            caller, request.batch_id, request.provider, time_left=context.time_remaining()
        )
        events = self.feed.watch(subscription, request.batch_id, provider, request.resume_token)
        async with contextlib.aclosing(events):
            while True:  # not `async for`: its variable would hold the last event while the stream waits
                try:
                    yield pb.WatchBatchResponse(event=await anext(events))
                except StopAsyncIteration:
                    return

    @server_stream
    async def WatchBatches(
        self, request: pb.WatchBatchesRequest, context: Context
    ) -> AsyncIterator[pb.WatchBatchesResponse]:
        validation.check_watch_many(request.batch_ids, WATCH_MAX_BATCHES)
        caller = self._caller(context)
        self._open_stream(caller, context)
        events = self.many.watch(
            self._subscription(caller, context, many=True), request.batch_ids, request.resume_token
        )
        async with contextlib.aclosing(events):
            while True:  # (as in WatchBatch)
                try:
                    yield pb.WatchBatchesResponse(event=await anext(events))
                except StopAsyncIteration:
                    return

    @unary
    async def WaitBatch(self, request: pb.WaitBatchRequest, context: Context) -> pb.WaitBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        timeout = self.wait_default_seconds
        if request.HasField("timeout"):
            given = request.timeout.seconds + request.timeout.nanos / 1e9
            timeout = validation.wait_timeout(given, WAIT_MAX_SECONDS)
        caller = self._caller(context)
        provider = await self.core.provider_of(
            caller, request.batch_id, request.provider, time_left=context.time_remaining()
        )
        budget = [t for t in (timeout, _margin(context.time_remaining())) if t is not None]
        latest = await self.feed.wait(
            self._subscription(caller, context), request.batch_id, provider, limit=min(budget)
        )
        return pb.WaitBatchResponse(batch=latest.batch, done=latest.terminal)

    # -- helpers ------------------------------------------------------------------------------------------
    def _caller(self, context: Context) -> Caller:
        credential = credential_from_metadata(context.invocation_metadata(), service_key=self.service_key)
        return self.owners.caller(credential.key)

    def _open_stream(self, caller: Caller, context: Context) -> None:
        """Count the call against the caller's limits until it ends, however it ends (RESOURCE_EXHAUSTED past one)."""
        release = self.limits.open_stream(caller.owner)
        context.add_done_callback(lambda _: release())  # type: ignore[arg-type]  # types-grpcio: a class

    def _subscription(self, caller: Caller, context: Context, *, many: bool = False) -> Subscription:
        """The call's hold on the feed, given back when the call ends however it ends (see rpc.server_stream)."""
        subscription = self.feed.subscription(caller, many=many)
        context.add_done_callback(lambda _: subscription.close())  # type: ignore[arg-type]  # types-grpcio: a class
        return subscription


def _margin(time_left: float | None) -> float | None:
    """Answer a little before the caller's deadline, so it gets the latest state rather than DEADLINE_EXCEEDED."""
    return None if time_left is None else max(0.0, time_left - min(0.25, time_left / 10))


async def _spooled(
    messages: AsyncIterator[pb.UploadBatchRequest], limits: Limits, spooled: Callable[[int], None]
) -> Spool:
    """An upload, checked and spooled as it arrives: the header, then every chunk, to the stream's end. A bad
    message ends it with INVALID_ARGUMENT, and nothing is kept."""
    first = await anext(aiter(messages), None)
    if first is None or first.WhichOneof("item") != "header":
        raise invalid_argument([FieldViolation("header", "is required: the first message of an upload is its header")])
    validation.check_upload_header(first.header)
    spool = Spool(first.header)
    try:
        check = validation.RequestsCheck()
        async for message in messages:
            if message.WhichOneof("item") != "chunk":
                raise invalid_argument(
                    [FieldViolation("chunk", "is required: every message after the header is a chunk of requests")]
                )
            check.chunk(message.chunk.requests)
            limits.batch_size(check.count)
            try:
                await spool.add(message.chunk, admit=spooled)
            except UnknownChunkFields:
                raise invalid_argument(
                    [
                        FieldViolation(
                            "chunk",
                            "carries fields this contract does not have (a client built on an older one, where "
                            "RequestChunk.requests was field 1?): regenerate the stubs from the current .proto",
                        )
                    ]
                ) from None
        if not len(spool):
            raise invalid_argument([FieldViolation("chunk", "at least one request is required; none came")])
        await spool.flush()
    except BaseException:
        spool.close()
        raise
    return spool
