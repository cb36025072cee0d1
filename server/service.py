"""BatchService: thin handlers that read like the contract. No HTTP and no SQL here.

What the service keeps (store): every batch it has seen and which callers the gateway showed it to, so
`provider` can be left out and a terminal batch, whose snapshot and results never change, is served locally, but
only to a caller the gateway authorized for it within the last `owner_trust_seconds`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from otari.batch.v1 import batch_pb2, batch_service_pb2, batch_service_pb2_grpc, result_pb2

from server import convert, validation
from server.auth import Credential, OwnerHasher, credential_from_metadata
from server.errors import FieldViolation, ServiceError, invalid_argument
from server.gateway import GatewayClient, UpstreamHTTPError
from server.idempotency import IdempotentCreates, seen
from server.rpc import OpenStreams, server_stream, unary
from server.store import Store

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


class BatchService(batch_service_pb2_grpc.BatchServiceServicer):
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        owners: OwnerHasher,
        policy: CachePolicy,
        service_key: str | None,
    ) -> None:
        self.gateway = gateway
        self.store = store
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
            return batch_service_pb2.CreateBatchResponse(batch=batch)
        data = await self.gateway.create_batch(
            caller.key, convert.create_body(request), time_left=context.time_remaining()
        )
        batch = convert.batch_from_json(data)
        await self.store.record([seen(batch, batch.provider)], owner=caller.owner, creator=True)
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
        after = _decode_page_token(request.page_token, request.provider)
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
        token = "" if exhausted or after is None else _encode_page_token(after, request.provider)
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
        await self.store.record([seen(batch, provider)], owner=caller.owner)
        return batch_service_pb2.CancelBatchResponse(batch=batch)

    @server_stream
    async def StreamResults(
        self, request: batch_service_pb2.StreamResultsRequest, context: Context
    ) -> AsyncIterator[batch_service_pb2.StreamResultsResponse]:
        validation.check_batch_ref(request.batch_id, request.provider, start_index=request.start_index)
        caller = self._caller(context)
        batch_id = request.batch_id
        provider = await self._provider(batch_id, request.provider, caller)
        if await self.store.result_count(batch_id) is not None:
            if not await self._trusted(batch_id, caller):
                await self._fetch(caller, batch_id, provider, context)  # the gateway authorizes this caller first
            async for item in self._cached_results(batch_id, request.start_index):
                yield item
            return
        results = await self._fetch_results(caller, batch_id, provider, context)
        for index in range(request.start_index, len(results)):
            yield batch_service_pb2.StreamResultsResponse(result=results[index], index=index)

    # -- helpers ------------------------------------------------------------------------------------------
    def _caller(self, context: Context) -> Caller:
        credential = credential_from_metadata(context.invocation_metadata(), service_key=self.service_key)
        return Caller(credential, self.owners.owner_of(credential))

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
        data = await self.gateway.get_batch(caller.key, batch_id, provider, time_left=context.time_remaining())
        batch = convert.batch_from_json(data)
        await self.store.record([seen(batch, provider)], owner=caller.owner)
        return batch

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


def _encode_page_token(after: str, provider: str) -> str:
    raw = json.dumps({"v": 1, "after": after, "provider": provider}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str, provider: str) -> str | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, token_provider = data["after"], data["provider"]
        if data.get("v") != 1 or not isinstance(after, str) or not isinstance(token_provider, str):
            raise ValueError("bad token")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid_argument(
            [FieldViolation("page_token", "is not a token this service issued; pass next_page_token as given")]
        ) from None
    if token_provider != provider:
        raise invalid_argument(
            [FieldViolation("page_token", f"was issued for provider {token_provider!r}, not {provider!r}")]
        )
    return after
