"""SQLite's connection: the one sqlite3 connection of a process, on a thread of its own, its file kept private, its
schema migrated, its transactions whole, and the database as a whole (its check, its rows counted, its retention
sweep).

WAL mode with synchronous=NORMAL: a transaction that returned is in the WAL, written to the OS, so a kill -9 of
the process at any moment loses nothing that was acknowledged (only a power loss can take the last transactions;
FULL would fsync each commit and cost every RPC a millisecond or more).

One connection on one thread (the standard library's: a one-worker executor): each method's transaction is a
function run there whole, in one trip, so none can interleave with another, and a caller cancelled mid-way leaves
none half done. (aiosqlite, used before, sends one statement per trip and has no public way to run a function on
its thread: a save made a dozen trips, each a wake-up of the event loop and of that thread.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, cast

from otari_batch_grpc.server.store import migrations, queries
from otari_batch_grpc.server.store.base import Store, StoreError
from otari_batch_grpc.server.store.sqlite.commits import GroupCommit
from otari_batch_grpc.server.telemetry import metrics

T = TypeVar("T")

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
    """One sqlite3 connection, on a thread of its own: each method's transaction is one piece of work there, run
    whole (BEGIN ... COMMIT) in one trip from the event loop, in the order they were asked for."""

    MIGRATIONS: ClassVar[tuple[str, ...]] = migrations.SQLITE

    def __init__(self, thread: ThreadPoolExecutor, db: sqlite3.Connection, path: Path) -> None:
        self._thread = thread
        self._db = db  # used on `_thread` alone (sqlite3 checks that it is)
        self._commits = GroupCommit(thread, db)
        self.path = path
        self.transactions = 0  # write transactions begun (for tests and operators)
        self._closed = False

    @classmethod
    async def connect(cls, target: str | os.PathLike[str]) -> Self:
        """Open (creating it and its directory if need be) and migrate the database file at `target`."""
        path = Path(target)
        if str(path) != ":memory:":
            await asyncio.to_thread(_private, path)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            db = await asyncio.get_running_loop().run_in_executor(thread, _opened, path)
        except BaseException as exc:
            thread.shutdown(wait=False)  # (a connection it opened meanwhile goes with the thread)
            if isinstance(exc, Exception):  # sqlite3 raises several types here; all mean the same to the operator
                raise StoreError(f"cannot open the state database {path}: {exc}") from exc
            raise
        store = cls(thread, db, path)
        try:
            await store._migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        if self._closed:  # (twice is once)
            return
        self._closed = True
        await asyncio.wrap_future(self._commits.submit(_nothing).answer)  # (the writes queued before it, committed)
        await self._on_thread(self._db.close)
        self._thread.shutdown(wait=False)  # (its thread is idle now: it ends at once)

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

            def migrate(db: sqlite3.Connection, statements: list[str] = statements, number: int = number) -> None:
                for statement in statements:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")

            await self._transaction(migrate)

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
        def sweep(db: sqlite3.Connection) -> int:
            gone = 0
            for sql in queries.SWEEP:
                gone += max(
                    db.execute(queries.for_sqlite(sql), (now - keep_seconds,) if "$1" in sql else ()).rowcount, 0
                )
            params = (now - idempotency_seconds, now - claim_seconds, now)
            return gone + max(db.execute(_SWEEP_IDEMPOTENCY, params).rowcount, 0)

        return await self._transaction(sweep)

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in queries.TABLES:
            value = await self._scalar(f"SELECT COUNT(*) FROM {table}")
            out[table] = int(value) if value is not None else 0
        return out

    # -- plumbing -----------------------------------------------------------------------------------------
    async def _on_thread(self, work: Callable[[], T]) -> T:
        """`work` run on the connection's thread, after what was asked of it before. A call cancelled before its
        work began leaves it undone; one cancelled after lets it finish there (whole: see _transaction)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in a transaction, run whole on the connection's thread: committed if it returns, rolled back if it
        raises. Transactions asked for while the thread is busy share its next commit, each in a savepoint of its
        own (see commits): each still all or nothing, and answered once committed.

        A caller cancelled meanwhile gets nothing done, as on PostgreSQL: its work, if it had not begun, never runs,
        and if it had, it is rolled back before its commit (committed only when the cancel came as it committed; a
        work whose caller left while the rest of its group ran is rolled back with the group, which runs again
        without it: a work's only effects are its writes). What the caller does after a write it was told of (a
        revision remembered and announced, say) it never skips for a write that stays."""
        with metrics.STORE_SECONDS.time():
            self.transactions += 1
            queued = self._commits.submit(work)
            answer = asyncio.wrap_future(queued.answer)
            try:
                return cast(T, await asyncio.shield(answer))
            except asyncio.CancelledError:
                queued.left.set()
                queued.answer.cancel()  # (not begun: it never runs; begun: it sees `left` before it commits)
                answer.add_done_callback(_retrieved)
                raise

    async def _write(self, sql: str, *params: object) -> int:
        """One statement of the shared SQL (queries), in a transaction of its own: the rows it changed."""
        statement = queries.for_sqlite(sql)
        return await self._transaction(lambda db: db.execute(statement, params).rowcount)

    async def _rows(self, sql: str, *params: object) -> list[Any]:
        """The rows of one read of the shared SQL (queries)."""
        statement = queries.for_sqlite(sql)
        return await self._on_thread(lambda: self._db.execute(statement, params).fetchall())

    async def _scalar(self, sql: str, *params: object) -> Any:
        rows = await self._rows(sql, *params)
        return rows[0][0] if rows else None


def _nothing(_db: sqlite3.Connection) -> None:
    return None


def _retrieved(answer: asyncio.Future[Any]) -> None:
    """The outcome of work its caller left: taken, so that asyncio does not log it as never retrieved."""
    if not answer.cancelled():
        answer.exception()


def _opened(path: Path) -> sqlite3.Connection:
    """The connection, on the thread that is to use it, set up: WAL, synchronous=NORMAL, foreign keys, a busy
    timeout, and 1 MiB of page cache (the default is 2: cached results pass through it, and memory should not grow
    with the batch being streamed). Autocommit outside the explicit transactions (isolation_level=None)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=5000"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("PRAGMA cache_size=-1024")
    except BaseException:
        db.close()
        raise
    return db
