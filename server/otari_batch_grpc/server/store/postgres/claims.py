"""PostgreSQL's idempotency claims: a claim is a row (`INSERT ... ON CONFLICT DO NOTHING`), held by one create
attempt at a time until a deadline of its own, by the database's clock (see Claim)."""

from __future__ import annotations

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import Claim
from otari_batch_grpc.server.store.postgres.connection import PostgresConnection

# The claim made (`made`), or taken over from an attempt that is over (`taken`), or else the row that holds the key
# as it is. When another transaction's claim committed while this statement waited on it, no part answers (this
# statement's snapshot predates it): the caller asks again. Times are the database's clock, shared by replicas.
_CLAIM = """
WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) AS now),
made AS (
    INSERT INTO idempotency (owner, request_id, fingerprint, provider, batch_id, created_at, holder, attempt_until)
    SELECT $1, $2, $3, $4, NULL, now, $5, now + $6::float8 FROM clock
    ON CONFLICT DO NOTHING
    RETURNING fingerprint, provider, batch_id, created_at, attempt_until
),
taken AS (
    UPDATE idempotency i SET holder = $5, attempt_until = (SELECT now FROM clock) + $6::float8
    WHERE i.owner = $1 AND i.request_id = $2 AND i.fingerprint = $3 AND i.batch_id IS NULL
      AND i.attempt_until <= (SELECT now FROM clock)
    RETURNING i.fingerprint, i.provider, i.batch_id, i.created_at, i.attempt_until
)
SELECT true AS mine, false AS recovering, fingerprint, provider, batch_id, created_at, $6::float8 AS left FROM made
UNION ALL
SELECT true, true, fingerprint, provider, batch_id, created_at, $6::float8 FROM taken
UNION ALL
SELECT false, false, fingerprint, provider, batch_id, created_at, attempt_until - (SELECT now FROM clock)
FROM idempotency WHERE owner = $1 AND request_id = $2 AND NOT EXISTS (SELECT 1 FROM taken)
"""


class PostgresClaims(PostgresConnection):
    async def claim(
        self, owner: str, request_id: str, fingerprint: str, provider: str, *, holder: str, attempt_seconds: float
    ) -> Claim:
        while True:
            row = await self._write_row(_CLAIM, owner, request_id, fingerprint, provider, holder, attempt_seconds)
            if row is not None:
                return Claim(row[0], row[1], row[2], row[3], row[4], row[5], row[6])

    async def settle_claim(self, owner: str, request_id: str, batch_id: str) -> None:
        await self._execute(queries.SETTLE_CLAIM, batch_id, owner, request_id)

    async def release_claim(self, owner: str, request_id: str, holder: str) -> None:
        await self._execute(queries.RELEASE_CLAIM, owner, request_id, holder)

    async def end_attempt(self, owner: str, request_id: str, holder: str, *, after: float) -> None:
        await self._execute(
            "UPDATE idempotency SET attempt_until = extract(epoch FROM clock_timestamp()) + $4::float8 "
            "WHERE owner = $1 AND request_id = $2 AND holder = $3 AND batch_id IS NULL",
            owner,
            request_id,
            holder,
            after,
        )

    async def renew_claim(self, owner: str, request_id: str, holder: str, *, attempt_seconds: float) -> bool:
        status = await self._execute(
            "UPDATE idempotency SET attempt_until = extract(epoch FROM clock_timestamp()) + $4::float8 "
            "WHERE owner = $1 AND request_id = $2 AND holder = $3 AND batch_id IS NULL",
            owner,
            request_id,
            holder,
            attempt_seconds,
        )
        return status.endswith(" 1")
