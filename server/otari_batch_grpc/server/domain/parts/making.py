"""One part of a batch made upstream with one caller's key: found, when an earlier attempt sent it and got no reply
(by the stamp it carries), or made now, stamped; then recorded. So no part is made twice (see wholes, reruns)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.observations import count_requests
from otari_batch_grpc.server.domain.errors import Code, ServiceError
from otari_batch_grpc.server.domain.upstream_search import Unknown, find_made
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.store import PartRecord, Store, WholeRecord
from otari_batch_grpc.server.util.stamps import part_stamp, stamped_part
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

# Make one part upstream: (caller, the part encoded as the gateway's create, time left) -> the gateway's answer.
PostCreate = Callable[..., Awaitable[dict[str, Any]]]
PartRequest = Callable[[], Awaitable[batch_service_pb2.CreateBatchRequest]]


class PartMaker:
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        post_create: PostCreate,
        caller: Caller,
        record: WholeRecord,
        time_left: Callable[[], float | None],
    ) -> None:
        self._gateway, self._store, self._post_create = gateway, store, post_create
        # One part read and encoded at a time (megabytes each): each is sent as soon as it is ready, the first
        # sooner than if all were encoded at once.
        self._encoding = asyncio.Lock()
        self._caller, self._record, self._time_left = caller, record, time_left

    async def make(
        self, part: PartRecord, request: PartRequest, *, sent_before: float, mark_sent: bool
    ) -> batch_pb2.Batch:
        """The part upstream: found when an attempt sent it at `sent_before` (0.0: none did), else made, after
        marking it sent (`mark_sent`; a maker that took the part marked it already)."""
        record = self._record
        found = await self._find(part, sent_before) if sent_before else None
        if found is None:
            if mark_sent:
                await self._store.part_sent(record.id, part.index, time.time())
            async with self._encoding:
                body = await convert.encoded_create(await request(), stamp=part_stamp(record.id, part.index))
            found = await self._post_create(self._caller, body, time_left=self._time_left())
        batch = convert.batch_from_json(found)
        count_requests(batch, part.count)
        terminal = batch.status in convert.TERMINAL_STATUSES
        snapshot = batch.SerializeToString(deterministic=True)
        await self._store.part_seen(record.id, part.index, snapshot, terminal=terminal, upstream_id=batch.id)
        return batch

    async def _find(self, part: PartRecord, since: float) -> dict[str, Any] | None:
        """The part an earlier attempt sent and got no reply for, if it made it."""
        record = self._record

        def match(item: dict[str, Any]) -> bool:
            metadata = item.get("metadata")
            return isinstance(metadata, dict) and stamped_part(metadata) == (record.id, part.index)

        try:
            return await find_made(
                self._gateway, self._store, self._caller, record.provider, match, since=since, time_left=self._time_left
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
