"""PostgreSQL's webhook endpoints (#32)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import ClaimedDelivery, DeliveryRecord, EndpointRecord, FollowedBatch
from otari_batch_grpc.server.store.postgres.connection import CLAIM_LOCK, LOCK_CLASS, PostgresConnection

if TYPE_CHECKING:
    from otari_batch_grpc.server.store.postgres.connection import Connection

_CLAIMED_TARGETS = queries.CLAIMED_TARGETS.format(ids="= ANY($1::bigint[])")


class PostgresEndpoints(PostgresConnection):
    async def add_endpoint(self, endpoint: EndpointRecord, *, limit: int) -> bool:
        return _one(await self._execute(queries.ADD_ENDPOINT, *endpoint.row(), limit))

    async def endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        row = await self._fetchrow(queries.ENDPOINT, endpoint_id)
        return EndpointRecord.of_row(tuple(row)) if row is not None else None

    async def endpoints_of(self, owner: str) -> list[EndpointRecord]:
        return [EndpointRecord.of_row(tuple(row)) for row in await self._fetch(queries.ENDPOINTS_OF, owner)]

    async def update_endpoint(self, endpoint: EndpointRecord, *, read_at: float) -> bool:
        e = endpoint
        values = (e.url, e.events, e.metadata_filter, e.description, e.secrets, e.enabled, e.disabled_reason)
        key = e.sealed_key
        return _one(await self._execute(queries.UPDATE_ENDPOINT, e.id, e.owner, *values, e.updated_at, read_at, key))

    async def delete_endpoint(self, endpoint_id: str, owner: str) -> bool:
        return _one(await self._execute(queries.DELETE_ENDPOINT, endpoint_id, owner))

    async def deliveries(self, endpoint_id: str, limit: int) -> list[DeliveryRecord]:
        rows = await self._fetch(queries.DELIVERIES_OF, endpoint_id, limit)
        return [DeliveryRecord.of_row(tuple(row)) for row in rows]

    async def claim_deliveries(
        self, holder: str, *, now: float, lease_seconds: float, limit: int, per_endpoint: int
    ) -> list[ClaimedDelivery]:
        # One replica's claim at a time (claims are few and short: a round's worth of events each): its statement,
        # begun once the one before has committed, counts every try that claim leased, so no endpoint is given more
        # than `per_endpoint` at once. The rows stay locked (SKIP LOCKED) against a sweep or a finish meanwhile.
        sql = queries.CLAIM_DELIVERIES.format(lock=" FOR UPDATE OF o SKIP LOCKED")

        async def work(conn: Connection) -> list[ClaimedDelivery]:
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, CLAIM_LOCK)
            rows = await conn.fetch(sql, holder, now, lease_seconds, limit, per_endpoint)
            claimed = sorted((DeliveryRecord.of_row(tuple(row)) for row in rows), key=lambda d: (d.next_at, d.id))
            targets = await conn.fetch(_CLAIMED_TARGETS, [d.id for d in claimed])
            return ClaimedDelivery.joined(claimed, [tuple(row) for row in targets])

        return await self._write(work)

    async def finish_delivery(
        self, delivery_id: int, holder: str, *, state: str, attempts: int, next_at: float, status: int, error: str,
        done_at: float,
    ) -> bool:  # fmt: skip
        values = (delivery_id, holder, state, attempts, next_at, status, error, done_at)
        finish, supersede = queries.FINISH_DELIVERY

        async def work(conn: Connection) -> bool:
            finished = _one(await conn.execute(finish, *values))
            if finished and state == "pending":
                await conn.execute(supersede, delivery_id, time.time())
            return finished

        return await self._write(work)

    async def enable_endpoint(self, endpoint_id: str, *, now: float) -> bool:
        return _one(await self._execute(queries.ENABLE_ENDPOINT, endpoint_id, True, now))

    async def disable_endpoint(self, endpoint_id: str, reason: str, *, now: float) -> bool:
        return _one(await self._execute(queries.DISABLE_ENDPOINT, endpoint_id, False, reason, now))

    async def disable_endpoints_of(self, owner: str, reason: str, *, now: float) -> int:
        endpoints, events = queries.DISABLE_ENDPOINTS_OF

        async def work(conn: Connection) -> int:
            status = await conn.execute(endpoints, owner, False, reason, now, b"")
            await conn.execute(events, owner, reason)
            return int(status.rsplit(" ", 1)[-1])

        return await self._write(work)

    async def sweep_outbox(self, *, before: float, now: float) -> int:
        async def work(conn: Connection) -> int:
            dropped, forgotten = queries.SWEEP_OUTBOX
            statuses = [await conn.execute(queries.SWEEP_STALE, now)]
            statuses += [await conn.execute(dropped, before, now), await conn.execute(forgotten, before)]
            return sum(int(status.rsplit(" ", 1)[-1]) for status in statuses)

        return await self._write(work)

    async def endpoint_batches(self, limit: int) -> list[FollowedBatch]:
        rows = await self._fetch(queries.ENDPOINT_BATCHES, limit)
        return [FollowedBatch(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4])) for r in rows]


def _one(status: str) -> bool:
    """Whether a command's status says it changed a row ("INSERT 0 1", "UPDATE 1", "DELETE 1")."""
    return not status.endswith(" 0")
