"""The service's durable state in SQLite (aiosqlite): the batch registry, who may see each batch, idempotency
keys, status revisions and the results cache. The only module with SQL in it.

The schema is created and moved forward by numbered migrations (PRAGMA user_version); a database newer than this
code is refused at start. WAL mode with synchronous=NORMAL: a transaction that returned is in the WAL, written to
the OS, so a kill -9 of the process at any moment loses nothing that was acknowledged (only a power loss can take
the last transactions; FULL would fsync each commit and cost every RPC a millisecond or more). Every method is
one short transaction; values are opaque bytes and strings (the store knows nothing of protobuf).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

MIGRATIONS: tuple[str, ...] = (
    # 1: registry, access, idempotency, results cache
    """
    CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        provider    TEXT NOT NULL,
        creator     TEXT,            -- owner hash of the caller that created it through this service, if any
        status      TEXT NOT NULL,
        terminal    INTEGER NOT NULL,
        snapshot    BLOB NOT NULL,   -- the last Batch message seen, serialized
        first_seen  REAL NOT NULL,
        last_seen   REAL NOT NULL
    );
    CREATE TABLE access (
        batch_id     TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        owner        TEXT NOT NULL,  -- keyed hash of a credential the gateway showed this batch to
        verified_at  REAL NOT NULL,
        PRIMARY KEY (batch_id, owner)
    );
    CREATE TABLE idempotency (
        owner        TEXT NOT NULL,
        request_id   TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,  -- hash of the request, to tell a retry from a different request
        provider     TEXT NOT NULL,
        batch_id     TEXT,           -- NULL while the create is in flight or its reply was lost
        created_at   REAL NOT NULL,
        PRIMARY KEY (owner, request_id)
    );
    CREATE TABLE result_sets (
        batch_id    TEXT PRIMARY KEY,
        items       INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        fetched_at  REAL NOT NULL
    );
    CREATE TABLE results (
        batch_id  TEXT NOT NULL REFERENCES result_sets(batch_id) ON DELETE CASCADE,
        idx       INTEGER NOT NULL,
        item      BLOB NOT NULL,     -- a BatchResult message, serialized
        PRIMARY KEY (batch_id, idx)
    ) WITHOUT ROWID;
    CREATE INDEX result_sets_by_age ON result_sets(fetched_at);
    """,
    # 2: status revisions, for watch streams that resume
    """
    CREATE TABLE revisions (
        batch_id     TEXT NOT NULL,
        rev          INTEGER NOT NULL,
        snapshot     BLOB NOT NULL,  -- the Batch message as observed, serialized
        observed_at  REAL NOT NULL,
        PRIMARY KEY (batch_id, rev)
    ) WITHOUT ROWID;
    """,
)


class StoreError(RuntimeError):
    """The database cannot be used (newer schema, corrupt file, unwritable path)."""


@dataclass(frozen=True)
class BatchRecord:
    id: str
    provider: str
    creator: str | None
    status: str
    terminal: bool
    snapshot: bytes
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class SeenBatch:
    """A batch as the gateway just showed it to a caller."""

    id: str
    provider: str
    status: str
    terminal: bool
    snapshot: bytes


@dataclass(frozen=True)
class Revision:
    """One observed state of a batch; revisions of a batch count up from 1."""

    batch_id: str
    rev: int
    snapshot: bytes
    observed_at: float


@dataclass(frozen=True)
class Claim:
    """The idempotency row for (owner, request_id) after claiming it."""

    fresh: bool  # this call made the claim: go ahead and create
    fingerprint: str
    provider: str
    batch_id: str | None  # set once a batch is known for it


class Store:
    """One aiosqlite connection; a lock makes each method's transaction whole."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Store:
        if str(path) != ":memory:":
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except Exception as exc:  # sqlite3 raises several types here; all mean the same to the operator
            raise StoreError(f"cannot open the state database {path}: {exc}") from exc
        store = cls(db, path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        version = await self._scalar("PRAGMA user_version")
        assert isinstance(version, int)
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the state database {self.path} has schema version {version}, newer than this code knows "
                f"({len(MIGRATIONS)}): run a newer otari-batch-grpc, or point STATE_DB at another file"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            statements = [s.strip() for s in script.split(";") if s.strip()]
            async with self._tx():
                for statement in statements:
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version={number}")

    async def integrity_check(self) -> str:
        result = await self._scalar("PRAGMA integrity_check")
        return str(result)

    async def schema_version(self) -> int:
        version = await self._scalar("PRAGMA user_version")
        assert isinstance(version, int)
        return version

    # -- registry and access ------------------------------------------------------------------------------
    async def record(self, seen: Iterable[SeenBatch], *, owner: str, creator: bool = False) -> None:
        """Remember batches the gateway just showed `owner`, and that `owner` may see them."""
        rows = list(seen)
        if rows:
            async with self._tx():
                await self._record(rows, owner, creator)

    async def _record(self, rows: list[SeenBatch], owner: str, creator: bool) -> None:
        now = time.time()
        await self._db.executemany(
            """
            INSERT INTO batches (id, provider, creator, status, terminal, snapshot, first_seen, last_seen)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                status = excluded.status, terminal = excluded.terminal, snapshot = excluded.snapshot,
                last_seen = excluded.last_seen, creator = COALESCE(batches.creator, excluded.creator)
            """,
            [
                (b.id, b.provider, owner if creator else None, b.status, int(b.terminal), b.snapshot, now, now)
                for b in rows
            ],
        )
        await self._db.executemany(
            """
            INSERT INTO access (batch_id, owner, verified_at) VALUES (?, ?, ?)
            ON CONFLICT(batch_id, owner) DO UPDATE SET verified_at = excluded.verified_at
            """,
            [(b.id, owner, now) for b in rows],
        )

    async def batch(self, batch_id: str) -> BatchRecord | None:
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT id, provider, creator, status, terminal, snapshot, first_seen, last_seen "
                "FROM batches WHERE id = ?",
                (batch_id,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return BatchRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])

    async def verified_at(self, batch_id: str, owner: str) -> float | None:
        """When the gateway last showed `owner` this batch, if ever."""
        value = await self._scalar("SELECT verified_at FROM access WHERE batch_id = ? AND owner = ?", batch_id, owner)
        return float(value) if value is not None else None

    async def provider_for(self, batch_id: str, owner: str) -> str | None:
        """The provider of a batch `owner` has been shown (and only then: nothing leaks to other callers)."""
        value = await self._scalar(
            "SELECT b.provider FROM batches b JOIN access a ON a.batch_id = b.id WHERE b.id = ? AND a.owner = ?",
            batch_id,
            owner,
        )
        return str(value) if value is not None else None

    # -- idempotency --------------------------------------------------------------------------------------
    async def claim(self, owner: str, request_id: str, fingerprint: str, provider: str) -> Claim:
        """Claim (owner, request_id) for a create, or return the claim that already holds it."""
        async with self._tx():
            cursor = await self._db.execute(
                "INSERT INTO idempotency (owner, request_id, fingerprint, provider, batch_id, created_at) "
                "VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT DO NOTHING",
                (owner, request_id, fingerprint, provider, time.time()),
            )
            if cursor.rowcount == 1:
                return Claim(fresh=True, fingerprint=fingerprint, provider=provider, batch_id=None)
            cursor = await self._db.execute(
                "SELECT fingerprint, provider, batch_id FROM idempotency WHERE owner = ? AND request_id = ?",
                (owner, request_id),
            )
            row = await cursor.fetchone()
        assert row is not None
        return Claim(fresh=False, fingerprint=row[0], provider=row[1], batch_id=row[2])

    async def settle_claim(self, owner: str, request_id: str, seen: SeenBatch) -> None:
        """The create of (owner, request_id) made `seen`: remember both in one transaction."""
        async with self._tx():
            await self._record([seen], owner, creator=True)
            await self._db.execute(
                "UPDATE idempotency SET batch_id = ? WHERE owner = ? AND request_id = ?",
                (seen.id, owner, request_id),
            )

    async def release_claim(self, owner: str, request_id: str) -> None:
        """The create certainly made nothing: let a retry start over."""
        async with self._tx():
            await self._db.execute(
                "DELETE FROM idempotency WHERE owner = ? AND request_id = ? AND batch_id IS NULL", (owner, request_id)
            )

    async def live_batches(self, owner: str, limit: int) -> list[tuple[str, str]]:
        """(id, provider) of the batches `owner` was shown that are not terminal, newest first."""
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id "
                "WHERE a.owner = ? AND b.terminal = 0 ORDER BY b.first_seen DESC LIMIT ?",
                (owner, limit),
            )
            rows = await cursor.fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    # -- revisions ----------------------------------------------------------------------------------------
    async def latest_revision(self, batch_id: str) -> Revision | None:
        rows = await self._revisions("WHERE batch_id = ? ORDER BY rev DESC LIMIT 1", batch_id)
        return rows[0] if rows else None

    async def add_revision(self, batch_id: str, snapshot: bytes, observed_at: float, *, keep: int) -> Revision:
        """Store the next revision of a batch, keeping the newest `keep`."""
        async with self._tx():
            cursor = await self._db.execute(
                "SELECT COALESCE(MAX(rev), 0) FROM revisions WHERE batch_id = ?", (batch_id,)
            )
            row = await cursor.fetchone()
            rev = int(row[0]) + 1 if row else 1
            await self._db.execute(
                "INSERT INTO revisions (batch_id, rev, snapshot, observed_at) VALUES (?, ?, ?, ?)",
                (batch_id, rev, snapshot, observed_at),
            )
            await self._db.execute("DELETE FROM revisions WHERE batch_id = ? AND rev <= ?", (batch_id, rev - keep))
        return Revision(batch_id, rev, snapshot, observed_at)

    async def revisions_after(self, batch_id: str, rev: int) -> list[Revision]:
        return await self._revisions("WHERE batch_id = ? AND rev > ? ORDER BY rev", batch_id, rev)

    async def _revisions(self, where: str, *params: object) -> list[Revision]:
        async with self._lock:
            cursor = await self._db.execute(
                f"SELECT batch_id, rev, snapshot, observed_at FROM revisions {where}", params
            )
            rows = await cursor.fetchall()
        return [Revision(str(r[0]), int(r[1]), bytes(r[2]), float(r[3])) for r in rows]

    # -- results cache ------------------------------------------------------------------------------------
    async def result_count(self, batch_id: str) -> int | None:
        value = await self._scalar("SELECT items FROM result_sets WHERE batch_id = ?", batch_id)
        return int(value) if value is not None else None

    async def save_results(self, batch_id: str, items: Sequence[bytes]) -> None:
        async with self._tx():
            await self._db.execute("DELETE FROM result_sets WHERE batch_id = ?", (batch_id,))
            await self._db.execute(
                "INSERT INTO result_sets (batch_id, items, bytes, fetched_at) VALUES (?, ?, ?, ?)",
                (batch_id, len(items), sum(len(i) for i in items), time.time()),
            )
            await self._db.executemany(
                "INSERT INTO results (batch_id, idx, item) VALUES (?, ?, ?)",
                ((batch_id, index, item) for index, item in enumerate(items)),
            )

    async def results_page(self, batch_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT idx, item FROM results WHERE batch_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
                (batch_id, start, limit),
            )
            rows = await cursor.fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def trim_results(self, *, max_bytes: int, max_age: float) -> int:
        """Drop cached result sets older than max_age, then the oldest until the rest fit max_bytes."""
        async with self._tx():
            cursor = await self._db.execute("DELETE FROM result_sets WHERE fetched_at < ?", (time.time() - max_age,))
            dropped = cursor.rowcount
            cursor = await self._db.execute("SELECT batch_id, bytes FROM result_sets ORDER BY fetched_at DESC")
            kept = 0
            over: list[tuple[str]] = []
            for batch_id, size in await cursor.fetchall():
                kept += size
                if kept > max_bytes:
                    over.append((batch_id,))
            await self._db.executemany("DELETE FROM result_sets WHERE batch_id = ?", over)
        return dropped + len(over)

    async def results_bytes(self) -> int:
        value = await self._scalar("SELECT COALESCE(SUM(bytes), 0) FROM result_sets")
        return int(value) if value is not None else 0

    # -- plumbing -----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[None]:
        """One transaction, whole even when the calling task is cancelled at any await in it.

        aiosqlite runs statements in order on one thread, and a statement it has queued runs even if the task
        awaiting it is cancelled. So a cancelled BEGIN still begins: roll back whatever happened, and let
        ROLLBACK and COMMIT finish (shielded) before the lock goes to the next transaction.
        """
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            await asyncio.shield(self._db.execute("COMMIT"))

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # nothing began: nothing to roll back
            await self._db.execute("ROLLBACK")

    async def _scalar(self, sql: str, *params: object) -> Any:
        async with self._lock:
            cursor = await self._db.execute(sql, params)
            row = await cursor.fetchone()
        return row[0] if row else None
