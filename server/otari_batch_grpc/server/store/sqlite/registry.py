"""SQLite's registry: the batches seen, who was shown which (and when), keys refused, and each batch state as a
revision, entered in one transaction."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from otari_batch_grpc.server.store import queries
from otari_batch_grpc.server.store.base import (
    Access,
    BatchRecord,
    Change,
    Delivery,
    EndpointRecord,
    Notify,
    Revision,
    SeenBatch,
)
from otari_batch_grpc.server.store.sqlite.connection import SqliteConnection

_RECORD = """
INSERT INTO batches (id, provider, creator, status, terminal, snapshot, first_seen, last_seen, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    status = excluded.status, terminal = excluded.terminal, snapshot = excluded.snapshot,
    last_seen = excluded.last_seen, creator = COALESCE(batches.creator, excluded.creator)
"""
# The endpoints to tell of a batch's change: those of the owner showing it, and of owners shown it lately whose key
# was not refused since.
_ENDPOINTS_TO_TELL = (
    f"SELECT {queries.ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner IN (SELECT ? UNION "
    "SELECT a.owner FROM access a LEFT JOIN key_refusals k ON k.owner = a.owner "
    "WHERE a.batch_id = ? AND a.verified_at >= ? AND a.verified_at > COALESCE(k.refused_at, 0)) "
    "ORDER BY created_at, id"
)
_GRANT = """
INSERT INTO access (batch_id, owner, verified_at) VALUES (?, ?, ?)
ON CONFLICT(batch_id, owner) DO UPDATE SET verified_at = excluded.verified_at
"""
_REFUSE = """
INSERT INTO key_refusals (owner, refused_at) VALUES (?, ?)
ON CONFLICT(owner) DO UPDATE SET refused_at = max(key_refusals.refused_at, excluded.refused_at)
"""


def batch_record(row: Sequence[Any]) -> BatchRecord:
    return BatchRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], row[8])


class SqliteRegistry(SqliteConnection):
    async def enter(
        self,
        changed: Sequence[SeenBatch],
        verified: Sequence[str],
        *,
        owner: str,
        creator: bool = False,
        keep: int,
        observed_at: float,
        shown_at: float | None = None,
        notify: Notify | None = None,
        trusted_since: float = math.inf,
    ) -> list[Revision]:
        if not changed and not verified:
            return []
        shown_at = observed_at if shown_at is None else shown_at

        def enter(db: sqlite3.Connection) -> list[Revision]:
            told = _to_tell(db, changed, owner, trusted_since) if notify is not None and changed else {}
            if changed:
                _record(db, changed, owner, creator, shown_at)
            if verified:
                _grant(db, verified, owner, shown_at)
            revisions = [_revision(db, seen, keep, observed_at) for seen in changed]
            if told and notify is not None:
                changes = [
                    Change(seen, told[seen.id][0], revision, told[seen.id][1])
                    for seen, revision in zip(changed, revisions, strict=True)
                    if seen.id in told
                ]
                _queue(db, notify(changes), observed_at)  # (notify runs here, on the database's thread)
            return revisions

        return await self._transaction(enter)

    async def revoke(self, batch_id: str, owner: str) -> None:
        await self._write(queries.REVOKE, batch_id, owner)

    async def refuse_key(self, owner: str, at: float) -> None:
        def refuse(db: sqlite3.Connection) -> None:
            db.execute(_REFUSE, (owner, at))

        await self._transaction(refuse)

    async def list_for(
        self, owner: str, provider: str | None, *, before: tuple[float, float, str] | None, limit: int
    ) -> list[BatchRecord]:
        params = [owner, *([provider] if provider else []), *(before or ()), limit]
        rows = await self._rows(queries.list_for(provider=bool(provider), before=before is not None), *params)
        return [batch_record(row) for row in rows]

    async def changed_since(self, owner: str, seq: int, limit: int) -> list[tuple[str, str]]:
        return [(str(r[0]), str(r[1])) for r in await self._rows(queries.CHANGED_SINCE, owner, seq, limit)]

    async def saved_elsewhere(
        self, owner: str, seq: int, since: float, origin: str, limit: int, *, among: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        return []  # this process saved every revision

    async def providers_for(self, owner: str) -> list[str]:
        return [str(r[0]) for r in await self._rows(queries.PROVIDERS_FOR, owner)]

    async def batch(self, batch_id: str) -> BatchRecord | None:
        rows = await self._rows(queries.BATCH, batch_id)
        return batch_record(rows[0]) if rows else None

    async def access(self, batch_id: str, owner: str) -> Access | None:
        rows = await self._rows(queries.ACCESS, batch_id, owner)
        return Access(float(rows[0][0]), str(rows[0][1])) if rows else None

    async def live_batches(self, owner: str, limit: int) -> list[tuple[str, str]]:
        return [(str(r[0]), str(r[1])) for r in await self._rows(queries.LIVE_BATCHES, owner, limit)]


def _to_tell(
    db: sqlite3.Connection, changed: Sequence[SeenBatch], owner: str, trusted_since: float
) -> dict[str, tuple[str | None, tuple[EndpointRecord, ...]]]:
    """For each changed batch with endpoints to tell: its status before, and those endpoints."""
    told: dict[str, tuple[str | None, tuple[EndpointRecord, ...]]] = {}
    for seen in {seen.id: seen for seen in changed}.values():  # (each batch once)
        rows = db.execute(_ENDPOINTS_TO_TELL, (owner, seen.id, trusted_since)).fetchall()
        endpoints = tuple(EndpointRecord.of_row(row) for row in rows)
        if endpoints:
            row = db.execute("SELECT status FROM batches WHERE id = ?", (seen.id,)).fetchone()
            told[seen.id] = (str(row[0]) if row else None, endpoints)
    return told


def _queue(db: sqlite3.Connection, deliveries: Sequence[Delivery], now: float) -> None:
    for d in deliveries:
        values = (d.endpoint_id, d.batch_id, d.rev, d.kind, d.terminal, d.event, now)
        db.execute(queries.for_sqlite(queries.ADD_DELIVERY), values)
        db.execute(queries.for_sqlite(queries.SUPERSEDE_DELIVERIES), (d.endpoint_id, d.batch_id, d.rev, now))


def _record(db: sqlite3.Connection, rows: Sequence[SeenBatch], owner: str, creator: bool, shown_at: float) -> None:
    now = time.time()
    db.executemany(
        _RECORD,
        [
            (
                b.id,
                b.provider,
                owner if creator else None,
                b.status,
                int(b.terminal),
                b.snapshot,
                now - index * 1e-6,  # rows come newest first: keep that order among equal created_at
                now,
                b.created_at or now,
            )
            for index, b in enumerate(rows)
        ],
    )
    _grant(db, [b.id for b in rows], owner, shown_at)


def _grant(db: sqlite3.Connection, batch_ids: Sequence[str], owner: str, now: float) -> None:
    db.executemany(_GRANT, [(batch_id, owner, now) for batch_id in batch_ids])


def _revision(db: sqlite3.Connection, seen: SeenBatch, keep: int, observed_at: float) -> Revision:
    """The batch's next revision (in the caller's transaction), the newest `keep` kept."""
    row = db.execute("SELECT COALESCE(MAX(rev), 0) FROM revisions WHERE batch_id = ?", (seen.id,)).fetchone()
    rev = int(row[0]) + 1 if row else 1
    cursor = db.execute(
        "INSERT INTO revisions (batch_id, rev, snapshot, observed_at) VALUES (?, ?, ?, ?)",
        (seen.id, rev, seen.snapshot, observed_at),
    )
    seq = cursor.lastrowid or 0
    db.execute("DELETE FROM revisions WHERE batch_id = ? AND rev <= ?", (seen.id, rev - keep))
    return Revision(seen.id, rev, seen.snapshot, observed_at, seq)
