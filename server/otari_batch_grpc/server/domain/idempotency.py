"""CreateBatch exactly once per (caller, request_id) (AIP-155), across replicas, even when a reply was lost.

A create attempt claims (caller, request_id) in the store before it calls the gateway, and holds the claim until a
deadline it sets itself: its own time limit (the caller's deadline, at most UPSTREAM_TIMEOUT) plus a grace. An
attempt never sends after that limit (it runs under it, on its own clock), so a claim within its deadline is an
attempt that may be running (on this replica or another) and a claim past it, with no batch, one that is over
without a reply (it timed out, or its process died). So:
- a retry that finds a batch gets it;
- a retry that finds a running attempt waits for it, within its own deadline, and gets the same batch; when its
  deadline would pass first, it gets UNAVAILABLE with RetryInfo: it never creates beside a running attempt;
- a retry that finds an attempt over without a reply takes the claim and first looks for the batch upstream, by
  the request_id and request digest stamped into its metadata (and, with the master key, the user it was made
  for), and creates only when it is certainly not there.
Liveness is a deadline, not a heartbeat, so a replica that pauses (a long GC, a stalled connection) does not look
dead while it may still send: its claim outlives its own limit, whatever it does meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from typing import Any

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import Code, ServiceError, from_upstream, upstream_errors
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from otari_batch_grpc.server.store import Claim, Store
from otari_batch_grpc.server.util.stamps import GATEWAY_OWNER_KEY, request_stamp, stamped_request
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

# How far back the recovery search looks: pages of the caller's newest batches.
RECOVERY_PAGES = 10
RECOVERY_PAGE_SIZE = 100
RECOVERY_RETRY_SECONDS = 30.0
# The gateway's clock and ours may differ this much.
CLOCK_SKEW_SECONDS = 300.0
# A claim outlives its attempt's own limit by this much: for a create the gateway got just before the attempt gave up
# (or died) to be listed before another attempt looks for it, and for the clocks of replicas and database to differ.
ATTEMPT_GRACE_SECONDS = 10.0
# A retry waiting for a running attempt looks again after these pauses (growing), and gives up this long before its
# own deadline, so that it answers UNAVAILABLE rather than DEADLINE_EXCEEDED.
WAIT_FIRST_SECONDS = 0.05
WAIT_MAX_SECONDS = 0.5
WAIT_MARGIN_SECONDS = 0.1


# How much of the fingerprint is stamped (as hex) beside the request_id: 128 bits.
DIGEST_CHARS = 32


def fingerprint(request: batch_service_pb2.CreateBatchRequest) -> str:
    """A hash of everything in the request but its request_id."""
    copy = batch_service_pb2.CreateBatchRequest()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class Attempt:
    """One create attempt: its name in the claim, and the time it may take (its own limit, or the caller's deadline,
    whichever comes first), counted from when it takes the claim."""

    def __init__(self, holder: str, limit: float, deadline: float | None) -> None:
        self.holder = holder
        self.limit = limit
        self.deadline = deadline  # the caller's, on the monotonic clock
        self.grace = ATTEMPT_GRACE_SECONDS
        self._ends = 0.0

    def start(self) -> float:
        """Seconds the claim is held for, from now: the attempt's time, plus the grace. Measured from before the
        claim is written, so this process's end comes before the database's."""
        now = time.monotonic()
        self._ends = now + (self.limit if self.deadline is None else max(0.0, min(self.limit, self.deadline - now)))
        return self._ends - now + self.grace

    def loop_deadline(self) -> float:
        """When the attempt gives up, on the event loop's clock (the monotonic one)."""
        return asyncio.get_running_loop().time() + (self._ends - time.monotonic())

    def time_left(self) -> float | None:
        """What is left of the caller's deadline (None: it set none)."""
        return None if self.deadline is None else self.deadline - time.monotonic()


def provider_of_model(model: str) -> str:
    for sep in (":", "/"):
        provider, found, _ = model.partition(sep)
        if found:
            return provider
    return model


class IdempotentCreates:
    """Creates through the core, claimed in the store first so a retry never makes a second batch."""

    def __init__(self, *, core: Batches, store: Store, gateway: GatewayClient, attempt_seconds: float) -> None:
        self._core = core
        self._store = store
        self._gateway = gateway
        self._attempt_seconds = attempt_seconds

    async def create(
        self, request: batch_service_pb2.CreateBatchRequest, caller: Caller, *, time_left: float | None
    ) -> batch_pb2.Batch:
        deadline = None if time_left is None else time.monotonic() + time_left
        request_id = request.request_id.lower()
        digest = fingerprint(request)
        owner = caller.owner
        attempt = Attempt(uuid.uuid4().hex, self._attempt_seconds, deadline)
        claim = await self._claim(request, request_id, digest, caller, attempt)
        if claim.batch_id is not None:
            return await self._settled(caller, claim.batch_id, claim.provider)
        stamp = request_stamp(request_id, digest[:DIGEST_CHARS])
        sent = time.time()
        settled = False  # or released: the claim no longer waits on this attempt
        found: dict[str, Any] | None = None
        try:
            async with asyncio.timeout_at(attempt.loop_deadline()):
                if claim.recovering:
                    found = await self._find_upstream(caller, claim, stamp, request.user, attempt)
                if found is None:
                    found = await self._core.create_upstream(
                        caller, request, stamp=stamp, time_left=attempt.time_left()
                    )
        except TimeoutError:
            raise from_upstream(UpstreamTimeout("create", attempt.limit)) from None
        except (UpstreamHTTPError, UpstreamBadResponse) as exc:  # it answered: it is done with the request
            if isinstance(exc, UpstreamHTTPError) and exc.refused:
                await self._store.release_claim(owner, request_id, attempt.holder)  # refused: nothing was created
                settled = True
            attempt.grace = 0.0  # what it made, if anything, is there to be found now
            raise from_upstream(exc) from None
        except UpstreamError as exc:
            raise from_upstream(exc) from None
        finally:
            if not settled and not found:  # no reply: what was sent may still land, and then the next attempt looks
                await asyncio.shield(self._store.end_attempt(owner, request_id, attempt.holder, after=attempt.grace))
        # Entered first, settled second: a crash between leaves a claim past its attempt, which a retry resolves by
        # search.
        batch = await self._core.created(caller, found, claim.provider, sent=sent, requests_sent=len(request.requests))
        await self._store.settle_claim(owner, request_id, batch.id)
        return batch

    async def _claim(
        self,
        request: batch_service_pb2.CreateBatchRequest,
        request_id: str,
        digest: str,
        caller: Caller,
        attempt: Attempt,
    ) -> Claim:
        """The claim, held by this attempt or settled, after waiting out an attempt running elsewhere."""
        pause = WAIT_FIRST_SECONDS
        provider = provider_of_model(request.model)
        while True:
            claim = await self._store.claim(
                caller.owner, request_id, digest, provider, holder=attempt.holder, attempt_seconds=attempt.start()
            )
            if claim.fingerprint != digest:
                raise await self._reused(caller, request_id, claim)
            if claim.mine or claim.batch_id is not None:
                return claim
            if claim.attempt_left <= 0:
                continue  # it ended as we looked: claim again
            pause = min(pause, claim.attempt_left)
            left = attempt.time_left()
            if left is not None and left < pause + WAIT_MARGIN_SECONDS:
                raise _in_progress(request_id, min(max(claim.attempt_left, 0.2), 1.0))
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, WAIT_MAX_SECONDS)

    async def _settled(self, caller: Caller, batch_id: str, provider: str) -> batch_pb2.Batch:
        """The batch a retry's first attempt made, as the caller may be served it: the service's latest state of it
        when the gateway authorized the caller for it lately, else the gateway's answer (a key revoked since is
        refused here: the claim stays, for the key reactivated)."""
        return (await self._core.current(caller, batch_id, provider))[0].batch

    async def _reused(self, caller: Caller, request_id: str, claim: Claim) -> ServiceError:
        """ALREADY_EXISTS for a request_id used for another request, said only to a caller the gateway authorizes
        (and naming the batch only to one it authorizes for that batch)."""
        if claim.batch_id is None:
            await self._core.vouch(caller, time_left=None)
            return _reused(request_id, None)
        try:
            await self._core.current(caller, claim.batch_id, claim.provider)
        except ServiceError as error:
            if error.code != Code.NOT_FOUND:
                raise
            return _reused(request_id, None)
        return _reused(request_id, claim.batch_id)

    async def _find_upstream(
        self, caller: Caller, claim: Claim, stamp: dict[str, str], user: str, attempt: Attempt
    ) -> dict[str, Any] | None:
        """The batch an earlier attempt made, by what it stamped into its metadata; None when it certainly made
        none. A batch is the one only when its request_id, its request digest and (for a request naming a user, as
        the master key's must) its owner all match: the master key lists every user's batches, and another user may
        have used the same request_id.

        The gateway filters each page by owner after asking the provider and gives no cursor, so an empty page
        is not the end. The search walks back until it passes a batch made before the claim (nothing older can be
        the one: see `_passed_the_claim`);
        when it cannot get there, the outcome is unknown and the caller is told to retry later: creating again
        could make a second batch.
        """
        after: str | None = None
        for _ in range(RECOVERY_PAGES):
            with upstream_errors():
                page = await self._gateway.list_batches(
                    caller.key, claim.provider, after=after, limit=RECOVERY_PAGE_SIZE, time_left=attempt.time_left()
                )
            for item in page:
                if _made_by(item, stamp, user):
                    return item
            if not page:
                break
            if await self._passed_the_claim(page, claim):
                return None  # walked past the first attempt: it made nothing
            after = str(page[-1]["id"])
        attempt.grace = 0.0  # this attempt sent nothing: the next may look again at once
        claim_id = stamped_request(stamp)[0]
        raise ServiceError(
            Code.UNAVAILABLE,
            "CREATE_OUTCOME_UNKNOWN",
            f"An earlier CreateBatch with request_id {claim_id} got no reply, and the gateway's listing "
            "could not show whether it made a batch. Nothing was created now; retry later with the same request_id.",
            {"request_id": claim_id, "provider": claim.provider},
            retry_after=RECOVERY_RETRY_SECONDS,
        )

    async def _passed_the_claim(self, page: list[dict[str, Any]], claim: Claim) -> bool:
        """Whether a batch of the page (each checked already) was made before the claim's first attempt, so that
        nothing it made is listed after it (the listing is newest first): this service saw it before then (its
        registry's clock, the replicas' and the database's, apart by less than the grace), or the gateway's clock
        says so (by more than the gateway's and ours may differ). The oldest is asked first."""
        for item in reversed(page):
            created = item.get("created_at")
            if isinstance(created, int | float) and created < claim.created_at - CLOCK_SKEW_SECONDS:
                return True
            record = await self._store.batch(str(item.get("id", "")))
            if record is not None and record.first_seen < claim.created_at - ATTEMPT_GRACE_SECONDS:
                return True
        return False


def _made_by(item: dict[str, Any], stamp: dict[str, str], user: str) -> bool:
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        return False
    (request_id, digest), (want_id, want_digest) = stamped_request(metadata), stamped_request(stamp)
    if request_id != want_id:
        return False
    # A batch made before digests were stamped carries none: its request_id (and user) decide, as they did then.
    if digest is not None and digest != want_digest:
        return False
    return not user or metadata.get(GATEWAY_OWNER_KEY) == user


def _in_progress(request_id: str, retry_after: float) -> ServiceError:
    return ServiceError(
        Code.UNAVAILABLE,
        "CREATE_IN_PROGRESS",
        f"A CreateBatch with request_id {request_id} is still running (on this replica or another) and did not finish "
        "within this call's deadline; this call created nothing. Retry with the same request_id to get its batch.",
        {"request_id": request_id},
        retry_after=retry_after,
    )


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
