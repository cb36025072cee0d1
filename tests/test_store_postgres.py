"""The PostgreSQL store as replicas use it: several processes' stores (each with its own pool) on one database.
Claims, revisions and migrations stay right when they race; the tables keep to a schema of their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from otari_batch_grpc.server.store import SeenBatch, Store, StoreError, StoreUnavailable, open_store
from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.server.store.postgres import PostgresStore, redacted


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database, as two replicas have them."""
    first = await open_store(postgres_url)
    second = await open_store(postgres_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def _seen(batch_id: str, status: str) -> SeenBatch:
    return SeenBatch(id=batch_id, provider="openai", status=status, terminal=False, snapshot=status.encode())


async def test_concurrent_claims_from_two_replicas_give_one_attempt_the_claim(replicas: tuple[Store, Store]) -> None:
    keys = [f"request-{i}" for i in range(40)]
    attempts = [(key, store, n) for key in keys for store in replicas for n in range(3)]
    claims = await asyncio.gather(
        *(
            s.claim("owner", k, f"digest-{k}", "openai", holder=f"{id(s)}-{n}", attempt_seconds=30)
            for k, s, n in attempts
        )
    )
    mine = Counter(key for (key, _, _), claim in zip(attempts, claims, strict=True) if claim.mine)
    assert mine == Counter(keys)  # exactly one attempt holds each key, whichever replica made it
    assert all(claim.attempt_left > 25 for claim in claims if not claim.mine)  # the others see it running
    assert {claim.fingerprint for claim in claims} == {f"digest-{key}" for key in keys}
    assert (await replicas[0].counts())["idempotency"] == len(keys)


async def test_concurrent_takeovers_of_an_attempt_over_give_one_the_claim(replicas: tuple[Store, Store]) -> None:
    keys = [f"request-{i}" for i in range(20)]
    for key in keys:
        await replicas[0].claim("owner", key, "d", "openai", holder="dead", attempt_seconds=0)
    attempts = [(key, store, n) for key in keys for store in replicas for n in range(3)]
    claims = await asyncio.gather(
        *(s.claim("owner", k, "d", "openai", holder=f"{id(s)}-{n}", attempt_seconds=30) for k, s, n in attempts)
    )
    taken = Counter(key for (key, _, _), claim in zip(attempts, claims, strict=True) if claim.mine)
    assert taken == Counter(keys) and all(claim.recovering for claim in claims if claim.mine)


async def test_revisions_from_two_replicas_get_distinct_increasing_seqs(replicas: tuple[Store, Store]) -> None:
    async def writer(store: Store, name: str) -> list[tuple[str, int, int]]:
        out = []
        for step in range(25):  # the same batch from both, and one of each replica's own
            for batch_id in ("shared", f"own-{name}"):
                (revision,) = await store.enter(
                    [_seen(batch_id, f"{name}-{step}")], [], owner=name, keep=1000, observed_at=float(step)
                )
                out.append((revision.batch_id, revision.rev, revision.seq))
        return out

    first, second = await asyncio.gather(writer(replicas[0], "a"), writer(replicas[1], "b"))
    every = first + second
    seqs = [seq for _, _, seq in every]
    assert len(set(seqs)) == len(seqs) == 100
    for mine in (first, second):  # increasing in each replica's own order
        assert [seq for _, _, seq in mine] == sorted(seq for _, _, seq in mine)
    shared = sorted((seq, rev) for batch_id, rev, seq in every if batch_id == "shared")
    assert [rev for _, rev in shared] == list(range(1, 51))  # each batch's revs count up in seq order, no gap
    assert await replicas[1].last_seq() == max(seqs)
    assert [r.rev for r in await replicas[1].revisions_after("shared", 0)] == list(range(1, 51))


async def test_a_reader_never_sees_a_lower_seq_appear_later(replicas: tuple[Store, Store], postgres_url: str) -> None:
    """Seqs are drawn in commit order, so a watch resuming after seq N misses nothing committed later."""
    done = asyncio.Event()

    async def writer(store: Store, name: str) -> None:
        for step in range(60):  # batches of each writer's own: only the order of seqs can go wrong
            await store.enter([_seen(f"{name}-{step % 5}", f"s{step}")], [], owner=name, keep=10, observed_at=0.0)

    async def reader() -> list[list[int]]:
        conn = await asyncpg.connect(postgres_url, server_settings=PostgresStore.server_settings())
        seen_after: list[list[int]] = []
        last = 0
        try:
            while not done.is_set():
                rows = await conn.fetch("SELECT seq FROM revisions WHERE seq > $1 ORDER BY seq", last)
                if rows:
                    seen_after.append([row[0] for row in rows])
                    last = rows[-1][0]
            return seen_after
        finally:
            await conn.close()

    reading = asyncio.ensure_future(reader())
    await asyncio.gather(*(writer(store, f"{name}{i}") for i, store in enumerate(replicas) for name in "xyz"))
    done.set()
    batches = await reading
    flat = [seq for batch in batches for seq in batch]
    assert flat == sorted(flat) and len(flat) == len(set(flat))
    # Everything committed was seen by a reader that went on from its last seq: nothing appeared behind it.
    async with _connection(postgres_url) as conn:
        stored = {row[0] for row in await conn.fetch(f"SELECT seq FROM {POSTGRES_SCHEMA}.revisions")}
    assert {seq for seq in stored if seq <= flat[-1]} <= set(flat)


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(open_store(postgres_url) for _ in range(6)))
    try:
        for store in stores:
            assert await store.schema_version() == len(PostgresStore.MIGRATIONS)
        async with _connection(postgres_url) as conn:
            versions = await conn.fetch(f"SELECT version FROM {POSTGRES_SCHEMA}.schema_version ORDER BY version")
        assert [row[0] for row in versions] == list(range(1, len(PostgresStore.MIGRATIONS) + 1))
        secrets = await asyncio.gather(*(store.shared_secret("owner_secret") for store in stores))
        assert len(set(secrets)) == 1  # made once, read by every replica
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_the_tables_keep_to_a_schema_of_their_own(postgres_url: str) -> None:
    """A database shared with another application (the gateway's DATABASE_URL, say) may have a `batches` of its own."""
    async with _connection(postgres_url) as conn:
        await conn.execute("CREATE TABLE public.batches (name TEXT); INSERT INTO public.batches VALUES ('theirs')")
    store = await open_store(postgres_url)
    try:
        await store.enter([_seen("b", "s")], [], owner="o", keep=5, observed_at=0.0)
        assert (await store.counts())["batches"] == 1
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()
    async with _connection(postgres_url) as conn:
        assert await conn.fetchval("SELECT name FROM public.batches") == "theirs"
        assert await conn.fetchval(f"SELECT count(*) FROM {POSTGRES_SCHEMA}.batches") == 1


async def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError, match="cannot open the state database") as caught:
        await open_store("postgresql://otari:hunter2@127.0.0.1:1/state")
    assert "hunter2" not in str(caught.value)
    assert redacted("postgresql://otari:hunter2@db:5432/state") == "postgresql://otari:***@db:5432/state"
    assert redacted("postgres://db/state") == "postgres://db/state"


async def test_a_dedicated_connection_sees_the_stores_tables(postgres_url: str) -> None:
    """What later holds a session for good (LISTEN, a lease) gets a connection of its own, outside the pool."""
    store = await open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        await store.enter([_seen("b", "s")], [], owner="o", keep=5, observed_at=0.0)
        conn = await store.dedicated_connection()
        try:
            assert await conn.fetchval("SELECT count(*) FROM revisions") == 1
        finally:
            await conn.close()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _connection(url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_connections_cut_under_statements_are_store_unavailable_and_nothing_else(postgres_url: str) -> None:
    """The state database's connections cut while statements run on them (the soak's pg_cut, #24), in a
    transaction too (its close then fails on a closed connection): each failed call is StoreUnavailable (retried,
    UNAVAILABLE to a caller), never another error, which the watch hub would take for a fault of the server's own;
    and the store works again right after."""
    store = await open_store(postgres_url)
    failures: Counter[str] = Counter()
    cutting = True

    async def use(n: int) -> None:
        while cutting:
            try:
                await store.hold_lease(f"poll:b{n}", "replica/loop", 5.0)
                await store.latest_revision(f"b{n}")
                seen = SeenBatch(f"b{n}", "openai", "in_progress", False, b"state")  # a transaction of statements
                await store.enter([seen], [], owner="o", keep=3, observed_at=1.0)
            except StoreUnavailable:
                failures["StoreUnavailable"] += 1
            except Exception as exc:  # the defect: anything else
                failures[f"{type(exc).__name__}: {exc}"] += 1

    try:
        async with _connection(postgres_url) as admin:
            users = [asyncio.create_task(use(n)) for n in range(20)]
            for _ in range(30):
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'otari-batch-grpc' "
                    "AND pid <> pg_backend_pid()"  # this test's database alone: nobody else's connections
                )
                await asyncio.sleep(0.05)
            cutting = False
            await asyncio.gather(*users)
        assert set(failures) == {"StoreUnavailable"}, failures
        for n in range(50):  # no connection left broken in the pool
            assert await store.hold_lease(f"poll:after{n}", "replica/loop", 5.0)
    finally:
        await store.close()
