"""Batches of several parts, behind one id of the service's own: made (every part upstream, or none kept), read
(each live part from the gateway, with the caller's key, which authorizes the caller for the whole), cancelled
(every live part) and their results (in request order, an error result for each request without one).

A create records the plan before it sends anything (a retry, on any replica, splits the same way: the first plan
is kept) and marks each part sent before it sends it; an attempt that takes over from one that got no reply (or
died) looks upstream, by the part's stamp, for each part that was sent and is not known, and makes only what is
certainly not there. So no part is made twice. The caller's claim on the request_id covers every part's attempt:
it is renewed before each part is sent (see idempotency).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.observations import Observation, count_requests
from otari_batch_grpc.server.domain.core.providers import not_found
from otari_batch_grpc.server.domain.core.states import States
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, invalid_argument
from otari_batch_grpc.server.domain.parts.assemble import assemble, part_state
from otari_batch_grpc.server.domain.parts.ids import pack, unpack
from otari_batch_grpc.server.domain.parts.plan import Part, PartTooLarge, split
from otari_batch_grpc.server.domain.parts.requests import Requests
from otari_batch_grpc.server.domain.upstream_search import Unknown, find_made
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import ProviderFailed, UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.gateway.results_document import ResultsParser, as_is, plain
from otari_batch_grpc.server.store import PartPlan, PartRecord, Store, WholeRecord
from otari_batch_grpc.server.util.stamps import part_stamp, stamped_part
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, result_pb2

# Make one part upstream: (caller, the part as a request of its own, its stamp, time left) -> the gateway's answer.
CreateUpstream = Callable[..., Awaitable[dict[str, Any]]]
# A failed read of an upstream batch as the service's error (the core's `read_failed`).
ReadFailed = Callable[[Caller, str, str, UpstreamError, float | None], Awaitable[ServiceError]]

_COMPLETED = batch_pb2.BATCH_STATUS_COMPLETED
# Why a request of a part that did not complete has no result, by the part's status.
_NO_RESULT = {
    batch_pb2.BATCH_STATUS_CANCELLED: ("batch_cancelled", "was cancelled before this request ran"),
    batch_pb2.BATCH_STATUS_EXPIRED: ("batch_expired", "expired before this request ran"),
    batch_pb2.BATCH_STATUS_FAILED: ("batch_failed", "failed as a whole"),
}


@dataclass(frozen=True, kw_only=True)
class PartsPolicy:
    """How a batch is split: the settings' PART_MAX_REQUESTS, PART_MAX_BYTES, PART_CREATES_AT_ONCE."""

    max_requests: int
    max_bytes: int
    creates_at_once: int


class Wholes:
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        states: States,
        trust: Trust,
        policy: PartsPolicy,
        create_upstream: CreateUpstream,
        read_failed: ReadFailed,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._states = states
        self._trust = trust
        self.policy = policy
        self._create_upstream = create_upstream
        self._read_failed = read_failed

    # -- making one ------------------------------------------------------------------------------------------------
    def plan(self, requests: Requests) -> list[Part] | None:
        """Where a (validated) batch splits; None when it fits one part (a batch of the gateway's own id)."""
        try:
            parts = split(requests.sizes(), max_requests=self.policy.max_requests, max_bytes=self.policy.max_bytes)
        except PartTooLarge as exc:
            raise invalid_argument(
                [
                    FieldViolation(
                        f"requests[{exc.index}]",
                        f"is {exc.size:,} bytes; a request must fit one part upstream ({exc.max_bytes:,} bytes)",
                    )
                ]
            ) from None
        return parts if len(parts) > 1 else None

    async def create(
        self,
        caller: Caller,
        requests: Requests,
        plan: Sequence[Part],
        *,
        batch_id: str,
        request_id: str,
        renew: Callable[[], Awaitable[None]],
        time_left: Callable[[], float | None],
    ) -> batch_pb2.Batch:
        """Make every part of the batch `batch_id` not made yet (the plan recorded first wins), then the batch as one.
        A part refused cancels the parts made and forgets the batch, and its UpstreamHTTPError is raised; any other
        failure leaves what was made recorded, for the next attempt."""
        record = await self._store.whole(batch_id) or await self._record(caller, requests, plan, batch_id, request_id)
        parts = await self._store.parts(batch_id)
        sent = time.time()
        making = _Making(self, caller, requests, record, renew, time_left)
        outcomes = await asyncio.gather(*(making.part(p) for p in parts), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            refused = [f for f in failures if isinstance(f, UpstreamHTTPError) and f.refused]
            if refused:  # nothing more will be made: none of it is kept (nor billed)
                await self._undo(caller, record, making.made)
                raise refused[0]
            raise failures[0]
        batch = assemble(record, [(p, making.made[p.index]) for p in parts])
        await self._states.enter([batch], record.provider, caller.owner, creator=True, shown_at=sent)
        return batch

    async def _record(
        self, caller: Caller, requests: Requests, plan: Sequence[Part], batch_id: str, request_id: str
    ) -> WholeRecord:
        """The batch and its plan, recorded before any part is sent (or as an attempt that raced this one did)."""
        header = batch_service_pb2.CreateBatchRequest()
        header.CopyFrom(requests.header)
        header.ClearField("request_id")
        planned = []
        for i, part in enumerate(plan):
            items = await requests.read(part.start, part.end)
            planned.append(PartPlan(i, part.start, len(part), pack([item.custom_id for item in items])))
        record = WholeRecord(
            id=batch_id,
            owner=caller.owner,
            provider=convert.provider_of_model(header.model),
            request_id=request_id,
            requests=len(requests),
            header=header.SerializeToString(deterministic=True),
            created_at=time.time(),
        )
        return await self._store.add_whole(record, planned)

    async def _undo(self, caller: Caller, record: WholeRecord, made: dict[int, batch_pb2.Batch]) -> None:
        """Cancel the parts made of a batch whose create failed, and forget it."""
        for state in made.values():
            # (one that finished, or a gateway away: the part stays hidden from listings all the same)
            with contextlib.suppress(UpstreamError):
                await self._gateway.cancel_batch(caller.key, state.id, record.provider, time_left=None)
        await self._store.drop_whole(record.id)

    # -- reading one -----------------------------------------------------------------------------------------------
    async def provider_of(self, batch_id: str, given: str) -> str:
        """The provider of a batch of several parts (NOT_FOUND for an id that is none, or another provider's)."""
        record = await self._store.whole(batch_id)
        if record is None or (given and given.lower() != record.provider.lower()):
            raise not_found(batch_id, given or "(any)")
        return record.provider

    async def fetch(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> Observation:
        """The batch as its parts are now: each live part read from the gateway with the caller's key (the first
        part when none is live), which authorizes the caller (a part the gateway will not show them: NOT_FOUND for
        the batch), entered as the batch's state."""
        record = await self._store.whole(batch_id)
        if record is None or record.provider.lower() != provider.lower():
            raise not_found(batch_id, provider)
        parts = await self._store.parts(batch_id)
        made = [p for p in parts if p.upstream_id is not None]
        asked = [p for p in made if not p.terminal] or made[:1]
        sent = time.time()
        read = await asyncio.gather(*(self._read(caller, record, p, time_left) for p in asked), return_exceptions=True)
        fresh: dict[int, batch_pb2.Batch] = {}
        for part, outcome in zip(asked, read, strict=True):
            if isinstance(outcome, ServiceError) and outcome.code == Code.NOT_FOUND:
                await self._trust.forget(batch_id, caller.owner)
                raise not_found(batch_id, provider)
            if isinstance(outcome, BaseException):
                raise outcome
            fresh[part.index] = outcome
        batch = assemble(record, [(p, fresh.get(p.index) or part_state(p)) for p in parts])
        (observation,) = await self._states.enter([batch], record.provider, caller.owner, shown_at=sent)
        return observation

    async def _read(
        self, caller: Caller, record: WholeRecord, part: PartRecord, time_left: float | None
    ) -> batch_pb2.Batch:
        assert part.upstream_id is not None
        try:
            data = await self._gateway.get_batch(caller.key, part.upstream_id, record.provider, time_left=time_left)
        except UpstreamError as exc:
            raise await self._read_failed(caller, part.upstream_id, record.provider, exc, time_left) from None
        batch = convert.batch_from_json(data)
        count_requests(batch, part.count)
        snapshot = batch.SerializeToString(deterministic=True)
        if snapshot != part.snapshot:
            terminal = batch.status in convert.TERMINAL_STATUSES
            await self._store.part_seen(record.id, part.index, snapshot, terminal=terminal, upstream_id=batch.id)
        return batch

    # -- cancelling one --------------------------------------------------------------------------------------------
    async def cancel(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> Observation:
        """Ask every live part to cancel (the batch ends CANCELLED whatever they do next), then read it again. The
        caller was authorized for it just before (a fetch)."""
        await self._store.cancel_whole(batch_id)
        for part in await self._store.parts(batch_id):
            if part.upstream_id is None or part.terminal:
                continue
            try:
                await self._gateway.cancel_batch(caller.key, part.upstream_id, provider, time_left=time_left)
            except ProviderFailed:
                pass  # the gateway answers so for a part that finished meanwhile: the read below says
            except UpstreamError as exc:
                raise await self._read_failed(caller, part.upstream_id, provider, exc, time_left) from None
        return await self.fetch(caller, batch_id, provider, time_left=time_left)

    # -- its results -----------------------------------------------------------------------------------------------
    async def results(self, caller: Caller, batch_id: str, *, time_left: float | None) -> AsyncGenerator[bytes, None]:
        """One result per request, in the order they were sent (each a serialized BatchResult): each completed
        part's from the gateway (one part held at a time), an error result for every request without one."""
        record = await self._store.whole(batch_id)
        if record is None:
            raise not_found(batch_id, "(any)")
        for part in await self._store.parts(batch_id):
            custom_ids = unpack(await self._store.part_custom_ids(batch_id, part.index))
            state = part_state(part)
            if state is not None and state.status == _COMPLETED:
                found = await self._part_results(caller, record, part, time_left)
                for custom_id in custom_ids:
                    yield found.pop(custom_id, b"") or _missing(custom_id, part, state)
            else:
                for custom_id in custom_ids:
                    yield _missing(custom_id, part, state)

    async def _part_results(
        self, caller: Caller, record: WholeRecord, part: PartRecord, time_left: float | None
    ) -> dict[str, bytes]:
        """A completed part's results by custom_id, serialized."""
        assert part.upstream_id is not None
        found: dict[str, bytes] = {}
        parser = ResultsParser(plain, as_is)
        try:
            async with self._gateway.stream_results(
                caller.key, part.upstream_id, record.provider, parser, time_left=time_left
            ) as items:
                async for item in items:
                    result = convert.result_from_json(item)
                    found[result.custom_id] = result.SerializeToString()
        except UpstreamError as exc:
            raise await self._read_failed(caller, part.upstream_id, record.provider, exc, time_left) from None
        return found


class _Making:
    """One attempt at the parts of a batch: each made, or found made by an earlier attempt; none started once one
    failed."""

    def __init__(
        self,
        wholes: Wholes,
        caller: Caller,
        requests: Requests,
        record: WholeRecord,
        renew: Callable[[], Awaitable[None]],
        time_left: Callable[[], float | None],
    ) -> None:
        self._wholes, self._caller, self._requests, self._record = wholes, caller, requests, record
        self._renew, self._time_left = renew, time_left
        self._limit = asyncio.Semaphore(wholes.policy.creates_at_once)
        self._failed = False
        self.made: dict[int, batch_pb2.Batch] = {}

    async def part(self, part: PartRecord) -> None:
        if part.upstream_id is not None:
            state = part_state(part)
            assert state is not None
            self.made[part.index] = state
            return
        async with self._limit:
            if self._failed:
                return
            try:
                self.made[part.index] = await self._make(part)
            except BaseException:
                self._failed = True
                raise

    async def _make(self, part: PartRecord) -> batch_pb2.Batch:
        wholes, record = self._wholes, self._record
        await self._renew()  # the claim covers this part's attempt from here
        found = await self._find(part) if part.sent_at else None
        if found is None:
            await wholes._store.part_sent(record.id, part.index, time.time())
            found = await wholes._create_upstream(
                self._caller,
                await self._part_request(part),
                stamp=part_stamp(record.id, part.index),
                time_left=self._time_left(),
            )
        batch = convert.batch_from_json(found)
        count_requests(batch, part.count)
        terminal = batch.status in convert.TERMINAL_STATUSES
        snapshot = batch.SerializeToString(deterministic=True)
        await wholes._store.part_seen(record.id, part.index, snapshot, terminal=terminal, upstream_id=batch.id)
        return batch

    async def _find(self, part: PartRecord) -> dict[str, Any] | None:
        """The part an earlier attempt sent and got no reply for, if it made it."""
        record = self._record

        def match(item: dict[str, Any]) -> bool:
            metadata = item.get("metadata")
            return isinstance(metadata, dict) and stamped_part(metadata) == (record.id, part.index)

        wholes = self._wholes
        try:
            return await find_made(
                wholes._gateway,
                wholes._store,
                self._caller,
                record.provider,
                match,
                since=part.sent_at,
                time_left=self._time_left,
            )
        except Unknown:
            raise ServiceError(
                Code.UNAVAILABLE,
                "CREATE_OUTCOME_UNKNOWN",
                f"An earlier attempt at batch {record.id} sent its part {part.index} and got no reply, and the "
                "gateway's listing could not show whether it made it. Nothing more was created now; retry later "
                "with the same request_id.",
                {"batch_id": record.id, "part": str(part.index), "provider": record.provider},
                retry_after=30.0,
            ) from None

    async def _part_request(self, part: PartRecord) -> batch_service_pb2.CreateBatchRequest:
        request = batch_service_pb2.CreateBatchRequest.FromString(self._record.header)
        request.requests.extend(await self._requests.read(part.first, part.first + part.count))
        return request


def _missing(custom_id: str, part: PartRecord, state: batch_pb2.Batch | None) -> bytes:
    """The error result of a request its part has no result for, saying why."""
    where = f"its part {part.index} (upstream batch {part.upstream_id})" if part.upstream_id else "its part"
    if state is None:
        code, message = "batch_cancelled", f"No result: {where} was never made (the batch was cancelled first)."
    elif state.status == _COMPLETED:
        code, message = (
            "result_missing",
            f"No result: {where} completed, but the gateway's results for it do not list this request.",
        )
    else:
        code, why = _NO_RESULT.get(state.status, ("batch_failed", f"ended {state.upstream_status}"))
        message = f"No result: {where} {why}; the gateway keeps no results of a part that did not complete."
    result = result_pb2.BatchResult(custom_id=custom_id, error=result_pb2.ResultError(code=code, message=message))
    return result.SerializeToString()
