"""CreateBatch exactly once per (caller, request_id) (AIP-155), even when a reply was lost.

A create is claimed in the store before the gateway is called. A retry of a settled claim gets the first batch;
a retry of a claim whose reply never came (timeout, reset, crash) first looks for the batch upstream, by the
request_id stamped into its metadata, and creates only if it is not there.
"""

from __future__ import annotations

import hashlib

import grpc

from otari_batch_grpc.server import convert
from otari_batch_grpc.server.errors import ServiceError
from otari_batch_grpc.server.gateway import GatewayClient, UpstreamHTTPError
from otari_batch_grpc.server.locks import KeyedLocks
from otari_batch_grpc.server.records import seen
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.validation import REQUEST_ID_KEY
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

# How far back the recovery search looks: pages of the caller's newest batches.
RECOVERY_PAGES = 10
RECOVERY_PAGE_SIZE = 100


def fingerprint(request: batch_service_pb2.CreateBatchRequest) -> str:
    """A hash of everything in the request but its request_id."""
    copy = batch_service_pb2.CreateBatchRequest()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def provider_of_model(model: str) -> str:
    for sep in (":", "/"):
        provider, found, _ = model.partition(sep)
        if found:
            return provider
    return model


class IdempotentCreates:
    def __init__(self, *, gateway: GatewayClient, store: Store) -> None:
        self._gateway = gateway
        self._store = store
        self._locks = KeyedLocks()

    async def create(
        self,
        request: batch_service_pb2.CreateBatchRequest,
        *,
        key: str,
        owner: str,
        time_left: float | None,
    ) -> batch_pb2.Batch:
        request_id = request.request_id.lower()
        digest = fingerprint(request)
        async with self._locks.hold((owner, request_id)):
            claim = await self._store.claim(owner, request_id, digest, provider_of_model(request.model))
            if claim.fingerprint != digest:
                raise _reused(request_id, claim.batch_id)
            if claim.batch_id is not None:
                record = await self._store.batch(claim.batch_id)
                assert record is not None, "a settled claim always has its batch recorded"
                return batch_pb2.Batch.FromString(record.snapshot)
            if not claim.fresh:
                found = await self._find_upstream(key, claim.provider, request_id, time_left)
                if found is not None:
                    await self._store.settle_claim(owner, request_id, seen(found, found.provider or claim.provider))
                    return found
            body = convert.create_body(request)
            body["metadata"] = {**body.get("metadata", {}), REQUEST_ID_KEY: request_id}
            try:
                data = await self._gateway.create_batch(key, body, time_left=time_left)
            except UpstreamHTTPError as exc:
                if 400 <= exc.status < 500:  # refused: certainly nothing was created
                    await self._store.release_claim(owner, request_id)
                raise
            batch = convert.batch_from_json(data)
            await self._store.settle_claim(owner, request_id, seen(batch, batch.provider or claim.provider))
            return batch

    async def _find_upstream(
        self, key: str, provider: str, request_id: str, time_left: float | None
    ) -> batch_pb2.Batch | None:
        after: str | None = None
        for _ in range(RECOVERY_PAGES):
            page = await self._gateway.list_batches(
                key, provider, after=after, limit=RECOVERY_PAGE_SIZE, time_left=time_left
            )
            for item in page:
                metadata = item.get("metadata")
                if isinstance(metadata, dict) and metadata.get(REQUEST_ID_KEY) == request_id:
                    return convert.batch_from_json(item)
            if not page:
                return None
            after = page[-1]["id"]
        return None


def _reused(request_id: str, batch_id: str | None) -> ServiceError:
    metadata = {"request_id": request_id}
    if batch_id:
        metadata["batch_id"] = batch_id
    return ServiceError(
        grpc.StatusCode.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
        f"request_id {request_id} was already used for a different CreateBatch request; nothing was created. "
        "Use a new request_id for a new batch, or resend the first request unchanged to get its batch.",
        metadata,
    )
