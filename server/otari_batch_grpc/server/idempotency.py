"""CreateBatch exactly once per (caller, request_id) (AIP-155), even when a reply was lost.

A create is claimed in the store before the gateway is called. A retry of a settled claim gets the first batch;
a retry of a claim whose reply never came (timeout, reset, crash) first looks for the batch upstream, by the
request_id and request digest stamped into its metadata (and, with the master key, the user it was made for), and
creates only if it is not there.
"""

from __future__ import annotations

import hashlib
from typing import Any

from otari_batch_grpc.server.core import Batches, Caller, upstream_errors
from otari_batch_grpc.server.errors import Code, ServiceError, from_upstream
from otari_batch_grpc.server.locks import KeyedLocks
from otari_batch_grpc.server.store import Claim
from otari_batch_grpc.server.upstream import UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.validation import GATEWAY_OWNER_KEY, REQUEST_DIGEST_KEY, REQUEST_ID_KEY
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

# How far back the recovery search looks: pages of the caller's newest batches.
RECOVERY_PAGES = 10
RECOVERY_PAGE_SIZE = 100
RECOVERY_RETRY_SECONDS = 30.0
# Answers after which the gateway certainly made no batch (besides every 4xx): the provider or the gateway refused.
NOTHING_CREATED = frozenset({502, 503})
# The gateway's clock and ours may differ this much.
CLOCK_SKEW_SECONDS = 300.0


# How much of the fingerprint is stamped (as hex) beside the request_id: 128 bits.
DIGEST_CHARS = 32


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
    """Creates through the core, claimed in the store first so a retry never makes a second batch."""

    def __init__(self, *, core: Batches) -> None:
        self._core = core
        self._store = core.store
        self._gateway = core.gateway
        self._locks = KeyedLocks()

    async def create(
        self, request: batch_service_pb2.CreateBatchRequest, caller: Caller, *, time_left: float | None
    ) -> batch_pb2.Batch:
        request_id = request.request_id.lower()
        digest = fingerprint(request)
        owner = caller.owner
        async with self._locks.hold((owner, request_id)):
            claim = await self._store.claim(owner, request_id, digest, provider_of_model(request.model))
            if claim.fingerprint != digest:
                raise _reused(request_id, claim.batch_id)
            if claim.batch_id is not None:
                return await self._settled(caller, claim.batch_id, claim.provider, time_left)
            stamp = {REQUEST_ID_KEY: request_id, REQUEST_DIGEST_KEY: digest[:DIGEST_CHARS]}
            if not claim.fresh:
                found = await self._find_upstream(caller, claim, stamp, request.user, time_left)
                if found is not None:
                    batch = await self._core.created(caller, found, claim.provider)
                    await self._store.settle_claim(owner, request_id, batch.id)
                    return batch
            try:
                data = await self._core.create_upstream(caller, request, stamp=stamp, time_left=time_left)
            except UpstreamHTTPError as exc:
                if exc.status in NOTHING_CREATED or 400 <= exc.status < 500:  # refused: nothing was created
                    await self._store.release_claim(owner, request_id)
                raise from_upstream(exc) from None
            except UpstreamError as exc:
                raise from_upstream(exc) from None
            # Entered first, settled second: a crash between leaves an open claim, which a retry resolves by search.
            batch = await self._core.created(caller, data, claim.provider)
            await self._store.settle_claim(owner, request_id, batch.id)
            return batch

    async def _settled(self, caller: Caller, batch_id: str, provider: str, time_left: float | None) -> batch_pb2.Batch:
        record = await self._store.batch(batch_id)
        if record is not None:
            return batch_pb2.Batch.FromString(record.snapshot)
        return (await self._core.fetch(caller, batch_id, provider, time_left=time_left)).batch  # forgotten since

    async def _find_upstream(
        self, caller: Caller, claim: Claim, stamp: dict[str, str], user: str, time_left: float | None
    ) -> dict[str, Any] | None:
        """The batch an earlier attempt made, by what it stamped into its metadata; None when it certainly made
        none. A batch is the one only when its request_id, its request digest and (for a request naming a user, as
        the master key's must) its owner all match: the master key lists every user's batches, and another user may
        have used the same request_id.

        The gateway filters each page by owner after asking the provider and gives no cursor, so an empty page
        is not the end. The search walks back until it passes the claim's time (nothing older can be the one);
        when it cannot get there, the outcome is unknown and the caller is told to retry later: creating again
        could make a second batch.
        """
        after: str | None = None
        for _ in range(RECOVERY_PAGES):
            with upstream_errors():
                page = await self._gateway.list_batches(
                    caller.key, claim.provider, after=after, limit=RECOVERY_PAGE_SIZE, time_left=time_left
                )
            for item in page:
                if _made_by(item, stamp, user):
                    return item
            if not page:
                break
            created = page[-1].get("created_at")
            if isinstance(created, int | float) and created < claim.created_at - CLOCK_SKEW_SECONDS:
                return None  # walked past the first attempt: it made nothing
            after = str(page[-1]["id"])
        raise ServiceError(
            Code.UNAVAILABLE,
            "CREATE_OUTCOME_UNKNOWN",
            f"An earlier CreateBatch with request_id {stamp[REQUEST_ID_KEY]} got no reply, and the gateway's listing "
            "could not show whether it made a batch. Nothing was created now; retry later with the same request_id.",
            {"request_id": stamp[REQUEST_ID_KEY], "provider": claim.provider},
            retry_after=RECOVERY_RETRY_SECONDS,
        )


def _made_by(item: dict[str, Any], stamp: dict[str, str], user: str) -> bool:
    metadata = item.get("metadata")
    if not isinstance(metadata, dict) or metadata.get(REQUEST_ID_KEY) != stamp[REQUEST_ID_KEY]:
        return False
    # A batch made before digests were stamped carries none: its request_id (and user) decide, as they did then.
    digest = metadata.get(REQUEST_DIGEST_KEY)
    if digest is not None and digest != stamp[REQUEST_DIGEST_KEY]:
        return False
    return not user or metadata.get(GATEWAY_OWNER_KEY) == user


def _reused(request_id: str, batch_id: str | None) -> ServiceError:
    metadata = {"request_id": request_id}
    if batch_id:
        metadata["batch_id"] = batch_id
    return ServiceError(
        Code.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
        f"request_id {request_id} was already used for a different CreateBatch request; nothing was created. "
        "Use a new request_id for a new batch, or resend the first request unchanged to get its batch.",
        metadata,
    )
