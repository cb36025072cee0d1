"""The store on PostgreSQL (asyncpg): the state that replicas share, so any of them can answer any call.

A pool of connections. Every read is one statement; every write is one statement where one can do it
(autocommit: its own transaction, one round trip), else one transaction. asyncpg prepares each statement once per
connection. A commit waits for PostgreSQL's WAL flush (synchronous_commit=on, its default); a URL ending in
`?synchronous_commit=off` makes writes faster at the price of the last fraction of a second of commits if the
database server itself crashes (a replica's crash loses nothing either way). What the replicas must agree on is
settled in the database:
- an idempotency claim is a row (`INSERT ... ON CONFLICT DO NOTHING`), held by one create attempt at a time until
  a deadline of its own, by the database's clock (see Claim);
- revisions are numbered by a sequence (`seq`), and drawn under an advisory lock held to the commit, so seq order
  is commit order: a reader that has seen seq N will never find a revision below N appear later;
- migrations run under an advisory lock, all pending ones in one transaction (DDL is transactional here), so
  replicas starting together migrate once;
- the secret of the keyed hash that stands for a caller lives in the database, so replicas hash alike.
Every table is in the schema `otari_batch_grpc` (the connections' search_path), beside whatever else the
database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar

import asyncpg

from otari_batch_grpc.server.store import migrations
from otari_batch_grpc.server.store.base import (
    Access,
    BatchRecord,
    Claim,
    Notice,
    RefusalNotice,
    Revision,
    RevisionNotice,
    SeenBatch,
    Store,
    StoreError,
    StoreUnavailable,
)
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
# Connections per process: one at rest, more under load (a call holds one for a statement or a transaction).
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT = 10.0
REVISIONS_CHANNEL = "otari_batch_revisions"  # NOTIFY channel: a revision was saved
LISTEN_RETRY_SECONDS = 1.0
# A transaction PostgreSQL rolled back for a deadlock or a serialization failure is run again, this many times.
_ATTEMPTS = 3
_TABLES = ("batches", "access", "idempotency", "revisions", "result_sets", "result_chunks", "key_refusals")

_BATCH_COLUMNS = (
    "b.id, b.provider, b.creator, b.status, b.terminal, b.snapshot, b.first_seen, b.last_seen, b.created_at"
)

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
    INSERT INTO revisions (batch_id, rev, snapshot, observed_at)
    SELECT id, rev, snapshot, $12::float8 FROM numbered ORDER BY ord
    RETURNING batch_id, rev, seq
),
trimmed AS (
    DELETE FROM revisions d USING (SELECT id, max(rev) AS rev FROM numbered GROUP BY id) n
    WHERE d.batch_id = n.id AND d.rev <= n.rev - $13::int
)
SELECT i.rev, i.seq FROM inserted i JOIN numbered n ON n.id = i.batch_id AND n.rev = i.rev ORDER BY n.ord
"""

# A lease row is taken when free or expired, renewed by its holder, and left alone otherwise (no row comes back).
# A holder is "<replica>/<generation>": a replica's newer generation (a loop that replaced an ending one) takes
# over its own older one at once, and a release deletes only its own generation's row (compare-and-delete), so an
# ending loop never frees the lease of the loop that replaced it.
_HOLD_LEASE = """
INSERT INTO leases AS l (name, holder, expires_at)
VALUES ($1, $2, extract(epoch FROM clock_timestamp()) + $3::float8)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < extract(epoch FROM clock_timestamp())
   OR split_part(l.holder, '/', 1) = split_part(excluded.holder, '/', 1)
RETURNING holder
"""

_GRANT = """
INSERT INTO access AS a (batch_id, owner, verified_at)
SELECT DISTINCT v, $2::text, $3::float8 FROM unnest($1::text[]) AS v ORDER BY 1
ON CONFLICT (batch_id, owner) DO UPDATE SET verified_at = excluded.verified_at
"""

# The claim made (`made`), or taken over from an attempt that is over (`taken`), or else the row that holds the key
# as it is. When another transaction's claim committed while this statement waited on it, no part answers (this
# statement's snapshot predates it): the caller asks again. Times are the database's clock, shared by replicas.
_CLAIM = """
WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) AS now),
made AS (
    INSERT INTO idempotency (owner, request_id, fingerprint, provider, batch_id, created_at, holder, attempt_until)
    SELECT $1, $2, $3, $4, NULL, now, $5, now + $6::float8 FROM clock
    ON CONFLICT DO NOTHING
    RETURNING fingerprint, provider, batch_id, created_at, attempt_until
),
taken AS (
    UPDATE idempotency i SET holder = $5, attempt_until = (SELECT now FROM clock) + $6::float8
    WHERE i.owner = $1 AND i.request_id = $2 AND i.fingerprint = $3 AND i.batch_id IS NULL
      AND i.attempt_until <= (SELECT now FROM clock)
    RETURNING i.fingerprint, i.provider, i.batch_id, i.created_at, i.attempt_until
)
SELECT true AS mine, false AS recovering, fingerprint, provider, batch_id, created_at, $6::float8 AS left FROM made
UNION ALL
SELECT true, true, fingerprint, provider, batch_id, created_at, $6::float8 FROM taken
UNION ALL
SELECT false, false, fingerprint, provider, batch_id, created_at, attempt_until - (SELECT now FROM clock)
FROM idempotency WHERE owner = $1 AND request_id = $2 AND NOT EXISTS (SELECT 1 FROM taken)
"""

# The access of an owner to a batch, as long as the gateway showed it after it last refused the owner's key.
_ACCESS = """
SELECT CASE WHEN a.verified_at > COALESCE(k.refused_at, 0) THEN a.verified_at ELSE 0.0 END, b.provider
FROM access a JOIN batches b ON b.id = a.batch_id LEFT JOIN key_refusals k ON k.owner = a.owner
WHERE a.batch_id = $1 AND a.owner = $2
"""

# A refusal recorded (the latest kept), then every replica told.
_REFUSE = """
WITH kept AS (
    INSERT INTO key_refusals AS k (owner, refused_at) VALUES ($1, $2)
    ON CONFLICT (owner) DO UPDATE SET refused_at = greatest(k.refused_at, excluded.refused_at)
)
SELECT pg_notify($3, $4)
"""

_SHARED = """
WITH made AS (INSERT INTO shared (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING value)
SELECT value FROM made UNION ALL SELECT value FROM shared WHERE name = $1
"""

# The complete sets older than the age limit, then the oldest of the rest past the byte budget.
_TRIM = """
WITH aged AS (
    DELETE FROM result_sets WHERE complete AND fetched_at < $1 RETURNING batch_id
),
ranked AS (
    SELECT batch_id, sum(bytes) OVER (ORDER BY fetched_at DESC, batch_id) AS running
    FROM result_sets WHERE complete AND fetched_at >= $1
),
over AS (
    DELETE FROM result_sets r USING ranked k WHERE r.batch_id = k.batch_id AND k.running > $2 RETURNING r.batch_id
)
SELECT (SELECT count(*) FROM aged) + (SELECT count(*) FROM over)
"""

_SWEEP = (
    "DELETE FROM access WHERE verified_at < $1",
    "DELETE FROM key_refusals WHERE refused_at < $1",
    "DELETE FROM batches b WHERE b.last_seen < $1 AND NOT EXISTS (SELECT 1 FROM access a WHERE a.batch_id = b.id)",
    "DELETE FROM revisions r WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = r.batch_id)",
    "DELETE FROM result_sets r WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = r.batch_id)",
    "DELETE FROM idempotency WHERE (batch_id IS NOT NULL AND created_at < $1) "
    "OR (batch_id IS NULL AND created_at < $2 AND attempt_until < extract(epoch FROM clock_timestamp()))",
)


def _batch_record(row: asyncpg.Record) -> BatchRecord:
    return BatchRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])


def _revision(row: asyncpg.Record) -> Revision:
    return Revision(row[0], row[1], row[2], row[3], row[4])


def _rows(status: str) -> int:
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


class PostgresStore(Store):
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
    async def connect(cls, url: str) -> PostgresStore:
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

    # -- a fleet of replicas on one store -------------------------------------------------------------------
    async def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        return await self._write_value(_HOLD_LEASE, name, holder, seconds) is not None

    async def release_lease(self, name: str, holder: str) -> None:
        await self._execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)

    async def follow(self, notice: Callable[[Notice], None]) -> None:
        if self._listener is None:
            ready = asyncio.get_running_loop().create_future()
            self._listener = asyncio.create_task(self._listen(notice, ready), name="revisions-listener")
            await ready

    async def _listen(self, notice: Callable[[Notice], None], ready: asyncio.Future[None]) -> None:
        """LISTEN on a connection of its own, for good: reconnect when it is lost (what was announced meanwhile is
        caught up by the hub's own reads of the store; a refusal missed, by `access`, which reads it with the
        access)."""

        def heard(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            try:
                data = json.loads(str(payload))
                item: Notice
                if "refused" in data:
                    item = RefusalNotice(str(data["refused"]), float(data["at"]), str(data["from"]))
                else:
                    item = RevisionNotice(
                        str(data["b"]), int(data["r"]), str(data["o"]), str(data["p"]), str(data["from"])
                    )
            except (ValueError, KeyError, TypeError):
                log.warning("a revision notice that is not one of ours: %.80s", payload)
                return
            if item.origin != self.origin:
                notice(item)

        while True:
            try:
                conn = await self.dedicated_connection()
            except Exception as exc:
                log.warning("cannot listen for other replicas' revisions (%s); retrying", type(exc).__name__)
                if not ready.done():
                    ready.set_result(None)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            try:
                await conn.add_listener(REVISIONS_CHANNEL, heard)
                if not ready.done():
                    ready.set_result(None)
                await lost.wait()
                log.warning("lost the connection listening for other replicas' revisions; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5.0)

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
            list(_TABLES),
        )
        missing = sorted(set(_TABLES) - {row[0] for row in present})
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

    # -- registry and access ------------------------------------------------------------------------------
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
        )

        async def work(conn: Connection) -> list[asyncpg.Record]:
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, REVISIONS_LOCK)
            rows = await conn.fetch(_ENTER, *args)
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
        await self._execute("DELETE FROM access WHERE batch_id = $1 AND owner = $2", batch_id, owner)

    async def list_for(
        self, owner: str, provider: str | None, *, before: tuple[float, float, str] | None, limit: int
    ) -> list[BatchRecord]:
        where = ["a.owner = $1"]
        params: list[object] = [owner]
        if provider:
            params.append(provider)
            where.append(f"lower(b.provider) = lower(${len(params)})")
        if before is not None:
            params.extend(before)
            n = len(params)
            where.append(f"(b.created_at, b.first_seen, b.id) < (${n - 2}::float8, ${n - 1}::float8, ${n}::text)")
        params.append(limit)
        rows = await self._fetch(
            f"SELECT {_BATCH_COLUMNS} FROM batches b JOIN access a ON a.batch_id = b.id "
            f"WHERE {' AND '.join(where)} ORDER BY b.created_at DESC, b.first_seen DESC, b.id DESC "
            f"LIMIT ${len(params)}",
            *params,
        )
        return [_batch_record(row) for row in rows]

    async def changed_since(self, owner: str, seq: int, limit: int) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id WHERE a.owner = $1 "
            "AND EXISTS (SELECT 1 FROM revisions r WHERE r.batch_id = b.id AND r.seq > $2) "
            "ORDER BY b.created_at DESC LIMIT $3",
            owner,
            seq,
            limit,
        )
        return [(r[0], r[1]) for r in rows]

    async def providers_for(self, owner: str) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT lower(b.provider) FROM batches b JOIN access a ON a.batch_id = b.id "
            "WHERE a.owner = $1 ORDER BY 1",
            owner,
        )
        return [r[0] for r in rows]

    async def batch(self, batch_id: str) -> BatchRecord | None:
        row = await self._fetchrow(f"SELECT {_BATCH_COLUMNS} FROM batches b WHERE b.id = $1", batch_id)
        return None if row is None else _batch_record(row)

    async def access(self, batch_id: str, owner: str) -> Access | None:
        row = await self._fetchrow(_ACCESS, batch_id, owner)
        return Access(float(row[0]), str(row[1])) if row is not None else None

    async def refuse_key(self, owner: str, at: float) -> None:
        notice = json.dumps({"refused": owner, "at": at, "from": self.origin})
        await self._write_value(_REFUSE, owner, at, REVISIONS_CHANNEL, notice)

    async def live_batches(self, owner: str, limit: int) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id "
            "WHERE a.owner = $1 AND NOT b.terminal ORDER BY b.first_seen DESC LIMIT $2",
            owner,
            limit,
        )
        return [(r[0], r[1]) for r in rows]

    # -- idempotency --------------------------------------------------------------------------------------
    async def claim(
        self, owner: str, request_id: str, fingerprint: str, provider: str, *, holder: str, attempt_seconds: float
    ) -> Claim:
        while True:
            row = await self._write_row(_CLAIM, owner, request_id, fingerprint, provider, holder, attempt_seconds)
            if row is not None:
                return Claim(row[0], row[1], row[2], row[3], row[4], row[5], row[6])

    async def settle_claim(self, owner: str, request_id: str, batch_id: str) -> None:
        await self._execute(
            "UPDATE idempotency SET batch_id = $1 WHERE owner = $2 AND request_id = $3", batch_id, owner, request_id
        )

    async def release_claim(self, owner: str, request_id: str, holder: str) -> None:
        await self._execute(
            "DELETE FROM idempotency WHERE owner = $1 AND request_id = $2 AND holder = $3 AND batch_id IS NULL",
            owner,
            request_id,
            holder,
        )

    async def end_attempt(self, owner: str, request_id: str, holder: str, *, after: float) -> None:
        await self._execute(
            "UPDATE idempotency SET attempt_until = extract(epoch FROM clock_timestamp()) + $4::float8 "
            "WHERE owner = $1 AND request_id = $2 AND holder = $3 AND batch_id IS NULL",
            owner,
            request_id,
            holder,
            after,
        )

    # -- revisions ----------------------------------------------------------------------------------------
    async def latest_revision(self, batch_id: str) -> Revision | None:
        rows = await self._revisions("WHERE batch_id = $1 ORDER BY rev DESC LIMIT 1", batch_id)
        return rows[0] if rows else None

    async def revisions_after(self, batch_id: str, rev: int) -> list[Revision]:
        return await self._revisions("WHERE batch_id = $1 AND rev > $2 ORDER BY rev", batch_id, rev)

    async def last_seq(self) -> int:
        return int(await self._fetchval("SELECT COALESCE(max(seq), 0) FROM revisions"))

    async def revision_at_or_before(self, batch_id: str, seq: int) -> Revision | None:
        rows = await self._revisions("WHERE batch_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1", batch_id, seq)
        return rows[0] if rows else None

    async def _revisions(self, where: str, *params: object) -> list[Revision]:
        rows = await self._fetch(f"SELECT batch_id, rev, snapshot, observed_at, seq FROM revisions {where}", *params)
        return [_revision(r) for r in rows]

    # -- retention ----------------------------------------------------------------------------------------
    async def sweep(self, *, now: float, keep_seconds: float, idempotency_seconds: float, claim_seconds: float) -> int:
        access, refusals, batches, revisions, results, idempotency = _SWEEP

        async def work(conn: Connection) -> int:
            statuses = [
                await conn.execute(access, now - keep_seconds),
                await conn.execute(refusals, now - keep_seconds),
                await conn.execute(batches, now - keep_seconds),
                await conn.execute(revisions),
                await conn.execute(results),
                await conn.execute(idempotency, now - idempotency_seconds, now - claim_seconds),
            ]
            return sum(_rows(status) for status in statuses)

        return await self._write(work)

    async def counts(self) -> dict[str, int]:
        row = await self._fetchrow("SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in _TABLES))
        assert row is not None
        return {table: int(n) for table, n in zip(_TABLES, row, strict=True)}

    # -- results cache ------------------------------------------------------------------------------------
    async def result_set(self, batch_id: str) -> int | None:
        value = await self._fetchval("SELECT items FROM result_sets WHERE batch_id = $1 AND complete", batch_id)
        return int(value) if value is not None else None

    async def begin_results(self, batch_id: str) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute("DELETE FROM result_sets WHERE batch_id = $1", batch_id)
            await conn.execute(
                "INSERT INTO result_sets (batch_id, items, bytes, fetched_at, complete) VALUES ($1, 0, 0, $2, false)",
                batch_id,
                time.time(),
            )

        await self._write(work)

    async def add_result_chunk(self, batch_id: str, first_index: int, count: int, payload: bytes) -> None:
        await self._execute(
            "INSERT INTO result_chunks (batch_id, first_index, count, payload) VALUES ($1, $2, $3, $4)",
            batch_id,
            first_index,
            count,
            payload,
        )

    async def finish_results(self, batch_id: str, *, items: int, nbytes: int) -> None:
        await self._execute(
            "UPDATE result_sets SET items = $1, bytes = $2, fetched_at = $3, complete = true WHERE batch_id = $4",
            items,
            nbytes,
            time.time(),
            batch_id,
        )

    async def drop_results(self, batch_id: str) -> None:
        await self._execute("DELETE FROM result_sets WHERE batch_id = $1", batch_id)

    async def result_chunks(self, batch_id: str, start: int, *, limit: int) -> list[tuple[int, int, bytes]]:
        rows = await self._fetch(
            "SELECT first_index, count, payload FROM result_chunks "
            "WHERE batch_id = $1 AND first_index + count > $2 ORDER BY first_index LIMIT $3",
            batch_id,
            start,
            limit,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def trim_results(self, *, max_bytes: int, max_age: float) -> int:
        cutoff = time.time() - max_age
        return int(await self._write_value(_TRIM, cutoff, max_bytes))

    async def results_bytes(self) -> int:
        return int(await self._fetchval("SELECT COALESCE(sum(bytes), 0)::bigint FROM result_sets"))

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
    except asyncpg.exceptions.InternalClientError as exc:
        # A connection whose backend was terminated under a statement can fail with "cannot switch to state ...;
        # another operation is in progress" (MagicStack/asyncpg#1069): a cut connection, not a misuse (the store
        # never shares one between operations). Its subclasses (protocol errors and the like) are faults.
        if type(exc) is not asyncpg.exceptions.InternalClientError or "another operation" not in str(exc):
            raise
        raise StoreUnavailable("the state database's connection was cut under a statement") from exc


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's reset between uses: the store sets no session state (no SET, no LISTEN, no session advisory
    lock, no cursor), so asyncpg's default reset (RESET ALL and the rest, a round trip on every release) has
    nothing to undo; an open transaction is still rolled back by the pool itself."""
