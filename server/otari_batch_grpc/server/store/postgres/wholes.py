"""PostgreSQL's batches of several parts: each as made, and its parts (the plan, and each part upstream)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import PartPlan, PartRecord, WholeRecord
from otari_batch_grpc.server.store.postgres.connection import PostgresConnection

if TYPE_CHECKING:
    from otari_batch_grpc.server.store.postgres.connection import Connection


class PostgresWholes(PostgresConnection):
    async def add_whole(self, whole: WholeRecord, parts: Sequence[PartPlan]) -> WholeRecord:
        async def work(conn: Connection) -> WholeRecord:
            status = await conn.execute(
                queries.ADD_WHOLE,
                whole.id,
                whole.owner,
                whole.provider,
                whole.request_id,
                whole.requests,
                whole.header,
                whole.created_at,
                whole.cancel_asked,
            )
            if status.endswith(" 1"):
                await conn.executemany(
                    queries.ADD_PART, [(whole.id, p.index, p.first, p.count, p.custom_ids) for p in parts]
                )
                return whole
            row = await conn.fetchrow(queries.WHOLE, whole.id)
            assert row is not None
            return WholeRecord.of_row(tuple(row))

        return await self._write(work)

    async def whole(self, batch_id: str) -> WholeRecord | None:
        row = await self._fetchrow(queries.WHOLE, batch_id)
        return WholeRecord.of_row(tuple(row)) if row is not None else None

    async def parts(self, batch_id: str) -> list[PartRecord]:
        return [PartRecord.of_row(tuple(row)) for row in await self._fetch(queries.PARTS, batch_id)]

    async def part_custom_ids(self, batch_id: str, index: int) -> bytes:
        value = await self._fetchval(queries.PART_CUSTOM_IDS, batch_id, index)
        return bytes(value) if value is not None else b""

    async def part_sent(self, batch_id: str, index: int, at: float) -> None:
        await self._execute(queries.PART_SENT, batch_id, index, at)

    async def part_seen(self, batch_id: str, index: int, snapshot: bytes, *, terminal: bool, upstream_id: str) -> None:
        await self._execute(queries.PART_SEEN, batch_id, index, upstream_id, snapshot, terminal)

    async def cancel_whole(self, batch_id: str) -> None:
        await self._execute(queries.CANCEL_WHOLE, batch_id, True)

    async def drop_whole(self, batch_id: str) -> None:
        await self._execute(queries.DROP_WHOLE, batch_id)
