"""SQLite's idempotency claims: one process writes this file, so each claim is one transaction of the one
writer (see Store.claim)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import Claim
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteClaims(SqliteConnection):
    async def claim(
        self, owner: str, request_id: str, fingerprint: str, provider: str, *, holder: str, attempt_seconds: float
    ) -> Claim:
        def claim(db: sqlite3.Connection) -> Claim:
            now = time.time()
            until = now + attempt_seconds
            cursor = db.execute(
                "INSERT INTO idempotency (owner, request_id, fingerprint, provider, batch_id, created_at, holder, "
                "attempt_until) VALUES (?, ?, ?, ?, NULL, ?, ?, ?) ON CONFLICT DO NOTHING",
                (owner, request_id, fingerprint, provider, now, holder, until),
            )
            if cursor.rowcount == 1:
                return Claim(True, False, fingerprint, provider, None, now, attempt_seconds)
            row = db.execute(
                "SELECT fingerprint, provider, batch_id, created_at, attempt_until FROM idempotency "
                "WHERE owner = ? AND request_id = ?",
                (owner, request_id),
            ).fetchone()
            assert row is not None
            found = Claim(False, False, row[0], row[1], row[2], float(row[3]), float(row[4]) - now)
            if found.fingerprint != fingerprint or found.batch_id is not None or found.attempt_left > 0:
                return found
            db.execute(
                "UPDATE idempotency SET holder = ?, attempt_until = ? WHERE owner = ? AND request_id = ?",
                (holder, until, owner, request_id),
            )
            return Claim(True, True, found.fingerprint, found.provider, None, found.created_at, attempt_seconds)

        return await self._transaction(claim)

    async def settle_claim(self, owner: str, request_id: str, batch_id: str) -> None:
        await self._write(queries.SETTLE_CLAIM, batch_id, owner, request_id)

    async def release_claim(self, owner: str, request_id: str, holder: str) -> None:
        await self._write(queries.RELEASE_CLAIM, owner, request_id, holder)

    async def end_attempt(self, owner: str, request_id: str, holder: str, *, after: float) -> None:
        await self._attempt_until(owner, request_id, holder, lambda: time.time() + after)

    async def renew_claim(self, owner: str, request_id: str, holder: str, *, attempt_seconds: float) -> bool:
        return await self._attempt_until(owner, request_id, holder, lambda: time.time() + attempt_seconds) == 1

    async def _attempt_until(self, owner: str, request_id: str, holder: str, until: Callable[[], float]) -> int:
        """The holder's unsettled claim's attempt to end at `until()` (read once the transaction began)."""
        return await self._transaction(
            lambda db: (
                db.execute(
                    "UPDATE idempotency SET attempt_until = ? "
                    "WHERE owner = ? AND request_id = ? AND holder = ? AND batch_id IS NULL",
                    (until(), owner, request_id, holder),
                ).rowcount
            )
        )
