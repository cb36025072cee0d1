"""SQLite's revisions: each batch's states, numbered per batch and across all (`seq`)."""

from __future__ import annotations

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import Revision
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection


class SqliteRevisions(SqliteConnection):
    async def latest_revision(self, batch_id: str) -> Revision | None:
        rows = await self._revisions(queries.LATEST_REVISION, batch_id)
        return rows[0] if rows else None

    async def revisions_after(self, batch_id: str, rev: int) -> list[Revision]:
        return await self._revisions(queries.REVISIONS_AFTER, batch_id, rev)

    async def last_seq(self) -> int:
        value = await self._scalar(queries.LAST_SEQ)
        return int(value) if value is not None else 0

    async def revision_at_or_before(self, batch_id: str, seq: int) -> Revision | None:
        rows = await self._revisions(queries.REVISION_AT_OR_BEFORE, batch_id, seq)
        return rows[0] if rows else None

    async def _revisions(self, sql: str, *params: object) -> list[Revision]:
        rows = await self._rows(sql, *params)
        return [Revision(str(r[0]), int(r[1]), bytes(r[2]), float(r[3]), int(r[4])) for r in rows]
