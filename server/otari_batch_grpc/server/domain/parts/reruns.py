"""Re-runs of a batch's retryable failures (CreateBatchRequest.max_attempts), made while no one calls.

A caller who asks for re-runs delegates its key for that batch: kept sealed (see sealing), opened only to poll the
batch, read its parts' results and make its re-runs, deleted when the batch ends, and dropped at the first 401 (the
re-runs stop; what ran stands). Each part that ends (completed, or expired) is examined once, across replicas (the
store marks it so, and records its re-run in the same transaction): a completed part's results are read (the
gateway bills them then) and its retryable failures go into a re-run, the next try; an expired part's requests all
do (the gateway shows no results of a part that did not complete). A re-run is a part like any other: stamped,
taken by one maker at a time, found rather than made again after a lost reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf import json_format

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.errors import Code, ServiceError
from otari_batch_grpc.server.domain.parts.assemble import part_state
from otari_batch_grpc.server.domain.parts.ids import pack, pack_indices, unpack, unpack_indices, unpack_items
from otari_batch_grpc.server.domain.parts.making import PartMaker, PostCreate
from otari_batch_grpc.server.domain.sealing import Sealer, Unsealable
from otari_batch_grpc.server.domain.upstream_search import ATTEMPT_GRACE_SECONDS
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import KeyRefused, UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.store import PartPlan, PartRecord, Store, WholeRecord
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, result_pb2

log = logging.getLogger("otari_batch_grpc.reruns")

# Retryable, and nothing else: these error types, and an error carrying one of these HTTP statuses.
RETRYABLE_CODES = frozenset({"server_error", "rate_limit_exceeded", "timeout", "request_timeout", "timed_out"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_STATUS_FIELDS = ("status", "status_code", "http_status")
DELEGATED = "a key delegated for a batch's re-runs"  # what a sealed key is for (bound into it)

# A completed part's results, by custom_id, read with the delegated key.
ReadResults = Callable[[Caller, WholeRecord, PartRecord], Awaitable[dict[str, result_pb2.BatchResult]]]


def retryable(result: result_pb2.BatchResult) -> bool:
    """Whether a result is a failure a re-run may cure (see RETRYABLE_CODES, RETRYABLE_STATUSES)."""
    if result.WhichOneof("outcome") != "error":
        return False
    error = result.error
    if error.code in RETRYABLE_CODES or (error.code.isdigit() and int(error.code) in RETRYABLE_STATUSES):
        return True
    extra = json_format.MessageToDict(error.extra) if error.HasField("extra") else {}
    return any(isinstance(extra.get(f), int | float) and int(extra[f]) in RETRYABLE_STATUSES for f in _STATUS_FIELDS)


class Reruns:
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        sealer: Sealer,
        post_create: PostCreate,
        read_results: ReadResults,
        hold_seconds: float,
    ) -> None:
        self._gateway, self._store, self._sealer = gateway, store, sealer
        self._post_create, self._read_results = post_create, read_results
        self._hold_seconds = hold_seconds  # a re-run's maker holds it this long (its call, and the grace)

    async def delegate(self, caller: Caller, batch_id: str) -> None:
        sealed = self._sealer.seal(caller.key, purpose=DELEGATED, subject=batch_id, owner=caller.owner)
        await self._store.delegate(batch_id, caller.owner, sealed)

    async def delegated(self, batch_id: str) -> Caller | None:
        """The caller who delegated its key for the batch, with the key; None when none is kept. Raises Unsealable
        when it does not open here (a key-encryption key this replica does not hold): nothing is decided then."""
        found = await self._store.delegation(batch_id)
        if found is None:
            return None
        owner, sealed = found
        return Caller(self._sealer.open(sealed, purpose=DELEGATED, subject=batch_id, owner=owner), owner)

    async def advance(self, record: WholeRecord, parts: Sequence[PartRecord]) -> bool:
        """Examine the parts that ended (recording their re-runs), make the re-runs recorded, and stop them all
        once the batch was cancelled or its key is gone. True when a part changed (read them again). What the
        gateway does not answer now is tried again at the next read."""
        due = [p for p in parts if p.terminal and not p.examined]
        waiting = [p for p in parts if p.upstream_id is None and p.rerun_of is not None]
        if not (due or waiting):
            return False
        try:
            delegate = None if record.cancel_asked else await self.delegated(record.id)
        except Unsealable as exc:
            log.warning("the key delegated for batch %s does not open here (%s): its re-runs wait", record.id, exc)
            return False
        try:
            for part in due:
                await self._examine(delegate, record, part)
            if delegate is not None:
                unmade = [
                    p for p in await self._store.parts(record.id) if p.upstream_id is None and p.rerun_of is not None
                ]
                for part in unmade:
                    await self._make(delegate, record, part)
        except (KeyRefused, ServiceError) as exc:
            if isinstance(exc, ServiceError) and exc.code != Code.UNAUTHENTICATED:
                raise
            log.warning("the gateway refused the key delegated for batch %s: its re-runs stop", record.id)
            await self._store.end_reruns(record.id)
            delegate = None
        if delegate is None:
            await self._stop(record, "the re-runs stopped: the batch was cancelled, or its key is gone")
        return True

    async def _examine(self, delegate: Caller | None, record: WholeRecord, part: PartRecord) -> None:
        """Look at a part that ended once: its re-run recorded, if it has requests to try again. A gateway that
        does not answer for its results leaves it to the next read."""
        try:
            plan = await self._plan(delegate, record, part) if delegate is not None else None
        except UpstreamError as exc:
            log.warning(
                "batch %s: part %d's results could not be read (%s); tried again later", record.id, part.index, exc
            )
            return
        except ServiceError as error:
            if error.code == Code.UNAUTHENTICATED:
                raise
            log.warning("batch %s: part %d's results could not be read (%s)", record.id, part.index, error.message)
            if error.code != Code.NOT_FOUND:
                return  # (tried again later; a part the gateway no longer shows is examined as it is)
            plan = None
        await self._store.examine_part(record.id, part.index, plan)

    async def _plan(self, caller: Caller, record: WholeRecord, part: PartRecord) -> PartPlan | None:
        """The re-run of a part that ended, when it has requests to try again (and tries left)."""
        state = part_state(part)
        if state is None or part.attempt >= record.max_attempts:
            return None
        custom_ids = unpack(await self._store.part_custom_ids(record.id, part.index))
        indices = await self._indices(record, part)
        if state.status == batch_pb2.BATCH_STATUS_EXPIRED:
            again = list(zip(indices, custom_ids, strict=True))
        elif state.status == batch_pb2.BATCH_STATUS_COMPLETED:
            results = await self._read_results(caller, record, part)
            again = [(i, c) for i, c in zip(indices, custom_ids, strict=True) if c in results and retryable(results[c])]
        else:
            return None
        if not again:
            return None
        return PartPlan(
            index=-1,
            first=again[0][0],
            count=len(again),
            custom_ids=pack([c for _, c in again]),
            attempt=part.attempt + 1,
            rerun_of=part.index,
            indices=pack_indices([i for i, _ in again]),
        )

    async def _indices(self, record: WholeRecord, part: PartRecord) -> list[int]:
        if part.rerun_of is None:
            return list(range(part.first, part.first + part.count))
        return unpack_indices(await self._store.part_indices(record.id, part.index))

    async def _make(self, caller: Caller, record: WholeRecord, part: PartRecord) -> None:
        """Make a re-run, held by this maker for `hold_seconds` (its search and its create end within its call's
        limit, inside the hold: no other maker sends meanwhile). One the gateway refuses ends as a failed part (its
        requests' earlier tries stand); one it does not answer now is made at a later read."""
        earlier = await self._store.take_part(record.id, part.index, hold_seconds=self._hold_seconds)
        if earlier is None:
            return  # another maker holds it, or it is made
        maker = PartMaker(
            gateway=self._gateway,
            store=self._store,
            post_create=self._post_create,
            caller=caller,
            record=record,
            time_left=lambda: None,
        )

        async def request() -> batch_service_pb2.CreateBatchRequest:
            return await self._request(record, part)

        try:
            async with asyncio.timeout(self._hold_seconds - ATTEMPT_GRACE_SECONDS):
                await maker.make(part, request, sent_before=earlier, mark_sent=False)
        except KeyRefused:
            raise
        except UpstreamHTTPError as exc:
            if not exc.refused:
                log.warning("batch %s: re-run %d not made now (%s)", record.id, part.index, exc)
                return
            await self._store.abandon_part(
                record.id, part.index, never(f"the gateway refused the re-run: {exc}"), unheld_since=time.time()
            )
        except (UpstreamError, TimeoutError) as exc:
            log.warning("batch %s: re-run %d not made now (%s)", record.id, part.index, exc or "timed out")
        except ServiceError as error:  # (its outcome unknown after a lost reply: looked for again later)
            if error.code == Code.UNAUTHENTICATED:
                raise
            log.warning("batch %s: re-run %d not made now (%s)", record.id, part.index, error.message)

    async def _request(self, record: WholeRecord, part: PartRecord) -> batch_service_pb2.CreateBatchRequest:
        """A re-run as a request of its own: the batch's header, and its requests as their first tries kept them."""
        request = batch_service_pb2.CreateBatchRequest.FromString(record.header)
        firsts = [p for p in await self._store.parts(record.id) if p.rerun_of is None]
        kept: dict[int, list[batch_service_pb2.BatchRequestItem]] = {}
        for index in unpack_indices(await self._store.part_indices(record.id, part.index)):
            first = next(p for p in firsts if p.first <= index < p.first + p.count)
            if first.index not in kept:
                kept[first.index] = unpack_items(await self._store.part_bodies(record.id, first.index))
            request.requests.append(kept[first.index][index - first.first])
        return request

    async def _stop(self, record: WholeRecord, why: str) -> None:
        """Re-runs recorded but not made (and not being made) will not be: each ends as a failed part that was never
        made (its requests' earlier tries stand), so the batch can end."""
        unheld_since = time.time() - self._hold_seconds
        for part in await self._store.parts(record.id):
            if part.upstream_id is None and part.rerun_of is not None:
                await self._store.abandon_part(record.id, part.index, never(why), unheld_since=unheld_since)


def never(why: str) -> bytes:
    """The state of a part that was never made: failed, saying why."""
    never = batch_pb2.Batch(
        status=batch_pb2.BATCH_STATUS_FAILED,
        upstream_status="not_made",
        errors=[batch_pb2.BatchError(code="not_made", message=why)],
    )
    return never.SerializeToString(deterministic=True)
