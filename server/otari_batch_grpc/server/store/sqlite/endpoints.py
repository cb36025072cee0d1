"""SQLite's webhook endpoints (#32)."""

from __future__ import annotations

import sqlite3
import time

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import ClaimedDelivery, DeliveryRecord, EndpointRecord, FollowedBatch
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteEndpoints(SqliteConnection):
    async def add_endpoint(self, endpoint: EndpointRecord, *, limit: int) -> bool:
        return await self._changed(queries.ADD_ENDPOINT, *endpoint.row(), limit)

    async def endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        rows = await self._rows(queries.ENDPOINT, endpoint_id)
        return EndpointRecord.of_row(rows[0]) if rows else None

    async def endpoints_of(self, owner: str) -> list[EndpointRecord]:
        return [EndpointRecord.of_row(row) for row in await self._rows(queries.ENDPOINTS_OF, owner)]

    async def update_endpoint(self, endpoint: EndpointRecord, *, read_at: float) -> bool:
        e = endpoint
        values = (e.url, e.events, e.metadata_filter, e.description, e.secrets, e.enabled, e.disabled_reason)
        return await self._changed(queries.UPDATE_ENDPOINT, e.id, e.owner, *values, e.updated_at, read_at, e.sealed_key)

    async def delete_endpoint(self, endpoint_id: str, owner: str) -> bool:
        return await self._changed(queries.DELETE_ENDPOINT, endpoint_id, owner)

    async def deliveries(self, endpoint_id: str, limit: int) -> list[DeliveryRecord]:
        return [DeliveryRecord.of_row(row) for row in await self._rows(queries.DELIVERIES_OF, endpoint_id, limit)]

    async def claim_deliveries(
        self, holder: str, *, now: float, lease_seconds: float, limit: int, per_endpoint: int
    ) -> list[ClaimedDelivery]:
        sql = queries.for_sqlite(queries.CLAIM_DELIVERIES.format(lock=""))

        def claim(db: sqlite3.Connection) -> list[ClaimedDelivery]:
            rows = db.execute(sql, (holder, now, lease_seconds, limit, per_endpoint)).fetchall()
            claimed = sorted((DeliveryRecord.of_row(row) for row in rows), key=lambda d: (d.next_at, d.id))
            ids = f"IN ({', '.join('?' * len(claimed))})"
            targets = db.execute(queries.CLAIMED_TARGETS.format(ids=ids), [d.id for d in claimed]).fetchall()
            return ClaimedDelivery.joined(claimed, targets)

        return await self._transaction(claim)

    async def finish_delivery(
        self, delivery_id: int, holder: str, *, state: str, attempts: int, next_at: float, status: int, error: str,
        done_at: float,
    ) -> bool:  # fmt: skip
        values = (delivery_id, holder, state, attempts, next_at, status, error, done_at)
        finish, supersede = (queries.for_sqlite(sql) for sql in queries.FINISH_DELIVERY)

        def finished(db: sqlite3.Connection) -> bool:
            if db.execute(finish, values).rowcount <= 0:
                return False  # (not its holder's now: another claim took it)
            if state == "pending":
                db.execute(supersede, (delivery_id, time.time()))
            return True

        return await self._transaction(finished)

    async def enable_endpoint(self, endpoint_id: str, *, now: float) -> bool:
        return await self._changed(queries.ENABLE_ENDPOINT, endpoint_id, True, now)

    async def disable_endpoint(self, endpoint_id: str, reason: str, *, now: float) -> bool:
        return await self._changed(queries.DISABLE_ENDPOINT, endpoint_id, False, reason, now)

    async def disable_endpoints_of(self, owner: str, reason: str, *, now: float) -> int:
        endpoints, events = (queries.for_sqlite(sql) for sql in queries.DISABLE_ENDPOINTS_OF)

        def disable(db: sqlite3.Connection) -> int:
            disabled = db.execute(endpoints, (owner, False, reason, now, b"")).rowcount
            db.execute(events, (owner, reason))
            return disabled

        return await self._transaction(disable)

    async def sweep_outbox(self, *, before: float, now: float) -> int:
        def sweep(db: sqlite3.Connection) -> int:
            gone = max(db.execute(queries.for_sqlite(queries.SWEEP_STALE), (now,)).rowcount, 0)
            for sql in queries.SWEEP_OUTBOX:
                gone += max(
                    db.execute(queries.for_sqlite(sql), (before, now) if "$2" in sql else (before,)).rowcount, 0
                )
            return gone

        return await self._transaction(sweep)

    async def endpoint_batches(self, limit: int) -> list[FollowedBatch]:
        rows = await self._rows(queries.ENDPOINT_BATCHES, limit)
        return [FollowedBatch(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4])) for r in rows]

    async def _changed(self, sql: str, *params: object) -> bool:
        """One statement in a transaction of its own: whether it changed a row."""
        return await self._write(sql, *params) > 0
