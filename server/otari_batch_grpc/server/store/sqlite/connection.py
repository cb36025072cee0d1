"""SQLite's connection: the one aiosqlite connection of a process, its file kept private, its schema migrated,
its transactions whole, and the database as a whole (its check, its rows counted, its retention sweep).

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
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import aiosqlite

from otari_batch_grpc.server.store import migrations, queries
from otari_batch_grpc.server.store.base import Store, StoreError
from otari_batch_grpc.server.telemetry import metrics

# The database holds cached results and who was shown what: only the service's own user may read it.
_FILE_MODE = 0o600
_FOLDER_MODE = 0o700

# Settled idempotency keys older than $1, and ambiguous claims older than $2 whose attempt is over ($3 is now).
_SWEEP_IDEMPOTENCY = (
    "DELETE FROM idempotency WHERE (batch_id IS NOT NULL AND created_at < ?1) "
    "OR (batch_id IS NULL AND created_at < ?2 AND attempt_until < ?3)"
)


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


class SqliteConnection(Store):
    """One aiosqlite connection; a lock makes each method's transaction whole."""

    MIGRATIONS: ClassVar[tuple[str, ...]] = migrations.SQLITE

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path
        self.transactions = 0  # write transactions begun (for tests and operators)

    @classmethod
    async def connect(cls, target: str | os.PathLike[str]) -> Self:
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

    # -- the database as a whole --------------------------------------------------------------------------
    async def sweep(self, *, now: float, keep_seconds: float, idempotency_seconds: float, claim_seconds: float) -> int:
        async with self._tx():
            gone = 0
            for sql in queries.SWEEP:
                cursor = await self._db.execute(queries.for_sqlite(sql), (now - keep_seconds,) if "$1" in sql else ())
                gone += max(cursor.rowcount, 0)
            params = (now - idempotency_seconds, now - claim_seconds, now)
            cursor = await self._db.execute(_SWEEP_IDEMPOTENCY, params)
            gone += max(cursor.rowcount, 0)
        return gone

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in queries.TABLES:
            value = await self._scalar(f"SELECT COUNT(*) FROM {table}")
            out[table] = int(value) if value is not None else 0
        return out

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

    async def _write(self, sql: str, *params: object) -> None:
        """One statement of the shared SQL (queries), in a transaction of its own."""
        async with self._tx():
            await self._db.execute(queries.for_sqlite(sql), params)

    async def _rows(self, sql: str, *params: object) -> Sequence[Any]:
        """The rows of one read of the shared SQL (queries)."""
        async with self._lock:
            return await self._fetch_all(queries.for_sqlite(sql), params)

    async def _scalar(self, sql: str, *params: object) -> Any:
        async with self._lock:
            row = await self._fetch_one(queries.for_sqlite(sql), params)
        return row[0] if row else None

    async def _fetch_all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of one statement, run and read in one trip to the connection's thread (each trip costs the
        event loop and that thread a wake-up: a save makes a dozen)."""
        return list(await self._db.execute_fetchall(sql, params))

    async def _fetch_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first row of one statement (None if none), in one trip to the connection's thread."""
        rows = await self._fetch_all(sql, params)
        return rows[0] if rows else None
