"""SQLite's idempotency claims: one process writes this file, so each claim is one transaction of the one
writer (see Store.claim)."""

from __future__ import annotations

import time

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import Claim
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteClaims(SqliteConnection):
    async def claim(
        self, owner: str, request_id: str, fingerprint: str, provider: str, *, holder: str, attempt_seconds: float
    ) -> Claim:
        async with self._tx():
            now = time.time()
            until = now + attempt_seconds
            cursor = await self._db.execute(
                "INSERT INTO idempotency (owner, request_id, fingerprint, provider, batch_id, created_at, holder, "
                "attempt_until) VALUES (?, ?, ?, ?, NULL, ?, ?, ?) ON CONFLICT DO NOTHING",
                (owner, request_id, fingerprint, provider, now, holder, until),
            )
            if cursor.rowcount == 1:
                return Claim(True, False, fingerprint, provider, None, now, attempt_seconds)
            row = await self._fetch_one(
                "SELECT fingerprint, provider, batch_id, created_at, attempt_until FROM idempotency "
                "WHERE owner = ? AND request_id = ?",
                (owner, request_id),
            )
            assert row is not None
            claim = Claim(False, False, row[0], row[1], row[2], float(row[3]), float(row[4]) - now)
            if claim.fingerprint != fingerprint or claim.batch_id is not None or claim.attempt_left > 0:
                return claim
            await self._db.execute(
                "UPDATE idempotency SET holder = ?, attempt_until = ? WHERE owner = ? AND request_id = ?",
                (holder, until, owner, request_id),
            )
        return Claim(True, True, claim.fingerprint, claim.provider, None, claim.created_at, attempt_seconds)

    async def settle_claim(self, owner: str, request_id: str, batch_id: str) -> None:
        await self._write(queries.SETTLE_CLAIM, batch_id, owner, request_id)

    async def release_claim(self, owner: str, request_id: str, holder: str) -> None:
        await self._write(queries.RELEASE_CLAIM, owner, request_id, holder)

    async def end_attempt(self, owner: str, request_id: str, holder: str, *, after: float) -> None:
        async with self._tx():
            await self._db.execute(
                "UPDATE idempotency SET attempt_until = ? "
                "WHERE owner = ? AND request_id = ? AND holder = ? AND batch_id IS NULL",
                (time.time() + after, owner, request_id, holder),
            )

    async def renew_claim(self, owner: str, request_id: str, holder: str, *, attempt_seconds: float) -> bool:
        async with self._tx():
            cursor = await self._db.execute(
                "UPDATE idempotency SET attempt_until = ? "
                "WHERE owner = ? AND request_id = ? AND holder = ? AND batch_id IS NULL",
                (time.time() + attempt_seconds, owner, request_id, holder),
            )
            return cursor.rowcount == 1
