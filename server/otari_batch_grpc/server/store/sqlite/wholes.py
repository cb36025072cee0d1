"""SQLite's batches of several parts: each as made, and its parts (the plan, and each part upstream)."""

from __future__ import annotations

from collections.abc import Sequence

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import PartPlan, PartRecord, WholeRecord
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteWholes(SqliteConnection):
    async def add_whole(self, whole: WholeRecord, parts: Sequence[PartPlan]) -> WholeRecord:
        async with self._tx():
            cursor = await self._db.execute(queries.for_sqlite(queries.ADD_WHOLE), _whole_row(whole))
            if cursor.rowcount == 1:
                await self._db.executemany(
                    queries.for_sqlite(queries.ADD_PART),
                    [(whole.id, p.index, p.first, p.count, p.custom_ids) for p in parts],
                )
                return whole
            cursor = await self._db.execute(queries.for_sqlite(queries.WHOLE), (whole.id,))
            row = await cursor.fetchone()
        assert row is not None
        return WholeRecord.of_row(row)

    async def whole(self, batch_id: str) -> WholeRecord | None:
        rows = await self._rows(queries.WHOLE, batch_id)
        return WholeRecord.of_row(rows[0]) if rows else None

    async def parts(self, batch_id: str) -> list[PartRecord]:
        return [PartRecord.of_row(row) for row in await self._rows(queries.PARTS, batch_id)]

    async def part_custom_ids(self, batch_id: str, index: int) -> bytes:
        value = await self._scalar(queries.PART_CUSTOM_IDS, batch_id, index)
        return bytes(value) if value is not None else b""

    async def part_sent(self, batch_id: str, index: int, at: float) -> None:
        await self._write(queries.PART_SENT, batch_id, index, at)

    async def part_seen(self, batch_id: str, index: int, snapshot: bytes, *, terminal: bool, upstream_id: str) -> None:
        await self._write(queries.PART_SEEN, batch_id, index, upstream_id, snapshot, terminal)

    async def cancel_whole(self, batch_id: str) -> None:
        await self._write(queries.CANCEL_WHOLE, batch_id, True)

    async def drop_whole(self, batch_id: str) -> None:
        await self._write(queries.DROP_WHOLE, batch_id)


def _whole_row(whole: WholeRecord) -> tuple[object, ...]:
    return (
        whole.id,
        whole.owner,
        whole.provider,
        whole.request_id,
        whole.requests,
        whole.header,
        whole.created_at,
        whole.cancel_asked,
    )
