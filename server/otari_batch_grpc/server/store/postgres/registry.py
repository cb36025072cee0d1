"""PostgreSQL's registry: the batches seen, who was shown which (and when), keys refused (every replica told), and
each batch state as a revision, in one statement. Revisions are numbered by a sequence (`seq`), drawn under an
advisory lock held to the commit, so seq order is commit order: a reader that has seen seq N will never find a
revision below N appear later."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

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
from otari_batch_grpc.server.store.postgres.connection import (
    LOCK_CLASS,
    REVISIONS_CHANNEL,
    REVISIONS_LOCK,
    PostgresConnection,
)

if TYPE_CHECKING:
    from otari_batch_grpc.server.store.postgres.connection import Connection

# The changed batches into the registry, `owner`'s access to them and to the verified ones, and a revision per
# change (the newest `keep` of each batch kept), in one statement. Rows are locked in key order (no deadlock
# with another writer of the same rows); a batch listed twice gets two revisions, as one after the other would.
_ENTER = """
WITH seen AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::bytea[], $6::float8[], $7::float8[])
        WITH ORDINALITY AS s (id, provider, status, terminal, snapshot, first_seen, created_at, ord)
),
recorded AS (
    INSERT INTO batches AS b (id, provider, creator, status, terminal, snapshot, first_seen, last_seen, created_at)
    SELECT DISTINCT ON (id) id, provider, $8::text, status, terminal, snapshot, first_seen, $9::float8, created_at
    FROM seen ORDER BY id, ord DESC
    ON CONFLICT (id) DO UPDATE SET
        status = excluded.status, terminal = excluded.terminal, snapshot = excluded.snapshot,
        last_seen = excluded.last_seen, creator = COALESCE(b.creator, excluded.creator)
),
granted AS (
    INSERT INTO access AS a (batch_id, owner, verified_at)
    SELECT batch_id, $10::text, max(at) FROM (
        SELECT id AS batch_id, $14::float8 AS at FROM seen
        UNION ALL
        SELECT v, $14::float8 FROM unnest($11::text[]) AS v
    ) g GROUP BY batch_id ORDER BY batch_id
    ON CONFLICT (batch_id, owner) DO UPDATE SET verified_at = excluded.verified_at
),
numbered AS (
    SELECT s.id, s.snapshot, s.ord,
        COALESCE((SELECT max(r.rev) FROM revisions r WHERE r.batch_id = s.id), 0)
            + row_number() OVER (PARTITION BY s.id ORDER BY s.ord) AS rev
    FROM seen s
),
inserted AS (
    INSERT INTO revisions (batch_id, rev, snapshot, observed_at, origin)
    SELECT id, rev, snapshot, $12::float8, $15::text FROM numbered ORDER BY ord
    RETURNING batch_id, rev, seq
),
trimmed AS (
    DELETE FROM revisions d USING (SELECT id, max(rev) AS rev FROM numbered GROUP BY id) n
    WHERE d.batch_id = n.id AND d.rev <= n.rev - $13::int
)
SELECT i.rev, i.seq FROM inserted i JOIN numbered n ON n.id = i.batch_id AND n.rev = i.rev ORDER BY n.ord
"""

# (A revision saved before its replica was named has no origin: it counts as another's.)
_SAVED_ELSEWHERE = """
SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id
WHERE a.owner = $1 AND ($6::text[] IS NULL OR b.id = ANY($6::text[])) AND EXISTS (
    SELECT 1 FROM revisions r
    WHERE r.batch_id = b.id AND r.seq <= $2 AND r.observed_at >= $3 AND r.origin IS DISTINCT FROM $4
)
ORDER BY b.created_at DESC LIMIT $5
"""

_GRANT = """
INSERT INTO access AS a (batch_id, owner, verified_at)
SELECT DISTINCT v, $2::text, $3::float8 FROM unnest($1::text[]) AS v ORDER BY 1
ON CONFLICT (batch_id, owner) DO UPDATE SET verified_at = excluded.verified_at
"""

# A refusal recorded (the latest kept), then every replica told.
_REFUSE = """
WITH kept AS (
    INSERT INTO key_refusals AS k (owner, refused_at) VALUES ($1, $2)
    ON CONFLICT (owner) DO UPDATE SET refused_at = greatest(k.refused_at, excluded.refused_at)
)
SELECT pg_notify($3, $4)
"""


# The endpoints to tell of each batch's change: those of the owner showing it, and of owners shown it lately whose
# key was not refused since; with the status the registry had for the batch before.
_ENDPOINTS_TO_TELL = f"""
WITH ids AS (SELECT DISTINCT id FROM unnest($1::text[]) AS c(id)),
owners AS (
    SELECT ids.id AS batch_id, $2::text AS owner FROM ids
    UNION
    SELECT a.batch_id, a.owner FROM access a JOIN ids ON a.batch_id = ids.id
    LEFT JOIN key_refusals k ON k.owner = a.owner
    WHERE a.verified_at >= $3 AND a.verified_at > COALESCE(k.refused_at, 0)
)
SELECT o.batch_id, b.status, {", ".join("e." + c.strip() for c in queries.ENDPOINT_COLUMNS.split(","))}
FROM owners o JOIN webhook_endpoints e ON e.owner = o.owner LEFT JOIN batches b ON b.id = o.batch_id
ORDER BY o.batch_id, e.created_at, e.id
"""


async def _to_tell(
    conn: Connection, changed: Sequence[SeenBatch], owner: str, trusted_since: float
) -> dict[str, tuple[str | None, tuple[EndpointRecord, ...]]]:
    """For each changed batch with endpoints to tell: its status before, and those endpoints."""
    found: dict[str, tuple[str | None, list[EndpointRecord]]] = {}
    for row in await conn.fetch(_ENDPOINTS_TO_TELL, [b.id for b in changed], owner, trusted_since):
        before = None if row[1] is None else str(row[1])
        found.setdefault(str(row[0]), (before, []))[1].append(EndpointRecord.of_row(tuple(row)[2:]))
    return {batch_id: (before, tuple(endpoints)) for batch_id, (before, endpoints) in found.items()}


async def _queue(conn: Connection, deliveries: Sequence[Delivery], now: float) -> None:
    if deliveries:
        await conn.executemany(
            queries.ADD_DELIVERY,
            [(d.endpoint_id, d.batch_id, d.rev, d.kind, d.terminal, d.event, now) for d in deliveries],
        )
        await conn.executemany(
            queries.SUPERSEDE_DELIVERIES, [(d.endpoint_id, d.batch_id, d.rev, now) for d in deliveries]
        )


def batch_record(row: asyncpg.Record) -> BatchRecord:
    return BatchRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])


class PostgresRegistry(PostgresConnection):
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
        now = time.time()
        shown_at = observed_at if shown_at is None else shown_at
        if not changed:
            await self._execute(_GRANT, list(verified), owner, shown_at)
            return []
        args = (
            [b.id for b in changed],
            [b.provider for b in changed],
            [b.status for b in changed],
            [b.terminal for b in changed],
            [b.snapshot for b in changed],
            [now - index * 1e-6 for index in range(len(changed))],  # rows come newest first: keep that order
            [b.created_at or now for b in changed],
            owner if creator else None,
            now,
            owner,
            list(verified),
            observed_at,
            keep,
            shown_at,
            self.origin,
        )

        async def work(conn: Connection) -> list[asyncpg.Record]:
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, REVISIONS_LOCK)
            told = await _to_tell(conn, changed, owner, trusted_since) if notify is not None else {}
            rows = await conn.fetch(_ENTER, *args)
            if told and notify is not None:
                changes = [
                    Change(b, told[b.id][0], Revision(b.id, row[0], b.snapshot, observed_at, row[1]), told[b.id][1])
                    for b, row in zip(changed, rows, strict=True)
                    if b.id in told
                ]
                await _queue(conn, notify(changes), observed_at)
            # Every replica hears of the new revisions when they commit (and not before).
            notices = [
                json.dumps({"b": b.id, "r": row[0], "o": owner, "p": b.provider, "from": self.origin})
                for b, row in zip(changed, rows, strict=True)
            ]
            await conn.execute("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n", REVISIONS_CHANNEL, notices)
            return rows

        rows = await self._write(work)
        return [Revision(b.id, row[0], b.snapshot, observed_at, row[1]) for b, row in zip(changed, rows, strict=True)]

    async def revoke(self, batch_id: str, owner: str) -> None:
        await self._execute(queries.REVOKE, batch_id, owner)

    async def refuse_key(self, owner: str, at: float) -> None:
        notice = json.dumps({"refused": owner, "at": at, "from": self.origin})
        await self._write_value(_REFUSE, owner, at, REVISIONS_CHANNEL, notice)

    async def list_for(
        self, owner: str, provider: str | None, *, before: tuple[float, float, str] | None, limit: int
    ) -> list[BatchRecord]:
        params = [owner, *([provider] if provider else []), *(before or ()), limit]
        rows = await self._fetch(queries.list_for(provider=bool(provider), before=before is not None), *params)
        return [batch_record(row) for row in rows]

    async def changed_since(self, owner: str, seq: int, limit: int) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in await self._fetch(queries.CHANGED_SINCE, owner, seq, limit)]

    async def saved_elsewhere(
        self, owner: str, seq: int, since: float, origin: str, limit: int, *, among: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        listed = None if among is None else list(among)
        return [(r[0], r[1]) for r in await self._fetch(_SAVED_ELSEWHERE, owner, seq, since, origin, limit, listed)]

    async def providers_for(self, owner: str) -> list[str]:
        return [r[0] for r in await self._fetch(queries.PROVIDERS_FOR, owner)]

    async def batch(self, batch_id: str) -> BatchRecord | None:
        row = await self._fetchrow(queries.BATCH, batch_id)
        return None if row is None else batch_record(row)

    async def access(self, batch_id: str, owner: str) -> Access | None:
        row = await self._fetchrow(queries.ACCESS, batch_id, owner)
        return Access(float(row[0]), str(row[1])) if row is not None else None

    async def live_batches(self, owner: str, limit: int) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in await self._fetch(queries.LIVE_BATCHES, owner, limit)]
