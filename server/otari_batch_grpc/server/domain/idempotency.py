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
import time
import uuid
from typing import Any

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import Code, ServiceError, from_upstream, upstream_errors
from otari_batch_grpc.server.domain.parts.ids import whole_id
from otari_batch_grpc.server.domain.parts.plan import Part
from otari_batch_grpc.server.domain.parts.requests import Requests
from otari_batch_grpc.server.domain.upstream_search import ATTEMPT_GRACE_SECONDS, Unknown, find_made
from otari_batch_grpc.server.gateway import convert
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

RECOVERY_RETRY_SECONDS = 30.0
# A retry waiting for a running attempt looks again after these pauses (growing), and gives up this long before its
# own deadline, so that it answers UNAVAILABLE rather than DEADLINE_EXCEEDED.
WAIT_FIRST_SECONDS = 0.05
WAIT_MAX_SECONDS = 0.5
WAIT_MARGIN_SECONDS = 0.1


# How much of the fingerprint is stamped (as hex) beside the request_id: 128 bits.
DIGEST_CHARS = 32


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


class IdempotentCreates:
    """Creates through the core, claimed in the store first so a retry never makes a second batch."""

    def __init__(self, *, core: Batches, store: Store, gateway: GatewayClient, attempt_seconds: float) -> None:
        self._core = core
        self._store = store
        self._gateway = gateway
        self._attempt_seconds = attempt_seconds

    async def create_from(
        self, requests: Requests, caller: Caller, *, plan: list[Part] | None, time_left: float | None
    ) -> batch_pb2.Batch:
        """The batch a (validated) request makes: once per request_id when it has one; of several parts, by `plan`
        (the core's `wholes.plan`), when it is larger than one (see parts)."""
        deadline = None if time_left is None else time.monotonic() + time_left
        attempt = Attempt(uuid.uuid4().hex, self._attempt_seconds, deadline)
        header = requests.header
        if not header.request_id:
            return await self._unclaimed(requests, caller, plan, attempt)
        request_id = header.request_id.lower()
        digest = requests.fingerprint()
        claim = await self._claim(header, request_id, digest, caller, attempt)
        if claim.batch_id is not None:
            return await self._settled(caller, claim.batch_id, claim.provider)
        # What the first attempt decided stands, whatever this replica's PART_MAX_*: a batch of parts once recorded;
        # one upstream batch if it made one (looked for by its stamp).
        if claim.recovering and await self._store.whole(whole_id(caller.owner, request_id, claim.created_at)):
            return await self._whole(requests, caller, plan or [], request_id, claim, attempt)
        if plan is not None:
            if claim.recovering and (made := await self._made_as_one(caller, claim, request_id, digest, attempt)):
                return made
            return await self._whole(requests, caller, plan, request_id, claim, attempt)
        return await self._one(await requests.whole(), caller, request_id, digest, claim, attempt)

    async def _made_as_one(
        self, caller: Caller, claim: Claim, request_id: str, digest: str, attempt: Attempt
    ) -> batch_pb2.Batch | None:
        """The one upstream batch an earlier attempt made of this request (on a replica that did not split it), if
        it made one: settled as this request_id's batch."""
        stamp = request_stamp(request_id, digest[:DIGEST_CHARS])
        sent = time.time()
        found = await self._find_upstream(caller, claim, stamp, "", attempt)
        if found is None:
            return None
        requests = int(found.get("request_counts", {}).get("total", 0) or 0)
        batch = await self._core.created(caller, found, claim.provider, sent=sent, requests_sent=requests)
        await self._store.settle_claim(caller.owner, request_id, batch.id)
        return batch

    async def _one(
        self,
        request: batch_service_pb2.CreateBatchRequest,
        caller: Caller,
        request_id: str,
        digest: str,
        claim: Claim,
        attempt: Attempt,
    ) -> batch_pb2.Batch:
        """A claimed create of one upstream batch."""
        owner = caller.owner
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

    async def _unclaimed(
        self, requests: Requests, caller: Caller, plan: list[Part] | None, attempt: Attempt
    ) -> batch_pb2.Batch:
        """A create without a request_id: nothing to claim (a retry makes another batch, as the caller chose)."""
        sent = time.time()
        with upstream_errors():
            if plan is not None:
                batch_id = whole_id(caller.owner, "", 0.0)
                return await self._core.wholes.create(
                    caller,
                    requests,
                    plan,
                    batch_id=batch_id,
                    request_id="",
                    renew=_nothing,
                    time_left=attempt.time_left,
                    part_seconds=self._attempt_seconds,
                )
            request = await requests.whole()
            data = await self._core.create_upstream(caller, request, time_left=attempt.time_left())
        return await self._core.created(caller, data, "", sent=sent, requests_sent=len(request.requests))

    async def _whole(
        self,
        requests: Requests,
        caller: Caller,
        plan: list[Part],
        request_id: str,
        claim: Claim,
        attempt: Attempt,
    ) -> batch_pb2.Batch:
        """A claimed create of several parts. The claim is renewed before each part is sent, so it outlives every
        part's attempt (their own limit, plus the grace) and no longer: an attempt that dies is taken over within
        one part's time, part by part (see parts.wholes)."""
        owner = caller.owner

        async def renew() -> None:
            if not await self._store.renew_claim(owner, request_id, attempt.holder, attempt_seconds=attempt.start()):
                raise _in_progress(request_id, 1.0)  # (another attempt took it over: this one sends nothing more)

        settled = False
        batch: batch_pb2.Batch | None = None
        try:
            batch = await self._core.wholes.create(
                caller,
                requests,
                plan,
                batch_id=whole_id(owner, request_id, claim.created_at),
                request_id=request_id,
                renew=renew,
                time_left=attempt.time_left,
                part_seconds=self._attempt_seconds,
            )
        except UpstreamHTTPError as exc:
            if exc.refused:  # every part made was cancelled, and the batch forgotten: a retry starts over
                await self._store.release_claim(owner, request_id, attempt.holder)
                settled = True
            raise from_upstream(exc) from None
        except UpstreamError as exc:
            raise from_upstream(exc) from None
        finally:
            if not settled and batch is None:  # what was sent may still land: the next attempt looks
                await asyncio.shield(self._store.end_attempt(owner, request_id, attempt.holder, after=attempt.grace))
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
        provider = convert.provider_of_model(request.model)
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
        none (see upstream_search). A batch is the one only when its request_id, its request digest and (for a
        request naming a user, as the master key's must) its owner all match: the master key lists every user's
        batches, and another user may have used the same request_id."""
        try:
            return await find_made(
                self._gateway,
                self._store,
                caller,
                claim.provider,
                lambda item: _made_by(item, stamp, user),
                since=claim.created_at,
                time_left=attempt.time_left,
            )
        except Unknown:
            attempt.grace = 0.0  # this attempt sent nothing: the next may look again at once
            raise outcome_unknown(stamped_request(stamp)[0], claim.provider) from None


async def _nothing() -> None:
    """No claim to renew."""


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


def outcome_unknown(request_id: str, provider: str) -> ServiceError:
    return ServiceError(
        Code.UNAVAILABLE,
        "CREATE_OUTCOME_UNKNOWN",
        f"An earlier CreateBatch with request_id {request_id} got no reply, and the gateway's listing "
        "could not show whether it made a batch. Nothing was created now; retry later with the same request_id.",
        {"request_id": request_id, "provider": provider},
        retry_after=RECOVERY_RETRY_SECONDS,
    )


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
