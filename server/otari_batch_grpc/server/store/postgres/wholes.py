"""PostgreSQL's batches of several parts: each as made, and its parts (the plan, and each part upstream)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import PartPlan, PartRecord, WholeRecord
from otari_batch_grpc.server.store.postgres.connection import PostgresConnection

if TYPE_CHECKING:
    from otari_batch_grpc.server.store.postgres.connection import Connection


# Take a part not made and not marked sent lately, by the database's clock: the time it was marked before.
_TAKE_PART = """
WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) AS now),
old AS (SELECT sent_at FROM parts WHERE batch_id = $1 AND idx = $2 FOR UPDATE)
UPDATE parts p SET sent_at = (SELECT now FROM clock)
FROM old
WHERE p.batch_id = $1 AND p.idx = $2 AND p.upstream_id IS NULL AND old.sent_at <= (SELECT now FROM clock) - $3::float8
RETURNING old.sent_at
"""


class PostgresWholes(PostgresConnection):
    async def add_whole(self, whole: WholeRecord, parts: Sequence[PartPlan]) -> WholeRecord:
        async def work(conn: Connection) -> WholeRecord:
            status = await conn.execute(queries.ADD_WHOLE, *whole.row())
            if status.endswith(" 1"):
                await conn.executemany(queries.ADD_PART, [p.row(whole.id) for p in parts])
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

    async def part_made_as(self, upstream_id: str) -> tuple[str, str, int] | None:
        row = await self._fetchrow(queries.PART_MADE_AS, upstream_id)
        return (str(row[0]), str(row[1]), int(row[2])) if row is not None else None

    async def part_custom_ids(self, batch_id: str, index: int) -> bytes:
        value = await self._fetchval(queries.PART_CUSTOM_IDS, batch_id, index)
        return bytes(value) if value is not None else b""

    async def part_sent(self, batch_id: str, index: int, at: float) -> None:
        await self._execute(queries.PART_SENT, batch_id, index, at)

    async def part_seen(self, batch_id: str, index: int, snapshot: bytes, *, terminal: bool, upstream_id: str) -> None:
        await self._execute(queries.PART_SEEN, batch_id, index, upstream_id, snapshot, terminal)

    async def abandon_part(self, batch_id: str, index: int, snapshot: bytes, *, unheld_since: float) -> bool:
        status = await self._execute(queries.ABANDON_PART, batch_id, index, snapshot, True, unheld_since)
        return status.endswith(" 1")

    async def keep_bodies(self, batch_id: str, index: int, bodies: bytes) -> None:
        await self._execute(queries.KEEP_BODIES, batch_id, index, bodies)

    async def part_bodies(self, batch_id: str, index: int) -> bytes:
        value = await self._fetchval(queries.PART_BODIES, batch_id, index)
        return bytes(value) if value is not None else b""

    async def part_indices(self, batch_id: str, index: int) -> bytes:
        value = await self._fetchval(queries.PART_INDICES, batch_id, index)
        return bytes(value) if value is not None else b""

    async def examine_part(self, batch_id: str, index: int, rerun: PartPlan | None) -> bool:
        async def work(conn: Connection) -> bool:
            if not (await conn.execute(queries.EXAMINE_PART, batch_id, index, True)).endswith(" 1"):
                return False
            if rerun is not None:  # the batch's row locked: re-runs of two parts at once take two indexes
                await conn.execute("SELECT 1 FROM wholes WHERE id = $1 FOR UPDATE", batch_id)
                at = int(await conn.fetchval(queries.NEXT_PART_INDEX, batch_id))
                await conn.execute(queries.ADD_PART, *dataclasses.replace(rerun, index=at).row(batch_id))
            return True

        return await self._write(work)

    async def take_part(self, batch_id: str, index: int, *, hold_seconds: float) -> float | None:
        row = await self._write_row(_TAKE_PART, batch_id, index, hold_seconds)
        return float(row[0]) if row is not None else None

    async def delegate(self, batch_id: str, owner: str, sealed: bytes) -> None:
        await self._execute(queries.DELEGATE, batch_id, owner, sealed, time.time())

    async def delegation(self, batch_id: str) -> tuple[str, bytes] | None:
        row = await self._fetchrow(queries.DELEGATION, batch_id)
        return (str(row[0]), bytes(row[1])) if row is not None else None

    async def end_reruns(self, batch_id: str) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute(queries.DROP_DELEGATION, batch_id)
            await conn.execute(queries.FORGET_BODIES, batch_id)

        await self._write(work)

    async def delegated(self, limit: int) -> list[str]:
        return [str(row[0]) for row in await self._fetch(queries.DELEGATED, limit)]

    async def cancel_whole(self, batch_id: str) -> None:
        await self._execute(queries.CANCEL_WHOLE, batch_id, True)

    async def drop_whole(self, batch_id: str) -> None:
        await self._execute(queries.DROP_WHOLE, batch_id)
