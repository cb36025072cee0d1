"""Batches of several parts, behind one id of the service's own: made (every part upstream, or none kept), read
(each live part from the gateway, with the caller's key, which authorizes the caller for the whole), cancelled
(every live part), re-run (see reruns) and their results (see outcomes).

A create records the plan before it sends anything (a retry, on any replica, splits the same way: the first plan
is kept) and marks each part sent before it sends it; an attempt that takes over from one that got no reply (or
died) looks upstream, by the part's stamp, for each part that was sent and is not known, and makes only what is
certainly not there (see making). So no part is made twice. The caller's claim on the request_id covers every
part's attempt: it is renewed before each part is sent (see idempotency).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.observations import Observation, count_requests
from otari_batch_grpc.server.domain.core.providers import not_found
from otari_batch_grpc.server.domain.core.states import States
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, invalid_argument
from otari_batch_grpc.server.domain.parts.assemble import assemble, part_state
from otari_batch_grpc.server.domain.parts.ids import pack, pack_items
from otari_batch_grpc.server.domain.parts.making import PartMaker, PostCreate
from otari_batch_grpc.server.domain.parts.outcomes import outcomes
from otari_batch_grpc.server.domain.parts.plan import Part, PartTooLarge, split
from otari_batch_grpc.server.domain.parts.requests import Requests
from otari_batch_grpc.server.domain.parts.reruns import Reruns
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import ProviderFailed, UpstreamError, UpstreamHTTPError, UpstreamTimeout
from otari_batch_grpc.server.gateway.results_document import ResultsParser, as_is, plain
from otari_batch_grpc.server.store import PartPlan, PartRecord, Store, WholeRecord
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, result_pb2

# What a NOT_FOUND of a batch of several parts names as its provider: the same for an id that is none and for one
# that is another caller's (no existence oracle).
ANY = "(any)"
# A failed read of an upstream batch as the service's error (the core's `read_failed`).
ReadFailed = Callable[[Caller, str, str, UpstreamError, float | None], Awaitable[ServiceError]]


@dataclass(frozen=True, kw_only=True)
class PartsPolicy:
    """How a batch is split: the settings' PART_MAX_REQUESTS, PART_MAX_BYTES, PART_CREATES_AT_ONCE; and how long
    a re-run's maker holds it (its call's limit, plus the grace)."""

    max_requests: int
    max_bytes: int
    creates_at_once: int
    hold_seconds: float = 40.0


class Wholes:
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        states: States,
        trust: Trust,
        sealer: Sealer,
        policy: PartsPolicy,
        post_create: PostCreate,
        read_failed: ReadFailed,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._states = states
        self._trust = trust
        self.policy = policy
        self._post_create = post_create
        self._read_failed = read_failed
        self.reruns = Reruns(
            gateway=gateway,
            store=store,
            sealer=sealer,
            post_create=post_create,
            read_results=self._part_results,
            hold_seconds=policy.hold_seconds,
        )

    # -- making one ------------------------------------------------------------------------------------------------
    def plan(self, requests: Requests) -> list[Part] | None:
        """Where a (validated) batch splits; None when it is one upstream batch of the gateway's own id (it fits one
        part and asks for no re-run)."""
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
        return parts if len(parts) > 1 or requests.header.max_attempts > 1 else None

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
        part_seconds: float,
    ) -> batch_pb2.Batch:
        """Make every part of the batch `batch_id` not made yet (the plan recorded first wins), then the batch as one.
        Each part's search and create end within `part_seconds` of the renew before it (inside the claim). A part
        refused cancels every part made and forgets the batch, and its UpstreamHTTPError is raised; any other
        failure leaves what was made recorded, for the next attempt (without a request_id there is none: it is
        undone too). The key is delegated (re-runs asked) once every
        part exists."""
        record = await self._store.whole(batch_id) or await self._record(caller, requests, plan, batch_id, request_id)
        parts = await self._store.parts(batch_id)
        sent = time.time()
        creating = _Creating(self, caller, requests, record, renew, time_left, part_seconds)
        outcomes_ = await asyncio.gather(*(creating.part(p) for p in parts), return_exceptions=True)
        failures = [o for o in outcomes_ if isinstance(o, BaseException)]
        if failures:
            refused = [f for f in failures if isinstance(f, UpstreamHTTPError) and f.refused]
            if refused or not request_id:  # nothing more will be made (no retry can find it): none of it is kept
                await self._undo(caller, record, creating.made)
            if refused:
                raise refused[0]
            first = failures[0]
            raise UpstreamTimeout("create", part_seconds) if isinstance(first, TimeoutError) else first
        if record.max_attempts > 1:
            await self.reruns.delegate(caller, batch_id)
        states = [(p, creating.made.get(p.index) or part_state(p)) for p in parts]
        # (a part found made by an earlier attempt may have ended already: its re-runs are still to be looked at)
        pending = record.max_attempts > 1 and any(
            s is not None and s.status in convert.TERMINAL_STATUSES for _, s in states
        )
        batch = assemble(record, states, rerun_pending=pending)
        await self._states.enter([batch], record.provider, caller.owner, creator=True, shown_at=sent)
        return batch

    async def _record(
        self, caller: Caller, requests: Requests, plan: Sequence[Part], batch_id: str, request_id: str
    ) -> WholeRecord:
        """The batch and its plan, recorded before any part is sent (or as an attempt that raced this one did); with
        re-runs asked, each part's requests too (a re-run sends them again)."""
        header = batch_service_pb2.CreateBatchRequest()
        header.CopyFrom(requests.header)
        header.ClearField("request_id")
        keep = header.max_attempts > 1
        planned = [
            PartPlan(i, part.start, len(part), pack(requests.custom_ids(part.start, part.end)))
            for i, part in enumerate(plan)
        ]
        record = WholeRecord(
            id=batch_id,
            owner=caller.owner,
            provider=convert.provider_of_model(header.model),
            request_id=request_id,
            requests=len(requests),
            header=header.SerializeToString(deterministic=True),
            created_at=time.time(),
            max_attempts=max(1, header.max_attempts),
        )
        recorded = await self._store.add_whole(record, planned)
        if keep:  # one part's requests in memory at a time
            for i, part in enumerate(plan):
                items = await requests.read(part.start, part.end)
                await self._store.keep_bodies(batch_id, i, await asyncio.to_thread(pack_items, items))
        return recorded

    async def _undo(self, caller: Caller, record: WholeRecord, made: dict[int, batch_pb2.Batch]) -> None:
        """Cancel the parts made of a batch whose create failed (by this attempt, or an earlier one), and forget
        it."""
        known = {p.upstream_id for p in await self._store.parts(record.id) if p.upstream_id}
        for upstream_id in known | {state.id for state in made.values()}:
            # (one that finished, or a gateway away: the part stays hidden from listings all the same)
            with contextlib.suppress(UpstreamError):
                await self._gateway.cancel_batch(caller.key, upstream_id, record.provider, time_left=None)
        await self._store.drop_whole(record.id)

    # -- reading one -----------------------------------------------------------------------------------------------
    async def provider_of(self, batch_id: str, given: str) -> str:
        """The provider of a batch of several parts (NOT_FOUND for an id that is none, or another provider's)."""
        record = await self._store.whole(batch_id)
        if record is None or (given and given.lower() != record.provider.lower()):
            raise not_found(batch_id, ANY)
        return record.provider

    async def fetch(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> Observation:
        """The batch as its parts are now: each live part read from the gateway with the caller's key (the first
        part when none is live), which authorizes the caller (a part the gateway will not show them: NOT_FOUND for
        the batch); then its re-runs advanced; entered as the batch's state."""
        record = await self._store.whole(batch_id)
        if record is None or record.provider.lower() != provider.lower():
            raise not_found(batch_id, ANY)
        parts = await self._store.parts(batch_id)
        made = [p for p in parts if p.upstream_id]
        asked = [p for p in made if not p.terminal] or made[:1]
        if not asked and caller.owner != record.owner:  # nothing the gateway could vouch for yet: its creator's alone
            raise not_found(batch_id, ANY)
        sent = time.time()
        read = await asyncio.gather(*(self._read(caller, record, p, time_left) for p in asked), return_exceptions=True)
        fresh: dict[int, PartRecord] = {}
        for outcome in read:
            if isinstance(outcome, ServiceError) and outcome.code == Code.NOT_FOUND:
                await self._trust.forget(batch_id, caller.owner)
                raise not_found(batch_id, ANY)
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                fresh[outcome.index] = outcome
        parts = [fresh.get(p.index, p) for p in parts]  # as just read: no store read again
        changed = bool(fresh)
        if record.max_attempts > 1 and await self.reruns.advance(record, parts):
            parts, changed = await self._store.parts(batch_id), True
        pending = record.max_attempts > 1 and any(p.terminal and not p.examined for p in parts)
        batch = assemble(record, [(p, part_state(p)) for p in parts], rerun_pending=pending)
        if changed and record.max_attempts > 1 and batch.status in convert.TERMINAL_STATUSES:
            await self._store.end_reruns(batch_id)  # it ended: the key kept for it goes
        (observation,) = await self._states.enter([batch], record.provider, caller.owner, shown_at=sent)
        return observation

    async def _read(
        self, caller: Caller, record: WholeRecord, part: PartRecord, time_left: float | None
    ) -> PartRecord | None:
        """A live part read from the gateway; the part as it stands now when its state changed (saved), else
        None."""
        assert part.upstream_id
        try:
            data = await self._gateway.get_batch(caller.key, part.upstream_id, record.provider, time_left=time_left)
        except UpstreamError as exc:
            raise await self._read_failed(caller, part.upstream_id, record.provider, exc, time_left) from None
        batch = convert.batch_from_json(data)
        count_requests(batch, part.count)
        snapshot = batch.SerializeToString(deterministic=True)
        if snapshot == part.snapshot:
            return None
        terminal = batch.status in convert.TERMINAL_STATUSES
        await self._store.part_seen(record.id, part.index, snapshot, terminal=terminal, upstream_id=batch.id)
        return dataclasses.replace(part, snapshot=snapshot, terminal=terminal, upstream_id=batch.id)

    # -- cancelling one --------------------------------------------------------------------------------------------
    async def cancel(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> Observation:
        """Ask every live part to cancel (the batch ends CANCELLED whatever they do next; no re-run is made from
        now on), then read it again. The caller was authorized for it just before (a fetch)."""
        await self._store.cancel_whole(batch_id)
        for part in await self._store.parts(batch_id):
            if not part.upstream_id or part.terminal:
                continue
            try:
                await self._gateway.cancel_batch(caller.key, part.upstream_id, provider, time_left=time_left)
            except ProviderFailed:
                pass  # the gateway answers so for a part that finished meanwhile: the read below says
            except UpstreamError as exc:
                raise await self._read_failed(caller, part.upstream_id, provider, exc, time_left) from None
        return await self.fetch(caller, batch_id, provider, time_left=time_left)

    # -- its results -----------------------------------------------------------------------------------------------
    async def results(
        self, caller: Caller, batch_id: str, *, time_left: float | None, start: int = 0
    ) -> AsyncGenerator[bytes, None]:
        """One result per request, in the order they were sent (each a serialized BatchResult; see outcomes), from
        the first part that ends past `start` (see resume_point)."""
        record = await self._store.whole(batch_id)
        if record is None:
            raise not_found(batch_id, ANY)

        async def read(part: PartRecord) -> dict[str, result_pb2.BatchResult]:
            return await self._part_results(caller, record, part, time_left)

        async for result in outcomes(self._store, batch_id, read, start=start):
            yield result

    async def resume_point(self, batch_id: str, start: int) -> int:
        """Where the results of a stream resumed at `start` begin: the first request of the part holding it."""
        parts = [p for p in await self._store.parts(batch_id) if p.rerun_of is None]
        return next((p.first for p in parts if p.first + p.count > start), sum(p.count for p in parts))

    async def _part_results(
        self, caller: Caller, record: WholeRecord, part: PartRecord, time_left: float | None = None
    ) -> dict[str, result_pb2.BatchResult]:
        """A completed part's results by custom_id."""
        assert part.upstream_id
        found: dict[str, result_pb2.BatchResult] = {}
        parser = ResultsParser(plain, as_is)
        try:
            async with self._gateway.stream_results(
                caller.key, part.upstream_id, record.provider, parser, time_left=time_left
            ) as items:
                async for item in items:
                    result = convert.result_from_json(item)
                    found[result.custom_id] = result
        except UpstreamError as exc:
            raise await self._read_failed(caller, part.upstream_id, record.provider, exc, time_left) from None
        return found


class _Creating:
    """One attempt at the parts of a batch: each made, or found made by an earlier attempt, the claim renewed
    before each; none started once one failed."""

    def __init__(
        self,
        wholes: Wholes,
        caller: Caller,
        requests: Requests,
        record: WholeRecord,
        renew: Callable[[], Awaitable[None]],
        time_left: Callable[[], float | None],
        part_seconds: float,
    ) -> None:
        self._requests, self._record, self._renew = requests, record, renew
        self._store, self._part_seconds = wholes._store, part_seconds
        self._maker = PartMaker(
            gateway=wholes._gateway,
            store=wholes._store,
            post_create=wholes._post_create,
            caller=caller,
            record=record,
            time_left=time_left,
        )
        self._limit = asyncio.Semaphore(wholes.policy.creates_at_once)
        self._failed = False
        self.made: dict[int, batch_pb2.Batch] = {}

    async def part(self, part: PartRecord) -> None:
        if part.upstream_id is not None or part.rerun_of is not None:  # made, or a re-run (the re-runner's)
            return
        async with self._limit:
            if self._failed:
                return
            try:
                async with asyncio.timeout(self._part_seconds):  # nothing sent past the claim renewed here
                    await self._renew()
                    self.made[part.index] = await self._maker.make(
                        part, lambda: self._part_request(part), sent_before=part.sent_at, mark_sent=True
                    )
            except BaseException:
                self._failed = True
                raise

    async def _part_request(self, part: PartRecord) -> batch_service_pb2.CreateBatchRequest:
        header = batch_service_pb2.CreateBatchRequest.FromString(self._record.header)
        return await self._requests.part(header, part.first, part.first + part.count)
