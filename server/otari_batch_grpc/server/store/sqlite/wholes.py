"""SQLite's batches of several parts: each as made, and its parts (the plan, and each part upstream)."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Sequence

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import PartPlan, PartRecord, WholeRecord
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteWholes(SqliteConnection):
    async def add_whole(self, whole: WholeRecord, parts: Sequence[PartPlan]) -> WholeRecord:
        def add(db: sqlite3.Connection) -> WholeRecord:
            if db.execute(queries.for_sqlite(queries.ADD_WHOLE), whole.row()).rowcount == 1:
                db.executemany(queries.for_sqlite(queries.ADD_PART), [p.row(whole.id) for p in parts])
                return whole
            row = db.execute(queries.for_sqlite(queries.WHOLE), (whole.id,)).fetchone()
            assert row is not None
            return WholeRecord.of_row(row)

        return await self._transaction(add)

    async def whole(self, batch_id: str) -> WholeRecord | None:
        rows = await self._rows(queries.WHOLE, batch_id)
        return WholeRecord.of_row(rows[0]) if rows else None

    async def parts(self, batch_id: str) -> list[PartRecord]:
        return [PartRecord.of_row(row) for row in await self._rows(queries.PARTS, batch_id)]

    async def part_made_as(self, upstream_id: str) -> tuple[str, str, int] | None:
        rows = await self._rows(queries.PART_MADE_AS, upstream_id)
        return (str(rows[0][0]), str(rows[0][1]), int(rows[0][2])) if rows else None

    async def part_custom_ids(self, batch_id: str, index: int) -> bytes:
        value = await self._scalar(queries.PART_CUSTOM_IDS, batch_id, index)
        return bytes(value) if value is not None else b""

    async def part_sent(self, batch_id: str, index: int, at: float) -> None:
        await self._write(queries.PART_SENT, batch_id, index, at)

    async def part_seen(self, batch_id: str, index: int, snapshot: bytes, *, terminal: bool, upstream_id: str) -> None:
        await self._write(queries.PART_SEEN, batch_id, index, upstream_id, snapshot, terminal)

    async def abandon_part(self, batch_id: str, index: int, snapshot: bytes, *, unheld_since: float) -> bool:
        return await self._write(queries.ABANDON_PART, batch_id, index, snapshot, True, unheld_since) == 1

    async def keep_bodies(self, batch_id: str, index: int, bodies: bytes) -> None:
        await self._write(queries.KEEP_BODIES, batch_id, index, bodies)

    async def part_bodies(self, batch_id: str, index: int) -> bytes:
        value = await self._scalar(queries.PART_BODIES, batch_id, index)
        return bytes(value) if value is not None else b""

    async def part_indices(self, batch_id: str, index: int) -> bytes:
        value = await self._scalar(queries.PART_INDICES, batch_id, index)
        return bytes(value) if value is not None else b""

    async def examine_part(self, batch_id: str, index: int, rerun: PartPlan | None) -> bool:
        def examine(db: sqlite3.Connection) -> bool:
            if db.execute(queries.for_sqlite(queries.EXAMINE_PART), (batch_id, index, True)).rowcount != 1:
                return False
            if rerun is not None:
                row = db.execute(queries.for_sqlite(queries.NEXT_PART_INDEX), (batch_id,)).fetchone()
                assert row is not None
                plan = dataclasses.replace(rerun, index=int(row[0]))
                db.execute(queries.for_sqlite(queries.ADD_PART), plan.row(batch_id))
            return True

        return await self._transaction(examine)

    async def take_part(self, batch_id: str, index: int, *, hold_seconds: float) -> float | None:
        def take(db: sqlite3.Connection) -> float | None:
            row = db.execute(queries.for_sqlite(queries.PART_SENT_AT), (batch_id, index)).fetchone()
            now = time.time()
            if row is None or row[0] is not None or float(row[1]) > now - hold_seconds:
                return None
            db.execute(queries.for_sqlite(queries.PART_SENT), (batch_id, index, now))
            return float(row[1])

        return await self._transaction(take)

    async def delegate(self, batch_id: str, owner: str, sealed: bytes) -> None:
        await self._write(queries.DELEGATE, batch_id, owner, sealed, time.time())

    async def delegation(self, batch_id: str) -> tuple[str, bytes] | None:
        rows = await self._rows(queries.DELEGATION, batch_id)
        return (str(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def end_reruns(self, batch_id: str) -> None:
        def end(db: sqlite3.Connection) -> None:
            db.execute(queries.for_sqlite(queries.DROP_DELEGATION), (batch_id,))
            db.execute(queries.for_sqlite(queries.FORGET_BODIES), (batch_id,))

        await self._transaction(end)

    async def delegated(self, limit: int) -> list[str]:
        return [str(row[0]) for row in await self._rows(queries.DELEGATED, limit)]

    async def cancel_whole(self, batch_id: str) -> None:
        await self._write(queries.CANCEL_WHOLE, batch_id, True)

    async def drop_whole(self, batch_id: str) -> None:
        await self._write(queries.DROP_WHOLE, batch_id)
