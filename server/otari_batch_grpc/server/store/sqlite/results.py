"""SQLite's results cache: a completed batch's results as chunks ready to send, trusted once whole."""

from __future__ import annotations

import sqlite3
import time

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteResults(SqliteConnection):
    async def result_set(self, batch_id: str) -> int | None:
        value = await self._scalar(queries.RESULT_SET, batch_id)
        return int(value) if value is not None else None

    async def begin_results(self, batch_id: str) -> None:
        def begin(db: sqlite3.Connection) -> None:
            db.execute(queries.for_sqlite(queries.DROP_RESULTS), (batch_id,))
            db.execute(queries.for_sqlite(queries.BEGIN_RESULTS), (batch_id, time.time()))

        await self._transaction(begin)

    async def add_result_chunk(self, batch_id: str, first_index: int, count: int, payload: bytes) -> None:
        await self._write(queries.ADD_RESULT_CHUNK, batch_id, first_index, count, payload)

    async def finish_results(self, batch_id: str, *, items: int, nbytes: int) -> None:
        await self._write(queries.FINISH_RESULTS, items, nbytes, time.time(), batch_id)

    async def drop_results(self, batch_id: str) -> None:
        await self._write(queries.DROP_RESULTS, batch_id)

    async def result_chunks(self, batch_id: str, start: int, *, limit: int) -> list[tuple[int, int, bytes]]:
        rows = await self._rows(queries.RESULT_CHUNKS, batch_id, start, limit)
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    async def trim_results(self, *, max_bytes: int, max_age: float) -> int:
        def trim(db: sqlite3.Connection) -> int:
            too_old = time.time() - max_age
            dropped = db.execute("DELETE FROM result_sets WHERE complete = 1 AND fetched_at < ?", (too_old,)).rowcount
            kept = 0
            over: list[tuple[str]] = []
            sizes = "SELECT batch_id, bytes FROM result_sets WHERE complete = 1 ORDER BY fetched_at DESC"
            for batch_id, size in db.execute(sizes).fetchall():
                kept += size
                if kept > max_bytes:
                    over.append((batch_id,))
            db.executemany(queries.for_sqlite(queries.DROP_RESULTS), over)
            return dropped + len(over)

        return await self._transaction(trim)

    async def results_bytes(self) -> int:
        value = await self._scalar(queries.RESULTS_BYTES)
        return int(value) if value is not None else 0
