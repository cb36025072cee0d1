"""PostgreSQL's connection: a pool of connections on one database that replicas share, its schema migrated once
for all of them (under an advisory lock, all pending migrations in one transaction), its secrets, and the database
as a whole (its check, its rows counted, its retention sweep).

A pool of connections. Every read is one statement; every write is one statement where one can do it
(autocommit: its own transaction, one round trip), else one transaction. asyncpg prepares each statement once per
connection. A commit waits for PostgreSQL's WAL flush (synchronous_commit=on, its default); a URL ending in
`?synchronous_commit=off` makes writes faster at the price of the last fraction of a second of commits if the
database server itself crashes (a replica's crash loses nothing either way). Every table is in the schema
`otari_batch_grpc` (the connections' search_path), beside whatever else the database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeAlias, TypeVar

import asyncpg

from otari_batch_grpc.server.store import migrations, queries
from otari_batch_grpc.server.store.base import Store, StoreError, StoreUnavailable
from otari_batch_grpc.server.telemetry import metrics

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger("otari_batch_grpc.store")
T = TypeVar("T")

SCHEMA = migrations.POSTGRES_SCHEMA
# The service's advisory locks are (LOCK_CLASS, object) pairs; the class is "otar" read as a 32-bit integer.
LOCK_CLASS = int.from_bytes(b"otar", "big")
MIGRATE_LOCK = 1  # held while a process migrates the schema
REVISIONS_LOCK = 2  # held from drawing revisions' seqs to their commit
CLAIM_LOCK = 3  # held by a claim of webhook events to its commit (one replica counts the tries at a time)
# Connections per process: one at rest, more under load (a call holds one for a statement or a transaction).
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT = 10.0
REVISIONS_CHANNEL = "otari_batch_revisions"  # NOTIFY channel: a revision was saved
LISTEN_RETRY_SECONDS = 1.0
# A transaction PostgreSQL rolled back for a deadlock or a serialization failure is run again, this many times.
_ATTEMPTS = 3

_SHARED = """
WITH made AS (INSERT INTO shared (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING value)
SELECT value FROM made UNION ALL SELECT value FROM shared WHERE name = $1
"""

# Settled idempotency keys older than $1, and ambiguous claims older than $2 whose attempt is over, by the database's
# clock. (The rest of the sweep is the shared SQL.)
_SWEEP_IDEMPOTENCY = (
    "DELETE FROM idempotency WHERE (batch_id IS NOT NULL AND created_at < $1) "
    "OR (batch_id IS NULL AND created_at < $2 AND attempt_until < extract(epoch FROM clock_timestamp()))"
)


def rows_of(status: str) -> int:
    """The row count of a command status ("DELETE 3", "INSERT 0 1")."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class PostgresConnection(Store):
    """An asyncpg pool on one database, shared with any number of other processes."""

    MIGRATIONS: ClassVar[tuple[str, ...]] = migrations.POSTGRES
    SHARED: ClassVar[bool] = True

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], url: str) -> None:
        self._pool = pool
        self.url = url
        self.transactions = 0
        self.origin = uuid.uuid4().hex  # this process's name among the replicas (in notices and leases)
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str) -> Self:
        """Open a pool on the database at `url` and migrate it."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=POOL_MIN_SIZE,
                max_size=POOL_MAX_SIZE,
                timeout=CONNECT_TIMEOUT,
                server_settings=cls.server_settings(),
                reset=_keep_session,
            )
        except Exception as exc:  # refused, unknown host or database, bad password, bad URL: all mean the same
            raise StoreError(f"cannot open the state database {redacted(url)}: {exc}") from exc
        store = cls(pool, url)
        try:
            await store._migrate()
        except BaseException:
            await store.close()
            raise
        return store

    @staticmethod
    def server_settings() -> dict[str, str]:
        """The session settings of every connection of the store."""
        return {"search_path": SCHEMA, "application_name": "otari-batch-grpc"}

    async def dedicated_connection(self) -> asyncpg.Connection[asyncpg.Record]:
        """A connection of its own, outside the pool, with the store's settings: for what holds a session for
        good (LISTEN, a lease's session). The caller closes it."""
        return await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT, server_settings=self.server_settings())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        try:
            await asyncio.wait_for(self._pool.close(), 10.0)
        except TimeoutError:
            self._pool.terminate()

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, MIGRATE_LOCK)
            if await conn.fetchval("SELECT to_regnamespace($1) IS NULL", SCHEMA):
                await conn.execute(f"CREATE SCHEMA {SCHEMA}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version "
                "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            version = await conn.fetchval(f"SELECT COALESCE(max(version), 0) FROM {SCHEMA}.schema_version")
            if version > len(self.MIGRATIONS):
                raise StoreError(
                    f"the state database {redacted(self.url)} has schema version {version}, newer than this code "
                    f"knows ({len(self.MIGRATIONS)}): run a newer otari-batch-grpc, or point STATE_DB at another "
                    "database"
                )
            for number, script in enumerate(self.MIGRATIONS[version:], start=version + 1):
                await conn.execute(script)
                await conn.execute(
                    f"INSERT INTO {SCHEMA}.schema_version (version, applied_at) VALUES ($1, $2)", number, time.time()
                )

    async def integrity_check(self) -> str:
        """PostgreSQL keeps its pages consistent itself; this checks that the schema is whole and that no index
        was left invalid (by an interrupted CREATE INDEX CONCURRENTLY, say)."""
        present = await self._fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2::text[])",
            SCHEMA,
            list(queries.TABLES),
        )
        missing = sorted(set(queries.TABLES) - {row[0] for row in present})
        if missing:
            return f"missing tables: {', '.join(missing)}"
        invalid = await self._fetch(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT i.indisvalid",
            SCHEMA,
        )
        if invalid:
            return f"invalid indexes: {', '.join(sorted(row[0] for row in invalid))}"
        return "ok"

    async def schema_version(self) -> int:
        return int(await self._fetchval("SELECT COALESCE(max(version), 0) FROM schema_version"))

    async def shared_secret(self, name: str) -> bytes:
        made = secrets.token_hex(32).encode()
        while True:  # None: another process made it while this statement waited; now it can be read
            value = await self._write_value(_SHARED, name, made)
            if value is not None:
                return bytes(value)

    # -- the database as a whole --------------------------------------------------------------------------
    async def sweep(self, *, now: float, keep_seconds: float, idempotency_seconds: float, claim_seconds: float) -> int:
        async def work(conn: Connection) -> int:
            statuses = [
                await conn.execute(sql, now - keep_seconds) if "$1" in sql else await conn.execute(sql)
                for sql in queries.SWEEP
            ]
            statuses.append(await conn.execute(_SWEEP_IDEMPOTENCY, now - idempotency_seconds, now - claim_seconds))
            return sum(rows_of(status) for status in statuses)

        return await self._write(work)

    async def counts(self) -> dict[str, int]:
        tables = queries.TABLES
        row = await self._fetchrow("SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in tables))
        assert row is not None
        return {table: int(n) for table, n in zip(tables, row, strict=True)}

    # -- plumbing -----------------------------------------------------------------------------------------
    async def _write(self, work: Callable[[Connection], Awaitable[T]], *, single: bool = False) -> T:
        """One write transaction: `work` on a connection of the pool, in BEGIN ... COMMIT, or, when it is a
        `single` statement, as that statement alone (its own transaction, one round trip). Run again when
        PostgreSQL rolled it back for a deadlock or a serialization failure.

        Whole even when the calling task is cancelled at any await in it: asyncpg cancels the statement running,
        and the transaction is rolled back (or, cancelled during COMMIT, committed) before the cancellation
        leaves this method, so the caller's next write comes after it, as on SQLite. Not shielded: a write going
        on in the background could land after the next one and leave an older state the latest."""
        with metrics.STORE_SECONDS.time(), _reaching():
            self.transactions += 1
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    async with self._pool.acquire() as conn:
                        if single:
                            return await work(conn)
                        async with conn.transaction():
                            return await work(conn)
                except asyncpg.TransactionRollbackError:
                    if attempt == _ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    async def _execute(self, sql: str, *args: object) -> str:
        """A write of one statement; its command status."""
        return await self._write(lambda conn: conn.execute(sql, *args), single=True)

    async def _write_row(self, sql: str, *args: object) -> asyncpg.Record | None:
        return await self._write(lambda conn: conn.fetchrow(sql, *args), single=True)

    async def _write_value(self, sql: str, *args: object) -> Any:
        return await self._write(lambda conn: conn.fetchval(sql, *args), single=True)

    async def _fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        with _reaching():
            return await self._pool.fetch(sql, *args)

    async def _fetchrow(self, sql: str, *args: object) -> asyncpg.Record | None:
        with _reaching():
            return await self._pool.fetchrow(sql, *args)

    async def _fetchval(self, sql: str, *args: object) -> Any:
        with _reaching():
            return await self._pool.fetchval(sql, *args)


# How a server that is gone, or a connection cut under a statement, shows through asyncpg (besides OSError and a
# timeout): the caller gets StoreUnavailable, a failure to retry, not a fault of the service.
_LOST = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # administrator shutdown, terminated backend, starting up
    asyncpg.exceptions.TooManyConnectionsError,
)


@contextlib.contextmanager
def _reaching() -> Iterator[None]:
    try:
        yield
    except _LOST as exc:
        raise StoreUnavailable(f"the state database did not answer ({type(exc).__name__})") from exc
    except (asyncpg.exceptions.InternalClientError, asyncpg.exceptions.InterfaceError) as exc:
        # A transaction whose connection was cut under it cannot close ("the underlying connection is closed"):
        # the cut, raised first, is what happened.
        cut = exc.__context__ if isinstance(exc, asyncpg.exceptions.InterfaceError) else exc
        if isinstance(cut, _LOST):
            raise StoreUnavailable(f"the state database did not answer ({type(cut).__name__})") from exc
        if not _cut_mid_statement(cut):
            raise
        raise StoreUnavailable("the state database's connection was cut under a statement") from exc


def _cut_mid_statement(exc: BaseException | None) -> bool:
    """A connection whose backend was terminated under a statement can fail with "cannot switch to state ...;
    another operation is in progress" (MagicStack/asyncpg#1069): a cut connection, not a misuse (the store never
    shares one between operations). Its subclasses (protocol errors and the like) are faults."""
    return type(exc) is asyncpg.exceptions.InternalClientError and "another operation" in str(exc)


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's reset between uses: the store sets no session state (no SET, no LISTEN, no session advisory
    lock, no cursor), so asyncpg's default reset (RESET ALL and the rest, a round trip on every release) has
    nothing to undo; an open transaction is still rolled back by the pool itself."""
