"""BatchService: proto <-> domain adapters that read like the contract. No HTTP, no SQL and no policy here.

Each handler validates its request (the constraints the .proto states), asks the domain core (`core`, `results`,
`idempotency`) and shapes the answer. Errors are the domain's; `rpc` turns them into gRPC statuses.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from google.protobuf import timestamp_pb2
from grpc import aio

from otari_batch_grpc.server import tokens, validation
from otari_batch_grpc.server.auth import OwnerHasher, credential_from_metadata
from otari_batch_grpc.server.core import Batches, Caller, CorePolicy, upstream_errors
from otari_batch_grpc.server.errors import Code, FieldViolation, ServiceError, invalid_argument
from otari_batch_grpc.server.gateway import GatewayClient
from otari_batch_grpc.server.idempotency import IdempotentCreates
from otari_batch_grpc.server.limits import LimitPolicy, Limits
from otari_batch_grpc.server.records import Observation, same_state
from otari_batch_grpc.server.results import Message, ResultsPolicy, ResultStreams
from otari_batch_grpc.server.rpc import OpenStreams, server_stream, unary
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.watch import ACCESS_LOST, Problem, Subscriber, WatchPolicy
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, watch_pb2

Context = aio.ServicerContext[Any, Any]
pb = batch_service_pb2

WAIT_MAX_SECONDS = 3600.0
WATCH_MAX_BATCHES = 1000
SNAPSHOT = watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
CHANGE = watch_pb2.BATCH_EVENT_KIND_CHANGE
HEARTBEAT = watch_pb2.BATCH_EVENT_KIND_HEARTBEAT
UNAVAILABLE = watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE
REMOVED = watch_pb2.BATCH_EVENT_KIND_REMOVED


class BatchService:
    """The handlers of otari.batch.v1.BatchService (registered by `rpc.register`)."""

    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        owners: OwnerHasher,
        core: CorePolicy,
        results: ResultsPolicy,
        watch: WatchPolicy,
        service_key: str | None,
        limits: Limits | None = None,
        heartbeat_seconds: float = 15.0,
        wait_default_seconds: float = 60.0,
    ) -> None:
        self.core = Batches(gateway=gateway, store=store, policy=core, watch=watch)
        self.hub = self.core.hub
        self.store = store
        self.owners = owners
        self.service_key = service_key
        self.heartbeat_seconds = heartbeat_seconds
        self.wait_default_seconds = wait_default_seconds
        self.creates = IdempotentCreates(core=self.core, attempt_seconds=gateway.timeout)
        self.results = ResultStreams(self.core, results)
        self.streams = OpenStreams()
        self.limits = limits or Limits(LimitPolicy())

    @unary
    async def CreateBatch(self, request: pb.CreateBatchRequest, context: Context) -> pb.CreateBatchResponse:
        validation.check_create(request)
        caller = self._caller(context)
        if request.request_id:
            batch = await self.creates.create(request, caller, time_left=context.time_remaining())
            return pb.CreateBatchResponse(batch=batch)
        with upstream_errors():
            data = await self.core.create_upstream(caller, request, time_left=context.time_remaining())
        batch = await self.core.created(caller, data, "")
        return pb.CreateBatchResponse(batch=batch)

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
        batch_id = request.batch_id
        after = tokens.rev_of_resume_token(request.resume_token, batch_id) if request.resume_token else None
        caller = self._caller(context)
        self._open_stream(caller, context)
        self.hub.make_room(caller.owner, 1)
        provider = await self.core.provider_of(caller, batch_id, request.provider, time_left=context.time_remaining())
        current = await self.core.fetch(caller, batch_id, provider, time_left=context.time_remaining())
        trail = _Trail()
        missed = [] if after is None else await self._replay(batch_id, after)
        subscriber = self._subscriber(caller, context)
        try:
            if not current.terminal:  # joined before anything is sent: nothing is missed while a send waits
                self.hub.join(subscriber, batch_id, provider, current)
            replayed = False
            if missed:
                trail.seed(missed[0])  # what the caller saw last: the base for previous_status
                for observation in missed[1:]:
                    if not trail.repeats(observation):  # two replicas saved the same state: the caller has it
                        replayed = True
                        yield pb.WatchBatchResponse(event=trail.event(observation))
            if not replayed:  # a new watch, or a resume that missed nothing new: the state now
                yield pb.WatchBatchResponse(event=trail.event(_newer(current, trail.last), SNAPSHOT))
            while not trail.finished:
                news = await subscriber.next(self.heartbeat_seconds)
                if not news:
                    yield pb.WatchBatchResponse(event=_heartbeat(trail.token))
                for item in news:
                    if isinstance(item, Observation) and item.rev > trail.rev:
                        if trail.repeats(item):  # a revision of the same state (two replicas saw it): no news
                            continue
                        yield pb.WatchBatchResponse(event=trail.event(item))
        finally:
            self.hub.leave(subscriber, [batch_id])

    @server_stream
    async def WatchBatches(
        self, request: pb.WatchBatchesRequest, context: Context
    ) -> AsyncIterator[pb.WatchBatchesResponse]:
        validation.check_watch_many(request.batch_ids, WATCH_MAX_BATCHES)
        caller = self._caller(context)
        ids = list(dict.fromkeys(request.batch_ids))
        after = tokens.seq_of_many_resume_token(request.resume_token, ids) if request.resume_token else None
        subscriber = self._subscriber(caller, context, many=True)
        opened = time.time()
        if ids:
            targets = await self._known(caller, ids)
        else:
            await self.core.vouch(caller, time_left=None)  # a wrong key follows nothing: say so, not silence
            self.hub.follow_owner(subscriber)
            targets = await self.store.live_batches(caller.owner, WATCH_MAX_BATCHES)
            if after is not None:  # and those that changed (finished, say) while the caller was away
                changed = await self.store.changed_since(caller.owner, after, WATCH_MAX_BATCHES)
                targets = list(dict.fromkeys([*changed, *targets]))[:WATCH_MAX_BATCHES]
        self._open_stream(caller, context)
        self.hub.make_room(caller.owner, len(targets))  # all of them at once, or none
        # Every event sent while the batches are first fetched carries the position before them: a resume from it
        # sends each batch again (a snapshot, or its change), so none is lost however early the stream breaks.
        stream = _ManyTrail(ids, max(after or 0, await self.store.last_seq()))
        shown = False
        try:
            for batch_id, provider in targets:
                try:
                    current = await self.core.fetch(caller, batch_id, provider, time_left=None)
                except ServiceError as error:
                    yield pb.WatchBatchesResponse(event=await self._trouble(caller, stream, batch_id, error))
                    shown = True
                    continue
                trail = stream.trail(batch_id)
                if not current.terminal:  # joined first: nothing is missed while the event below waits to be sent
                    self.hub.join(subscriber, batch_id, provider, current)
                kind = SNAPSHOT  # new to the caller, or as they last saw it
                if after is not None and current.seq > after:  # it moved on while the caller was away
                    before = await self.store.revision_at_or_before(batch_id, after)
                    if before is not None:  # (else it is new to them: made, or first shown, since)
                        trail.seed(Observation.of(before))
                        if not trail.repeats(current):  # else two replicas saved the same state: they have it
                            kind = CHANGE
                if kind == SNAPSHOT and current.terminal and not ids and after is None:
                    continue  # finished before the stream opened (the registry had not seen it end): not live
                yield pb.WatchBatchesResponse(event=trail.event(current, kind, stream.token))
                shown = True
            if not shown:
                yield pb.WatchBatchesResponse(event=_heartbeat(stream.token))  # open, with nothing yet to show

            while True:
                news = await subscriber.next(self.heartbeat_seconds)
                if not news:
                    yield pb.WatchBatchesResponse(event=_heartbeat(stream.token))
                for item in news:
                    if isinstance(item, Problem):
                        yield pb.WatchBatchesResponse(event=stream.problem(item))
                        if item.removed:
                            self.hub.leave(subscriber, [item.batch_id])
                        continue
                    trail = stream.trail(item.batch_id)
                    if item.rev <= trail.rev:
                        continue
                    stream.advance(item.seq)
                    if trail.repeats(item):  # a revision of the same state (two replicas saw it): no news
                        continue
                    kind = CHANGE if trail.last is not None else SNAPSHOT
                    if kind == SNAPSHOT and item.terminal and item.batch.created_at.seconds < opened - 1:
                        continue  # a batch that existed, finished, when the stream opened (a listing showed it)
                    yield pb.WatchBatchesResponse(event=trail.event(item, kind, stream.token))
                    if trail.finished:
                        self.hub.leave(subscriber, [item.batch_id])
        finally:
            self.hub.leave(subscriber)

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
        latest = await self.core.wait(
            caller, request.batch_id, provider, limit=min(budget), time_left=context.time_remaining()
        )
        return pb.WaitBatchResponse(batch=latest.batch, done=latest.terminal)

    # -- helpers ------------------------------------------------------------------------------------------
    def _caller(self, context: Context) -> Caller:
        credential = credential_from_metadata(context.invocation_metadata(), service_key=self.service_key)
        return Caller(credential.key, self.owners.owner_of(credential))

    def _open_stream(self, caller: Caller, context: Context) -> None:
        """Count the call against the caller's limits until it ends, however it ends (RESOURCE_EXHAUSTED past one)."""
        release = self.limits.open_stream(caller.owner)
        context.add_done_callback(lambda _: release())  # type: ignore[arg-type]  # types-grpcio: a class

    def _subscriber(self, caller: Caller, context: Context, *, many: bool = False) -> Subscriber:
        """A watch inbox that leaves the hub when the call ends, however it ends (see rpc.server_stream)."""
        subscriber = Subscriber(caller.watcher, many=many)

        def done(_: Context) -> None:
            self.hub.unfollow_owner(subscriber)
            self.hub.leave(subscriber)

        context.add_done_callback(done)  # type: ignore[arg-type]  # types-grpcio: a class, not a Protocol
        return subscriber

    async def _replay(self, batch_id: str, rev: int) -> list[Observation]:
        """Revision `rev` (what the caller last saw) and every one after it."""
        revisions = await self.store.revisions_after(batch_id, rev - 1)
        if not revisions or revisions[0].rev != rev:
            raise _resume_expired(batch_id)
        return [Observation.of(r) for r in revisions]

    async def _known(self, caller: Caller, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(id, provider) of each batch asked for; all of them must be batches this caller was shown."""
        found: list[tuple[str, str]] = []
        unknown: list[FieldViolation] = []
        for index, batch_id in enumerate(ids):
            provider = await self.store.provider_for(batch_id, caller.owner)
            if provider is None:
                unknown.append(
                    FieldViolation(
                        f"batch_ids[{index}]",
                        f"batch {batch_id} has not been shown to you through this service: get, list or create it "
                        "here first (WatchBatches has no provider to ask the gateway with)",
                    )
                )
            else:
                found.append((batch_id, provider))
        if unknown:
            raise invalid_argument(unknown)
        return found

    async def _trouble(
        self, caller: Caller, stream: _ManyTrail, batch_id: str, error: ServiceError
    ) -> watch_pb2.BatchEvent:
        """A batch of a many-batch stream that could not be fetched: report it, and forget what is gone."""
        record = await self.store.batch(batch_id)
        last = batch_pb2.Batch.FromString(record.snapshot) if record is not None else None
        removed = error.code in ACCESS_LOST
        if removed:
            await self.store.revoke(batch_id, caller.owner)
        observation = None
        if last is not None:
            observation = Observation(last, 0, record.last_seen if record else 0.0)
        return stream.problem(Problem(batch_id, error, removed=removed, last=observation))


def _resume_expired(batch_id: str) -> ServiceError:
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "RESUME_TOKEN_EXPIRED",
        f"The resume_token names a revision of batch {batch_id} this service does not hold (older than the "
        "revisions kept, or from before its state was reset): start over with WatchBatch without a resume_token "
        "(its first event is a snapshot of the current state).",
        {"batch_id": batch_id},
    )


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _heartbeat(token: str) -> watch_pb2.BatchEvent:
    """The same on every watch stream: no batch, the time, and the token of the last event."""
    return watch_pb2.BatchEvent(kind=HEARTBEAT, observed_at=_now(), resume_token=token)


def _margin(time_left: float | None) -> float | None:
    """Answer a little before the caller's deadline, so it gets the latest state rather than DEADLINE_EXCEEDED."""
    return None if time_left is None else max(0.0, time_left - min(0.25, time_left / 10))


def _newer(current: Observation, last: Observation | None) -> Observation:
    """The later of the state fetched now and the newest revision replayed."""
    return current if last is None or current.rev >= last.rev else last


class _Trail:
    """What one watch stream has sent for one batch: builds each event with its previous status and token."""

    def __init__(self) -> None:
        self.rev = 0
        self.status: int = batch_pb2.BATCH_STATUS_UNSPECIFIED
        self.last: Observation | None = None
        self.token = ""

    @property
    def finished(self) -> bool:
        return self.last is not None and self.last.terminal

    def event(self, observation: Observation, kind: int = CHANGE, token: str | None = None) -> watch_pb2.BatchEvent:
        previous = self.status if kind != SNAPSHOT else batch_pb2.BATCH_STATUS_UNSPECIFIED
        self.token = token if token is not None else tokens.resume_token(observation.batch_id, observation.rev)
        event = watch_pb2.BatchEvent(
            kind=kind,  # type: ignore[arg-type]
            batch=observation.batch,
            previous_status=previous,  # type: ignore[arg-type]
            resume_token=self.token,
        )
        event.observed_at.FromNanoseconds(int(observation.observed_at * 1e9))
        self.seed(observation)
        return event

    def repeats(self, observation: Observation) -> bool:
        """Whether a newer revision shows the state last sent: then it is the base (and the token) from now on,
        and nothing is sent."""
        if self.last is None or not same_state(self.last.batch, observation.batch):
            return False
        self.seed(observation)
        self.token = tokens.resume_token(observation.batch_id, observation.rev)
        return True

    def seed(self, observation: Observation) -> None:
        """Take a state the caller has (sent, or seen before a resume) as the base for the next change."""
        self.rev, self.status, self.last = observation.rev, observation.batch.status, observation


class _ManyTrail:
    """A WatchBatches stream: a trail per batch, and the stream's position (every revision up to it delivered)."""

    def __init__(self, ids: Sequence[str], seq: int) -> None:
        self._ids = ids
        self._seq = seq
        self._trails: dict[str, _Trail] = {}

    @property
    def token(self) -> str:
        return tokens.many_resume_token(self._seq, self._ids)

    def advance(self, seq: int) -> None:
        self._seq = max(self._seq, seq)

    def trail(self, batch_id: str) -> _Trail:
        return self._trails.setdefault(batch_id, _Trail())

    def problem(self, problem: Problem) -> watch_pb2.BatchEvent:
        event = watch_pb2.BatchEvent(
            kind=REMOVED if problem.removed else UNAVAILABLE,
            observed_at=_now(),
            resume_token=self.token,
            problem=watch_pb2.BatchProblem(
                code=problem.error.code.name, reason=problem.error.reason, message=problem.error.message
            ),
        )
        if problem.last is not None:
            event.batch.CopyFrom(problem.last.batch)
        else:
            event.batch.id = problem.batch_id
        return event
