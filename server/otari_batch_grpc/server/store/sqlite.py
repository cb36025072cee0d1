"""The store on SQLite (aiosqlite): the embedded default, one process's own state in one file.

WAL mode with synchronous=NORMAL: a transaction that returned is in the WAL, written to the OS, so a kill -9 of
the process at any moment loses nothing that was acknowledged (only a power loss can take the last transactions;
FULL would fsync each commit and cost every RPC a millisecond or more). One connection; a lock makes each
method's transaction whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite

from otari_batch_grpc.server.store import migrations
from otari_batch_grpc.server.store.base import Access, BatchRecord, Claim, Revision, SeenBatch, Store, StoreError
from otari_batch_grpc.server.telemetry import metrics

_BATCH_COLUMNS = (
    "b.id, b.provider, b.creator, b.status, b.terminal, b.snapshot, b.first_seen, b.last_seen, b.created_at"
)


# The database holds cached results and who was shown what: only the service's own user may read it.
_FILE_MODE = 0o600
_FOLDER_MODE = 0o700


def _private(path: Path) -> None:
    """The database file made (or kept) readable by this user alone, before SQLite opens it: SQLite makes its WAL
    and shared-memory files with the database's own mode. Its folder, when made here, is this user's alone too."""
    path.parent.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if file.stat().st_mode & 0o077:  # made by an older version, or by hand: narrowed
                file.chmod(_FILE_MODE)


# The access of an owner to a batch, as long as the gateway showed it after it last refused the owner's key.
_ACCESS = """
SELECT CASE WHEN a.verified_at > COALESCE(k.refused_at, 0) THEN a.verified_at ELSE 0.0 END, b.provider
FROM access a JOIN batches b ON b.id = a.batch_id LEFT JOIN key_refusals k ON k.owner = a.owner
WHERE a.batch_id = ? AND a.owner = ?
"""
_REFUSE = """
INSERT INTO key_refusals (owner, refused_at) VALUES (?, ?)
ON CONFLICT(owner) DO UPDATE SET refused_at = max(key_refusals.refused_at, excluded.refused_at)
"""


def _batch_record(row: Sequence[Any]) -> BatchRecord:
    return BatchRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], row[8])


class SqliteStore(Store):
    """One aiosqlite connection; a lock makes each method's transaction whole."""

    MIGRATIONS: ClassVar[tuple[str, ...]] = migrations.SQLITE

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path
        self.transactions = 0  # write transactions begun (for tests and operators)

    @classmethod
    async def connect(cls, target: str | os.PathLike[str]) -> SqliteStore:
        """Open (creating it and its directory if need be) and migrate the database file at `target`."""
        path = Path(target)
        if str(path) != ":memory:":
            await asyncio.to_thread(_private, path)
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
            # 1 MiB of page cache (the default is 2): cached results pass through it, and memory should not
            # grow with the batch being streamed.
            await db.execute("PRAGMA cache_size=-1024")
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
        if version > len(self.MIGRATIONS):
            raise StoreError(
                f"the state database {self.path} has schema version {version}, newer than this code knows "
                f"({len(self.MIGRATIONS)}): run a newer otari-batch-grpc, or point STATE_DB at another file"
            )
        for number, script in enumerate(self.MIGRATIONS[version:], start=version + 1):
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

    async def shared_secret(self, name: str) -> None:
        return None  # one process's own: the secret is a file beside the database

    # -- registry and access ------------------------------------------------------------------------------
    async def _record(self, rows: Sequence[SeenBatch], owner: str, creator: bool, shown_at: float) -> None:
        now = time.time()
        await self._db.executemany(
            """
            INSERT INTO batches (id, provider, creator, status, terminal, snapshot, first_seen, last_seen, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                status = excluded.status, terminal = excluded.terminal, snapshot = excluded.snapshot,
                last_seen = excluded.last_seen, creator = COALESCE(batches.creator, excluded.creator)
            """,
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
        await self._grant([b.id for b in rows], owner, shown_at)

    async def _grant(self, batch_ids: Sequence[str], owner: str, now: float) -> None:
        await self._db.executemany(
            """
            INSERT INTO access (batch_id, owner, verified_at) VALUES (?, ?, ?)
            ON CONFLICT(batch_id, owner) DO UPDATE SET verified_at = excluded.verified_at
            """,
            [(batch_id, owner, now) for batch_id in batch_ids],
        )

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
    ) -> list[Revision]:
        """In one transaction: the batches whose state changed into the registry, each as its next revision (the
        newest `keep` kept), and `owner`'s access to those and to the `verified` ones. Returns the revisions."""
        revisions: list[Revision] = []
        if not changed and not verified:
            return revisions
        shown_at = observed_at if shown_at is None else shown_at
        async with self._tx():
            if changed:
                await self._record(changed, owner, creator, shown_at)
            if verified:
                await self._grant(verified, owner, shown_at)
            for seen in changed:
                cursor = await self._db.execute(
                    "SELECT COALESCE(MAX(rev), 0) FROM revisions WHERE batch_id = ?", (seen.id,)
                )
                row = await cursor.fetchone()
                rev = int(row[0]) + 1 if row else 1
                cursor = await self._db.execute(
                    "INSERT INTO revisions (batch_id, rev, snapshot, observed_at) VALUES (?, ?, ?, ?)",
                    (seen.id, rev, seen.snapshot, observed_at),
                )
                seq = cursor.lastrowid or 0
                await self._db.execute("DELETE FROM revisions WHERE batch_id = ? AND rev <= ?", (seen.id, rev - keep))
                revisions.append(Revision(seen.id, rev, seen.snapshot, observed_at, seq))
        return revisions

    async def revoke(self, batch_id: str, owner: str) -> None:
        """The gateway no longer shows `owner` this batch."""
        async with self._tx():
            await self._db.execute("DELETE FROM access WHERE batch_id = ? AND owner = ?", (batch_id, owner))

    async def list_for(
        self, owner: str, provider: str | None, *, before: tuple[float, float, str] | None, limit: int
    ) -> list[BatchRecord]:
        """The batches `owner` has been shown, newest first (the batch's created_at, then when this service first
        saw it, then id), after the position `before`."""
        where = ["a.owner = ?"]
        params: list[object] = [owner]
        if provider:
            where.append("lower(b.provider) = lower(?)")
            params.append(provider)
        if before is not None:
            where.append("(b.created_at, b.first_seen, b.id) < (?, ?, ?)")
            params.extend(before)
        async with self._lock:
            cursor = await self._db.execute(
                f"SELECT {_BATCH_COLUMNS} FROM batches b JOIN access a ON a.batch_id = b.id "
                f"WHERE {' AND '.join(where)} ORDER BY b.created_at DESC, b.first_seen DESC, b.id DESC LIMIT ?",
                (*params, limit),
            )
            rows = await cursor.fetchall()
        return [_batch_record(row) for row in rows]

    async def changed_since(self, owner: str, seq: int, limit: int) -> list[tuple[str, str]]:
        """(id, provider) of the batches `owner` was shown that have a revision after `seq`."""
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id WHERE a.owner = ? "
                "AND EXISTS (SELECT 1 FROM revisions r WHERE r.batch_id = b.id AND r.seq > ?) "
                "ORDER BY b.created_at DESC LIMIT ?",
                (owner, seq, limit),
            )
            rows = await cursor.fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    async def providers_for(self, owner: str) -> list[str]:
        """The providers of the batches `owner` has been shown."""
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT DISTINCT lower(b.provider) FROM batches b JOIN access a ON a.batch_id = b.id "
                "WHERE a.owner = ? ORDER BY 1",
                (owner,),
            )
            rows = await cursor.fetchall()
        return [str(r[0]) for r in rows]

    async def batch(self, batch_id: str) -> BatchRecord | None:
        async with self._lock:
            cursor = await self._db.execute(f"SELECT {_BATCH_COLUMNS} FROM batches b WHERE b.id = ?", (batch_id,))
            row = await cursor.fetchone()
        return None if row is None else _batch_record(row)

    async def access(self, batch_id: str, owner: str) -> Access | None:
        async with self._lock:
            cursor = await self._db.execute(_ACCESS, (batch_id, owner))
            row = await cursor.fetchone()
        return Access(float(row[0]), str(row[1])) if row else None

    async def refuse_key(self, owner: str, at: float) -> None:
        async with self._tx():
            await self._db.execute(_REFUSE, (owner, at))

    # -- idempotency --------------------------------------------------------------------------------------
    async def claim(
        self, owner: str, request_id: str, fingerprint: str, provider: str, *, holder: str, attempt_seconds: float
    ) -> Claim:
        """See Store.claim; one process writes this file, so each claim is one transaction of the one writer."""
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
            cursor = await self._db.execute(
                "SELECT fingerprint, provider, batch_id, created_at, attempt_until FROM idempotency "
                "WHERE owner = ? AND request_id = ?",
                (owner, request_id),
            )
            row = await cursor.fetchone()
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
        async with self._tx():
            await self._db.execute(
                "UPDATE idempotency SET batch_id = ? WHERE owner = ? AND request_id = ?",
                (batch_id, owner, request_id),
            )

    async def release_claim(self, owner: str, request_id: str, holder: str) -> None:
        async with self._tx():
            await self._db.execute(
                "DELETE FROM idempotency WHERE owner = ? AND request_id = ? AND holder = ? AND batch_id IS NULL",
                (owner, request_id, holder),
            )

    async def end_attempt(self, owner: str, request_id: str, holder: str, *, after: float) -> None:
        async with self._tx():
            await self._db.execute(
                "UPDATE idempotency SET attempt_until = ? "
                "WHERE owner = ? AND request_id = ? AND holder = ? AND batch_id IS NULL",
                (time.time() + after, owner, request_id, holder),
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

    async def revisions_after(self, batch_id: str, rev: int) -> list[Revision]:
        return await self._revisions("WHERE batch_id = ? AND rev > ? ORDER BY rev", batch_id, rev)

    async def last_seq(self) -> int:
        value = await self._scalar("SELECT COALESCE(MAX(seq), 0) FROM revisions")
        return int(value) if value is not None else 0

    async def revision_at_or_before(self, batch_id: str, seq: int) -> Revision | None:
        rows = await self._revisions("WHERE batch_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1", batch_id, seq)
        return rows[0] if rows else None

    async def _revisions(self, where: str, *params: object) -> list[Revision]:
        async with self._lock:
            cursor = await self._db.execute(
                f"SELECT batch_id, rev, snapshot, observed_at, seq FROM revisions {where}", params
            )
            rows = await cursor.fetchall()
        return [Revision(str(r[0]), int(r[1]), bytes(r[2]), float(r[3]), int(r[4])) for r in rows]

    # -- retention ----------------------------------------------------------------------------------------
    async def sweep(self, *, now: float, keep_seconds: float, idempotency_seconds: float, claim_seconds: float) -> int:
        """Forget what is past its time: access not verified for `keep_seconds`, batches nobody may see any more
        (with their revisions and results), settled idempotency keys older than `idempotency_seconds`, and
        claims whose create stayed ambiguous for `claim_seconds`. Returns how many rows went."""
        async with self._tx():
            gone = 0
            for sql, params in (
                ("DELETE FROM access WHERE verified_at < ?", (now - keep_seconds,)),
                ("DELETE FROM key_refusals WHERE refused_at < ?", (now - keep_seconds,)),
                (
                    "DELETE FROM batches WHERE last_seen < ? AND NOT EXISTS "
                    "(SELECT 1 FROM access a WHERE a.batch_id = batches.id)",
                    (now - keep_seconds,),
                ),
                ("DELETE FROM revisions WHERE batch_id NOT IN (SELECT id FROM batches)", ()),
                ("DELETE FROM result_sets WHERE batch_id NOT IN (SELECT id FROM batches)", ()),
                (
                    "DELETE FROM idempotency WHERE (batch_id IS NOT NULL AND created_at < ?) "
                    "OR (batch_id IS NULL AND created_at < ? AND attempt_until < ?)",
                    (now - idempotency_seconds, now - claim_seconds, now),
                ),
            ):
                cursor = await self._db.execute(sql, params)
                gone += max(cursor.rowcount, 0)
        return gone

    async def counts(self) -> dict[str, int]:
        """Rows per table (for tests and operators)."""
        out: dict[str, int] = {}
        for table in ("batches", "access", "idempotency", "revisions", "result_sets", "result_chunks", "key_refusals"):
            value = await self._scalar(f"SELECT COUNT(*) FROM {table}")
            out[table] = int(value) if value is not None else 0
        return out

    # -- results cache ------------------------------------------------------------------------------------
    async def result_set(self, batch_id: str) -> int | None:
        """How many results are cached for the batch, once the whole set is in; None otherwise."""
        value = await self._scalar("SELECT items FROM result_sets WHERE batch_id = ? AND complete = 1", batch_id)
        return int(value) if value is not None else None

    async def begin_results(self, batch_id: str) -> None:
        """Start (over) the batch's result set; it is not served until `finish_results`."""
        async with self._tx():
            await self._db.execute("DELETE FROM result_sets WHERE batch_id = ?", (batch_id,))
            await self._db.execute(
                "INSERT INTO result_sets (batch_id, items, bytes, fetched_at, complete) VALUES (?, 0, 0, ?, 0)",
                (batch_id, time.time()),
            )

    async def add_result_chunk(self, batch_id: str, first_index: int, count: int, payload: bytes) -> None:
        async with self._tx():
            await self._db.execute(
                "INSERT INTO result_chunks (batch_id, first_index, count, payload) VALUES (?, ?, ?, ?)",
                (batch_id, first_index, count, payload),
            )

    async def finish_results(self, batch_id: str, *, items: int, nbytes: int) -> None:
        async with self._tx():
            await self._db.execute(
                "UPDATE result_sets SET items = ?, bytes = ?, fetched_at = ?, complete = 1 WHERE batch_id = ?",
                (items, nbytes, time.time(), batch_id),
            )

    async def drop_results(self, batch_id: str) -> None:
        async with self._tx():
            await self._db.execute("DELETE FROM result_sets WHERE batch_id = ?", (batch_id,))

    async def result_chunks(self, batch_id: str, start: int, *, limit: int) -> list[tuple[int, int, bytes]]:
        """(first_index, count, payload) of the cached chunks from the one holding result `start` on."""
        async with self._lock:
            cursor = await self._db.execute(
                "SELECT first_index, count, payload FROM result_chunks "
                "WHERE batch_id = ? AND first_index + count > ? ORDER BY first_index LIMIT ?",
                (batch_id, start, limit),
            )
            rows = await cursor.fetchall()
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    async def trim_results(self, *, max_bytes: int, max_age: float) -> int:
        """Drop cached result sets older than max_age, then the oldest until the rest fit max_bytes."""
        async with self._tx():
            cursor = await self._db.execute(
                "DELETE FROM result_sets WHERE complete = 1 AND fetched_at < ?", (time.time() - max_age,)
            )
            dropped = cursor.rowcount
            cursor = await self._db.execute(
                "SELECT batch_id, bytes FROM result_sets WHERE complete = 1 ORDER BY fetched_at DESC"
            )
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
        with metrics.STORE_SECONDS.time():
            async with self._lock:
                self.transactions += 1
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
