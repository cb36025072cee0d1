"""PostgreSQL's revisions: each batch's states, numbered per batch and across all (`seq`)."""

from __future__ import annotations

import asyncpg

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import Revision
from otari_batch_grpc.server.store.postgres.connection import PostgresConnection


def revision_of(row: asyncpg.Record) -> Revision:
    return Revision(row[0], row[1], row[2], row[3], row[4])


class PostgresRevisions(PostgresConnection):
    async def latest_revision(self, batch_id: str) -> Revision | None:
        row = await self._fetchrow(queries.LATEST_REVISION, batch_id)
        return revision_of(row) if row is not None else None

    async def revisions_after(self, batch_id: str, rev: int) -> list[Revision]:
        return [revision_of(r) for r in await self._fetch(queries.REVISIONS_AFTER, batch_id, rev)]

    async def last_seq(self) -> int:
        return int(await self._fetchval(queries.LAST_SEQ))

    async def revision_at_or_before(self, batch_id: str, seq: int) -> Revision | None:
        row = await self._fetchrow(queries.REVISION_AT_OR_BEFORE, batch_id, seq)
        return revision_of(row) if row is not None else None
