"""PostgreSQL's results cache: a completed batch's results as chunks ready to send, trusted once whole."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.postgres.connection import PostgresConnection

if TYPE_CHECKING:
    from otari_batch_grpc.server.store.postgres.connection import Connection

# The complete sets older than the age limit, then the oldest of the rest past the byte budget.
_TRIM = """
WITH aged AS (
    DELETE FROM result_sets WHERE complete AND fetched_at < $1 RETURNING batch_id
),
ranked AS (
    SELECT batch_id, sum(bytes) OVER (ORDER BY fetched_at DESC, batch_id) AS running
    FROM result_sets WHERE complete AND fetched_at >= $1
),
over AS (
    DELETE FROM result_sets r USING ranked k WHERE r.batch_id = k.batch_id AND k.running > $2 RETURNING r.batch_id
)
SELECT (SELECT count(*) FROM aged) + (SELECT count(*) FROM over)
"""


class PostgresResults(PostgresConnection):
    async def result_set(self, batch_id: str) -> int | None:
        value = await self._fetchval(queries.RESULT_SET, batch_id)
        return int(value) if value is not None else None

    async def begin_results(self, batch_id: str) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute(queries.DROP_RESULTS, batch_id)
            await conn.execute(queries.BEGIN_RESULTS, batch_id, time.time())

        await self._write(work)

    async def add_result_chunk(self, batch_id: str, first_index: int, count: int, payload: bytes) -> None:
        await self._execute(queries.ADD_RESULT_CHUNK, batch_id, first_index, count, payload)

    async def finish_results(self, batch_id: str, *, items: int, nbytes: int) -> None:
        await self._execute(queries.FINISH_RESULTS, items, nbytes, time.time(), batch_id)

    async def drop_results(self, batch_id: str) -> None:
        await self._execute(queries.DROP_RESULTS, batch_id)

    async def result_chunks(self, batch_id: str, start: int, *, limit: int) -> list[tuple[int, int, bytes]]:
        rows = await self._fetch(queries.RESULT_CHUNKS, batch_id, start, limit)
        return [(r[0], r[1], r[2]) for r in rows]

    async def trim_results(self, *, max_bytes: int, max_age: float) -> int:
        cutoff = time.time() - max_age
        return int(await self._write_value(_TRIM, cutoff, max_bytes))

    async def results_bytes(self) -> int:
        return int(await self._fetchval(queries.RESULTS_BYTES))
