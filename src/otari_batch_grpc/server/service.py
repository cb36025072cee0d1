"""BatchService: thin handlers that read like the contract. No HTTP and no SQL here.

What the service keeps (store): every batch it has seen and which callers the gateway showed it to, so
`provider` can be left out and a terminal batch, whose snapshot and results never change, is served locally, but
only to a caller the gateway authorized for it within the last `owner_trust_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from grpc import aio

from otari_batch_grpc.server import convert, tokens, validation
from otari_batch_grpc.server.auth import Credential, OwnerHasher, credential_from_metadata
from otari_batch_grpc.server.errors import ServiceError
from otari_batch_grpc.server.gateway import GatewayClient, UpstreamHTTPError
from otari_batch_grpc.server.idempotency import IdempotentCreates
from otari_batch_grpc.server.records import seen
from otari_batch_grpc.server.rpc import OpenStreams, server_stream, unary
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.watch import Hub, Observation, Subscriber, Watcher, WatchPolicy
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, batch_service_pb2_grpc, result_pb2, watch_pb2

Context = aio.ServicerContext[Any, Any]
Response = batch_service_pb2.StreamResultsResponse

# A page of ListBatches may take this many gateway calls to fill (the gateway filters pages by owner after the
# provider call, so a short page is not the end).
MAX_LIST_CALLS_PER_PAGE = 5
# Cached results are read from the store this many at a time: memory stays flat whatever the batch size.
RESULTS_PAGE = 500


@dataclass(frozen=True)
class Caller:
    credential: Credential
    owner: str  # keyed hash of the credential

    @property
    def key(self) -> str:
        return self.credential.key


@dataclass(frozen=True, kw_only=True)
class CachePolicy:
    owner_trust_seconds: float
    results_max_bytes: int
    results_max_age: float
    heartbeat_seconds: float = 15.0
    wait_default_seconds: float = 60.0


WAIT_MAX_SECONDS = 3600.0
WATCH_MAX_BATCHES = 1000


class BatchService(batch_service_pb2_grpc.BatchServiceServicer):
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        owners: OwnerHasher,
        policy: CachePolicy,
        service_key: str | None,
        watch: WatchPolicy,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.hub = Hub(gateway=gateway, store=store, policy=watch)
        self.owners = owners
        self.policy = policy
        self.service_key = service_key
        self.creates = IdempotentCreates(gateway=gateway, store=store)
        self.streams = OpenStreams()

    @unary
    async def CreateBatch(
        self, request: batch_service_pb2.CreateBatchRequest, context: Context
    ) -> batch_service_pb2.CreateBatchResponse:
        validation.check_create(request)
        caller = self._caller(context)
        if request.request_id:
            batch = await self.creates.create(
                request, key=caller.key, owner=caller.owner, time_left=context.time_remaining()
            )
            await self._observed(batch, batch.provider, caller)
            return batch_service_pb2.CreateBatchResponse(batch=batch)
        data = await self.gateway.create_batch(
            caller.key, convert.create_body(request), time_left=context.time_remaining()
        )
        batch = convert.batch_from_json(data)
        await self._remember(batch, batch.provider, caller, creator=True)
        return batch_service_pb2.CreateBatchResponse(batch=batch)

    @unary
    async def GetBatch(
        self, request: batch_service_pb2.GetBatchRequest, context: Context
    ) -> batch_service_pb2.GetBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        caller = self._caller(context)
        provider = await self._provider(request.batch_id, request.provider, caller)
        cached = await self._trusted_terminal(request.batch_id, provider, caller)
        batch = cached or await self._fetch(caller, request.batch_id, provider, context)
        return batch_service_pb2.GetBatchResponse(batch=batch)

    @unary
    async def ListBatches(
        self, request: batch_service_pb2.ListBatchesRequest, context: Context
    ) -> batch_service_pb2.ListBatchesResponse:
        validation.check_list(request)
        caller = self._caller(context)
        size = validation.page_size(request.page_size)
        after = tokens.after_of_page_token(request.page_token, request.provider)
        found: list[dict[str, Any]] = []
        exhausted = False
        for _ in range(MAX_LIST_CALLS_PER_PAGE):
            page = await self.gateway.list_batches(
                caller.key, request.provider, after=after, limit=size, time_left=context.time_remaining()
            )
            if not page:
                exhausted = True
                break
            found.extend(page)
            after = page[-1]["id"]
            if len(found) >= size:
                break
        if len(found) > size:
            found = found[:size]
            after = found[-1]["id"]
        batches = [convert.batch_from_json(b) for b in found]
        await self.store.record((seen(b, request.provider) for b in batches), owner=caller.owner)
        for batch in batches:  # a list feeds only what is watched: revisions are for watchers
            if self.hub.interested(batch.id, caller.owner):
                await self._observed(batch, request.provider, caller)
        token = "" if exhausted or after is None else tokens.page_token(after, request.provider)
        return batch_service_pb2.ListBatchesResponse(batches=batches, next_page_token=token)

    @unary
    async def CancelBatch(
        self, request: batch_service_pb2.CancelBatchRequest, context: Context
    ) -> batch_service_pb2.CancelBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        caller = self._caller(context)
        provider = await self._provider(request.batch_id, request.provider, caller)
        finished = await self._trusted_terminal(request.batch_id, provider, caller)
        if finished is not None:
            raise _already_finished(finished)
        try:
            data = await self.gateway.cancel_batch(
                caller.key, request.batch_id, provider, time_left=context.time_remaining()
            )
        except UpstreamHTTPError as exc:
            if exc.status != 502:
                raise
            # The gateway answers 502 for a cancel of a finished batch too: look before blaming the provider.
            batch = await self._fetch(caller, request.batch_id, provider, context)
            if batch.status in convert.TERMINAL_STATUSES:
                raise _already_finished(batch) from None
            raise
        batch = convert.batch_from_json(data)
        await self._remember(batch, provider, caller)
        return batch_service_pb2.CancelBatchResponse(batch=batch)

    @server_stream
    async def StreamResults(
        self, request: batch_service_pb2.StreamResultsRequest, context: Context
    ) -> AsyncIterator[batch_service_pb2.StreamResultsResponse]:
        validation.check_batch_ref(request.batch_id, request.provider, start_index=request.start_index)
        caller = self._caller(context)
        batch_id = request.batch_id
        provider = await self._provider(batch_id, request.provider, caller)
        cached = await self.store.result_count(batch_id) is not None
        if request.wait and not cached:
            await self._wait_terminal(caller, batch_id, provider, context, limit=None)
        if cached:
            if not await self._trusted(batch_id, caller):
                await self._fetch(caller, batch_id, provider, context)  # the gateway authorizes this caller first
            async for item in self._cached_results(batch_id, request.start_index):
                yield item
            return
        results = await self._fetch_results(caller, batch_id, provider, context)
        for index in range(request.start_index, len(results)):
            yield batch_service_pb2.StreamResultsResponse(result=results[index], index=index)

    @server_stream
    async def WatchBatch(
        self, request: batch_service_pb2.WatchBatchRequest, context: Context
    ) -> AsyncIterator[batch_service_pb2.WatchBatchResponse]:
        validation.check_batch_ref(request.batch_id, request.provider)
        batch_id = request.batch_id
        after = tokens.rev_of_resume_token(request.resume_token, batch_id) if request.resume_token else None
        caller = self._caller(context)
        provider = await self._provider(batch_id, request.provider, caller)
        current = await self._fetch_observed(caller, batch_id, provider, context)  # authorizes this caller
        trail = _Trail()
        if after is None:
            yield batch_service_pb2.WatchBatchResponse(event=trail.event(current, watch_pb2.BATCH_EVENT_KIND_SNAPSHOT))
        else:
            missed = await self.hub.replay(batch_id, after)
            if missed is None:
                raise _resume_expired(batch_id)
            trail.seed(missed[0])  # what the caller saw last: the base for previous_status
            for observation in missed[1:]:
                yield batch_service_pb2.WatchBatchResponse(event=trail.event(observation))
        if trail.finished:
            return
        subscriber = self._subscriber(caller, context)
        try:
            await self.hub.join(subscriber, batch_id, provider)
            while not trail.finished:
                news = await subscriber.next(self.policy.heartbeat_seconds)
                if not news:
                    yield batch_service_pb2.WatchBatchResponse(event=trail.heartbeat())
                for observation in news:
                    if observation.rev > trail.rev:
                        yield batch_service_pb2.WatchBatchResponse(event=trail.event(observation))
        finally:
            self.hub.leave(subscriber, [batch_id])

    @server_stream
    async def WatchBatches(
        self, request: batch_service_pb2.WatchBatchesRequest, context: Context
    ) -> AsyncIterator[batch_service_pb2.WatchBatchesResponse]:
        validation.check_watch_many(request.batch_ids, WATCH_MAX_BATCHES)
        caller = self._caller(context)
        subscriber = self._subscriber(caller, context)
        everything = not request.batch_ids
        if everything:
            targets = await self.store.live_batches(caller.owner, WATCH_MAX_BATCHES)
            self.hub.follow_owner(subscriber)
        else:
            targets = [(b, await self._provider(b, "", caller)) for b in dict.fromkeys(request.batch_ids)]
        trails: dict[str, _Trail] = {}
        try:
            for batch_id, provider in targets:
                current = await self._fetch_observed(caller, batch_id, provider, context)
                trail = trails[batch_id] = _Trail()
                yield batch_service_pb2.WatchBatchesResponse(
                    event=trail.event(current, watch_pb2.BATCH_EVENT_KIND_SNAPSHOT)
                )
                if not trail.finished:
                    await self.hub.join(subscriber, batch_id, provider)
            while True:
                news = await subscriber.next(self.policy.heartbeat_seconds)
                for observation in news:
                    batch_id = observation.batch.id
                    trail = trails.setdefault(batch_id, _Trail())
                    if observation.rev <= trail.rev:
                        continue
                    kind = watch_pb2.BATCH_EVENT_KIND_CHANGE if trail.last else watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
                    yield batch_service_pb2.WatchBatchesResponse(event=trail.event(observation, kind))
                    if trail.finished:
                        self.hub.leave(subscriber, [batch_id])
                if not news:
                    yield batch_service_pb2.WatchBatchesResponse(
                        event=watch_pb2.BatchEvent(kind=watch_pb2.BATCH_EVENT_KIND_HEARTBEAT, observed_at=_now())
                    )
        finally:
            self.hub.leave(subscriber)

    @unary
    async def WaitBatch(
        self, request: batch_service_pb2.WaitBatchRequest, context: Context
    ) -> batch_service_pb2.WaitBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        timeout = self.policy.wait_default_seconds
        if request.HasField("timeout"):
            timeout = validation.wait_timeout(request.timeout.ToTimedelta().total_seconds(), WAIT_MAX_SECONDS)
        caller = self._caller(context)
        provider = await self._provider(request.batch_id, request.provider, caller)
        latest = await self._wait_terminal(caller, request.batch_id, provider, context, limit=timeout)
        return batch_service_pb2.WaitBatchResponse(batch=latest.batch, done=latest.terminal)

    # -- helpers ------------------------------------------------------------------------------------------
    def _caller(self, context: Context) -> Caller:
        credential = credential_from_metadata(context.invocation_metadata(), service_key=self.service_key)
        return Caller(credential, self.owners.owner_of(credential))

    def _subscriber(self, caller: Caller, context: Context) -> Subscriber:
        """A watch inbox that leaves the hub when the call ends, however it ends (see rpc.server_stream)."""
        subscriber = Subscriber(Watcher(caller.key, caller.owner))

        def done(_: Context) -> None:
            self.hub.unfollow_owner(subscriber)
            self.hub.leave(subscriber)

        context.add_done_callback(done)  # type: ignore[arg-type]  # types-grpcio: a class, not a Protocol
        return subscriber

    async def _provider(self, batch_id: str, given: str, caller: Caller) -> str:
        if given:
            return given
        known = await self.store.provider_for(batch_id, caller.owner)
        if known is None:
            validation.provider_required(batch_id)
        assert known is not None
        return known

    async def _trusted(self, batch_id: str, caller: Caller) -> bool:
        """Whether the gateway showed this caller the batch recently enough to serve it from the store."""
        verified = await self.store.verified_at(batch_id, caller.owner)
        return verified is not None and time.time() - verified < self.policy.owner_trust_seconds

    async def _trusted_terminal(self, batch_id: str, provider: str, caller: Caller) -> batch_pb2.Batch | None:
        """The stored snapshot of a terminal batch (it never changes), if this caller may have it."""
        record = await self.store.batch(batch_id)
        if record is None or not record.terminal or record.provider.lower() != provider.lower():
            return None
        if not await self._trusted(batch_id, caller):
            return None
        return batch_pb2.Batch.FromString(record.snapshot)

    async def _fetch(self, caller: Caller, batch_id: str, provider: str, context: Context) -> batch_pb2.Batch:
        """The batch from the gateway (which authorizes the caller), recorded."""
        return (await self._fetch_observed(caller, batch_id, provider, context)).batch

    async def _fetch_observed(self, caller: Caller, batch_id: str, provider: str, context: Context) -> Observation:
        data = await self.gateway.get_batch(caller.key, batch_id, provider, time_left=context.time_remaining())
        return await self._remember(convert.batch_from_json(data), provider, caller)

    async def _remember(
        self, batch: batch_pb2.Batch, provider: str, caller: Caller, *, creator: bool = False
    ) -> Observation:
        """A batch the gateway just showed `caller`: into the registry (with the caller's access), then the hub."""
        await self.store.record([seen(batch, provider)], owner=caller.owner, creator=creator)
        return await self._observed(batch, provider, caller)

    async def _observed(self, batch: batch_pb2.Batch, provider: str, caller: Caller) -> Observation:
        """Feed a state the gateway showed `caller` to the watch hub (revisions, subscribers, owner streams)."""
        observation, _ = await self.hub.observe(batch)
        await self.hub.announce(observation, provider, caller.owner)
        return observation

    async def _wait_terminal(
        self, caller: Caller, batch_id: str, provider: str, context: Context, *, limit: float | None
    ) -> Observation:
        """The batch once terminal, or its latest state when `limit` seconds (bounded by the deadline) pass."""
        latest = await self._fetch_observed(caller, batch_id, provider, context)
        if latest.terminal:
            return latest
        budget = [t for t in (limit, _margin(context.time_remaining())) if t is not None]
        deadline = time.monotonic() + min(budget) if budget else None
        subscriber = Subscriber(Watcher(caller.key, caller.owner))
        try:
            await self.hub.join(subscriber, batch_id, provider)
            while not latest.terminal:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                for observation in await subscriber.next(min(left or self.policy.heartbeat_seconds, 3600)):
                    if observation.rev > latest.rev:
                        latest = observation
        finally:
            self.hub.leave(subscriber, [batch_id])
        return latest

    async def _fetch_results(
        self, caller: Caller, batch_id: str, provider: str, context: Context
    ) -> Sequence[result_pb2.BatchResult]:
        """A completed batch's results from the gateway, kept for next time."""
        try:
            items = await self.gateway.batch_results(caller.key, batch_id, provider, time_left=context.time_remaining())
        except UpstreamHTTPError as exc:
            if exc.status != 409:
                raise
            raise _results_not_ready(await self._fetch(caller, batch_id, provider, context)) from None
        batch = await self._fetch(caller, batch_id, provider, context) if not items else None
        if batch is not None and batch.request_counts.total > 0:
            raise _results_missing(batch)
        results = [convert.result_from_json(item) for item in items]
        await self.store.save_results(batch_id, [r.SerializeToString() for r in results])
        await self.store.trim_results(max_bytes=self.policy.results_max_bytes, max_age=self.policy.results_max_age)
        return results

    async def _cached_results(
        self, batch_id: str, start: int
    ) -> AsyncIterator[batch_service_pb2.StreamResultsResponse]:
        while True:
            page = await self.store.results_page(batch_id, start, RESULTS_PAGE)
            for index, item in page:
                yield batch_service_pb2.StreamResultsResponse(
                    result=result_pb2.BatchResult.FromString(item), index=index
                )
            if len(page) < RESULTS_PAGE:
                return
            start = page[-1][0] + 1


def _status_meta(batch: batch_pb2.Batch) -> dict[str, str]:
    return {"batch_id": batch.id, "status": batch.upstream_status or convert.status_name(batch.status)}


def _already_finished(batch: batch_pb2.Batch) -> ServiceError:
    status = _status_meta(batch)["status"]
    return ServiceError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "BATCH_ALREADY_FINISHED",
        f"Batch {batch.id} is already {status}; only a batch that has not finished can be cancelled.",
        _status_meta(batch),
    )


def _results_not_ready(batch: batch_pb2.Batch) -> ServiceError:
    status = _status_meta(batch)["status"]
    if batch.status in convert.TERMINAL_STATUSES:
        message = (
            f"Batch {batch.id} is {status}: the gateway serves results only for completed batches, "
            "so this batch has none to stream (any partial output is not available through the gateway)."
        )
        reason = "BATCH_HAS_NO_RESULTS"
    else:
        message = (
            f"Batch {batch.id} is {status}: results can be streamed once it is completed. Poll GetBatch until then."
        )
        reason = "BATCH_NOT_COMPLETED"
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, reason, message, _status_meta(batch))


def _results_missing(batch: batch_pb2.Batch) -> ServiceError:
    counts = batch.request_counts
    return ServiceError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESULTS_MISSING",
        f"Batch {batch.id} is completed but the gateway returned no results for its {counts.total} requests "
        f"({counts.failed} failed). The gateway reads only the provider's output file, so requests that failed "
        "are not listed.",
        {**_status_meta(batch), "failed": str(counts.failed), "total": str(counts.total)},
    )


def _resume_expired(batch_id: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESUME_TOKEN_EXPIRED",
        f"The resume_token is older than the revisions kept for batch {batch_id}: start over with WatchBatch "
        "without a resume_token (its first event is a snapshot of the current state).",
        {"batch_id": batch_id},
    )


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _margin(time_left: float | None) -> float | None:
    """Answer a little before the caller's deadline, so it gets the latest state rather than DEADLINE_EXCEEDED."""
    return None if time_left is None else max(0.0, time_left - min(0.25, time_left / 10))


class _Trail:
    """What one watch stream has sent for one batch: builds each event with its previous status and token."""

    def __init__(self) -> None:
        self.rev = 0
        self.status: int = batch_pb2.BATCH_STATUS_UNSPECIFIED
        self.last: Observation | None = None

    @property
    def finished(self) -> bool:
        return self.last is not None and self.last.terminal

    def event(self, observation: Observation, kind: int = watch_pb2.BATCH_EVENT_KIND_CHANGE) -> watch_pb2.BatchEvent:
        event = watch_pb2.BatchEvent(
            kind=kind,  # type: ignore[arg-type]
            batch=observation.batch,
            previous_status=self.status,  # type: ignore[arg-type]
            resume_token=tokens.resume_token(observation.batch.id, observation.rev),
        )
        event.observed_at.FromNanoseconds(int(observation.observed_at * 1e9))
        self.seed(observation)
        return event

    def seed(self, observation: Observation) -> None:
        """Start from a state the caller already has (a resumed stream)."""
        self.rev, self.status, self.last = observation.rev, observation.batch.status, observation

    def heartbeat(self) -> watch_pb2.BatchEvent:
        assert self.last is not None
        event = watch_pb2.BatchEvent(
            kind=watch_pb2.BATCH_EVENT_KIND_HEARTBEAT,
            batch=self.last.batch,
            previous_status=self.status,  # type: ignore[arg-type]
            resume_token=tokens.resume_token(self.last.batch.id, self.rev),
            observed_at=_now(),
        )
        return event
