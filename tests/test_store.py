"""The store, against both backends (SQLite and PostgreSQL: one interface, so they cannot drift): versioned
migrations, refusal of a newer schema, what each method keeps and answers, and nothing acknowledged lost to a
kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import signal
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest

from otari_batch_grpc.server.store import (
    MIGRATIONS,
    Access,
    Change,
    Delivery,
    DeliveryRecord,
    EndpointRecord,
    Notify,
    PartPlan,
    Revision,
    SeenBatch,
    Store,
    StoreError,
    WholeRecord,
    open_store,
)
from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.server.store.postgres import PostgresStore
from otari_batch_grpc.server.store.sqlite import SqliteStore
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, clean_env, connect, create_request, details, eventually

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "s.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(target: str | Path) -> AsyncIterator[Store]:
    opened = await open_store(target)
    try:
        yield opened
    finally:
        await opened.close()


def seen(batch_id: str, *, provider: str = "openai", status: str = "in_progress", **fields: object) -> SeenBatch:
    values: dict[str, object] = {"terminal": False, "snapshot": f"{batch_id}:{status}".encode(), **fields}
    return SeenBatch(id=batch_id, provider=provider, status=status, **values)  # type: ignore[arg-type]


def test_callers_see_one_interface() -> None:
    """What a backend offers beyond `Store` is only how it is opened (and, for PostgreSQL, the sessions later steps
    of scale-out hold): nothing a caller could come to depend on with one backend only."""

    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}

    assert public(SqliteStore) - public(Store) == {"connect"}
    assert public(PostgresStore) - public(Store) == {"connect", "server_settings", "dedicated_connection"}
    assert not SqliteStore.__abstractmethods__ and not PostgresStore.__abstractmethods__


# -- migrations ---------------------------------------------------------------------------------------------------
async def test_a_new_database_is_migrated_to_the_latest_schema(target: str | Path) -> None:
    store = await open_store(target)
    try:
        assert await store.schema_version() == len(store.MIGRATIONS)
        assert await store.integrity_check() == "ok"
        await store.enter([seen("b")], [], owner="o", keep=5, observed_at=1.0)
    finally:
        await store.close()
    if isinstance(target, Path):
        assert len(MIGRATIONS) == len(store.MIGRATIONS)  # the name older code imports
        with sqlite3.connect(target) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = await open_store(target)  # reopening migrates nothing and loses nothing
    try:
        assert await again.schema_version() == len(again.MIGRATIONS)
        assert (await again.counts())["revisions"] == 1
    finally:
        await again.close()


async def test_a_newer_schema_than_the_code_knows_is_refused(target: str | Path) -> None:
    store = await open_store(target)
    newer = len(store.MIGRATIONS) + 1
    await store.close()
    if isinstance(target, Path):
        with sqlite3.connect(target) as db:
            db.execute(f"PRAGMA user_version={newer}")
    else:
        conn = await asyncpg.connect(target)
        try:
            await conn.execute(f"INSERT INTO {POSTGRES_SCHEMA}.schema_version VALUES ($1, 0)", newer)
        finally:
            await conn.close()
    with pytest.raises(StoreError, match="newer than this code knows"):
        await open_store(target)


# -- registry, access, revisions ---------------------------------------------------------------------------------
async def test_each_change_is_the_next_revision_and_the_newest_are_kept(store: Store) -> None:
    revisions: list[Revision] = []
    for step in range(5):
        (revision,) = await store.enter([seen("b", status=f"s{step}")], [], owner="o", keep=3, observed_at=float(step))
        revisions.append(revision)
    assert [r.rev for r in revisions] == [1, 2, 3, 4, 5]
    assert [r.snapshot for r in revisions] == [f"b:s{i}".encode() for i in range(5)]
    seqs = [r.seq for r in revisions]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5 and seqs[0] > 0
    assert await store.revisions_after("b", 0) == revisions[2:]  # the newest 3
    assert await store.revisions_after("b", 4) == revisions[4:]
    assert await store.latest_revision("b") == revisions[4]
    assert await store.latest_revision("other") is None
    assert await store.last_seq() == seqs[4]
    assert await store.revision_at_or_before("b", seqs[3]) == revisions[3]
    assert await store.revision_at_or_before("b", seqs[4] + 100) == revisions[4]
    record = await store.batch("b")
    assert record is not None and record.status == "s4" and record.snapshot == b"b:s4" and not record.terminal


async def test_one_entry_records_several_batches_in_their_order(store: Store) -> None:
    revisions = await store.enter(
        [seen("x"), seen("y", provider="anthropic"), seen("x", status="done", terminal=True)],
        [],
        owner="o",
        keep=10,
        observed_at=7.0,
    )
    assert [(r.batch_id, r.rev, r.observed_at) for r in revisions] == [("x", 1, 7.0), ("y", 1, 7.0), ("x", 2, 7.0)]
    assert [r.seq for r in revisions] == sorted(r.seq for r in revisions)
    record = await store.batch("x")
    assert record is not None and record.status == "done" and record.terminal


async def test_access_is_per_owner_and_the_creator_is_the_first(store: Store) -> None:
    assert await store.enter([], [], owner="o", keep=5, observed_at=1.0) == []
    before = store.transactions
    await store.enter([seen("b")], [], owner="alice", creator=True, keep=5, observed_at=1.0)
    await store.enter([seen("b", status="done")], [], owner="bob", creator=True, keep=5, observed_at=2.0)
    assert store.transactions == before + 2
    record = await store.batch("b")
    assert record is not None and record.creator == "alice"  # a later creator does not replace the first
    shown = await store.access("b", "alice")
    assert shown is not None and shown.provider == "openai"
    assert await store.access("b", "carol") is None  # nothing leaks to a caller never shown it
    assert await store.enter([], ["b"], owner="carol", keep=5, observed_at=42.0) == []  # access only
    assert await store.access("b", "carol") == Access(42.0, "openai")
    assert (await store.counts())["revisions"] == 2
    await store.revoke("b", "alice")
    assert await store.access("b", "alice") is None
    assert (await store.access("b", "bob") or Access(0.0, "")).provider == "openai"
    assert await store.batch("nope") is None


async def test_listing_is_newest_first_by_owner_and_provider(store: Store) -> None:
    batches = [
        seen("a", provider="OpenAI", created_at=100.0),
        seen("b", provider="anthropic", created_at=300.0, status="completed", terminal=True),
        seen("c", provider="openai", created_at=200.0),
    ]
    await store.enter(batches, [], owner="o", keep=5, observed_at=1.0)
    await store.enter([seen("d", created_at=400.0)], [], owner="someone-else", keep=5, observed_at=1.0)
    listed = await store.list_for("o", None, before=None, limit=10)
    assert [r.id for r in listed] == ["b", "c", "a"]
    first_page = await store.list_for("o", None, before=None, limit=2)
    last = first_page[-1]
    rest = await store.list_for("o", None, before=(last.created_at, last.first_seen, last.id), limit=10)
    assert [r.id for r in first_page + rest] == ["b", "c", "a"]
    assert [r.id for r in await store.list_for("o", "openai", before=None, limit=10)] == ["c", "a"]
    assert await store.providers_for("o") == ["anthropic", "openai"]
    assert await store.providers_for("nobody") == []
    assert await store.live_batches("o", 10) == [("a", "OpenAI"), ("c", "openai")]  # newest seen first
    assert len(await store.live_batches("o", 1)) == 1
    assert sorted(await store.changed_since("o", 0, 10)) == [("a", "OpenAI"), ("b", "anthropic"), ("c", "openai")]
    mark = await store.last_seq()
    await store.enter([seen("c", status="completed", terminal=True)], [], owner="o", keep=5, observed_at=2.0)
    assert await store.changed_since("o", mark, 10) == [("c", "openai")]
    assert await store.live_batches("o", 10) == [("a", "OpenAI")]
    # Revisions another replica saved (a store of one process's own has none): by number, time and who saved them.
    assert await store.saved_elsewhere("o", mark + 1, 0.0, store.origin, 10) == []  # all this process's
    elsewhere = await store.saved_elsewhere("o", mark + 1, 2.0, "0" * 32, 10)
    assert elsewhere == ([("c", "openai")] if store.SHARED else [])
    assert await store.saved_elsewhere("o", mark, 2.0, "0" * 32, 10) == []  # numbered past it
    assert await store.saved_elsewhere("o", mark + 1, 2.5, "0" * 32, 10) == []  # observed before `since`
    assert await store.saved_elsewhere("o", mark + 1, 2.0, "0" * 32, 10, among=["a", "b"]) == []  # not listed
    assert await store.saved_elsewhere("o", mark + 1, 2.0, "0" * 32, 10, among=["c"]) == elsewhere


async def test_batches_of_one_entry_keep_the_order_they_came_in(store: Store) -> None:
    """A gateway page comes newest first; batches with equal created_at keep that order in listings."""
    await store.enter([seen(name) for name in ("p", "q", "r")], [], owner="o", keep=5, observed_at=1.0)
    assert [b.id for b in await store.list_for("o", None, before=None, limit=10)] == ["p", "q", "r"]


# -- idempotency --------------------------------------------------------------------------------------------------
async def test_a_claim_is_held_by_one_attempt_then_settled_or_released(store: Store) -> None:
    first = await store.claim("o", "r1", "digest", "openai", holder="a", attempt_seconds=30)
    assert first.mine and not first.recovering and first.batch_id is None and first.fingerprint == "digest"
    again = await store.claim("o", "r1", "digest", "openai", holder="b", attempt_seconds=30)
    assert not again.mine and 25 < again.attempt_left <= 30  # a running attempt holds it: wait for it
    assert (again.fingerprint, again.provider, again.created_at) == ("digest", "openai", first.created_at)
    other = await store.claim("o", "r1", "other digest", "anthropic", holder="b", attempt_seconds=30)
    assert not other.mine and other.fingerprint == "digest"  # a different request: refused by the caller
    assert (await store.claim("someone-else", "r1", "x", "openai", holder="c", attempt_seconds=30)).mine
    await store.release_claim("o", "r1", "b")  # not b's to release
    assert not (await store.claim("o", "r1", "digest", "openai", holder="b", attempt_seconds=30)).mine
    await store.release_claim("o", "r1", "a")
    fresh = await store.claim("o", "r1", "digest 2", "openai", holder="b", attempt_seconds=30)
    assert fresh.mine and not fresh.recovering  # a certain failure lets a retry start over
    await store.settle_claim("o", "r1", "batch_1")
    await store.release_claim("o", "r1", "b")  # a settled claim stays
    settled = await store.claim("o", "r1", "digest 2", "openai", holder="c", attempt_seconds=30)
    assert not settled.mine and settled.batch_id == "batch_1"


async def test_an_attempt_over_without_a_reply_is_taken_over_by_the_next(store: Store) -> None:
    await store.claim("o", "r", "d", "openai", holder="a", attempt_seconds=30)
    await store.end_attempt("o", "r", "b", after=0)  # only the holder ends its attempt
    assert not (await store.claim("o", "r", "d", "openai", holder="b", attempt_seconds=30)).mine
    await store.end_attempt("o", "r", "a", after=0)
    taken = await store.claim("o", "r", "d", "openai", holder="b", attempt_seconds=30)
    assert taken.mine and taken.recovering  # look upstream for what a made, then create
    assert not (await store.claim("o", "r", "d", "openai", holder="c", attempt_seconds=30)).mine
    await store.release_claim("o", "r", "a")  # a's attempt is over: it cannot drop b's
    assert not (await store.claim("o", "r", "d", "openai", holder="c", attempt_seconds=30)).mine
    # An attempt that dies holds the claim only until its own deadline.
    await store.claim("o", "dies", "d", "openai", holder="a", attempt_seconds=0.2)
    assert not (await store.claim("o", "dies", "d", "openai", holder="b", attempt_seconds=30)).mine
    await asyncio.sleep(0.3)
    assert (await store.claim("o", "dies", "d", "openai", holder="b", attempt_seconds=30)).recovering


async def test_a_claim_is_renewed_only_by_its_holder(store: Store) -> None:
    await store.claim("o", "long", "d", "openai", holder="a", attempt_seconds=0.2)
    assert await store.renew_claim("o", "long", "a", attempt_seconds=30)
    assert not await store.renew_claim("o", "long", "b", attempt_seconds=30)
    await asyncio.sleep(0.3)  # renewed: still a's
    assert not (await store.claim("o", "long", "d", "openai", holder="b", attempt_seconds=30)).mine
    await store.settle_claim("o", "long", "obatch_1")
    assert not await store.renew_claim("o", "long", "a", attempt_seconds=30)  # settled: nothing to hold


# -- batches of several parts -------------------------------------------------------------------------------------
def _whole(batch_id: str = "obatch_1", **fields: object) -> WholeRecord:
    values: dict[str, object] = {
        "owner": "o",
        "provider": "openai",
        "request_id": "r",
        "requests": 5,
        "header": b"header",
        "created_at": time.time(),
        **fields,
    }
    return WholeRecord(id=batch_id, **values)  # type: ignore[arg-type]


async def test_a_batch_of_parts_keeps_the_plan_recorded_first(store: Store) -> None:
    plan = [PartPlan(0, 0, 3, b"ids 0"), PartPlan(1, 3, 2, b"ids 1")]
    whole = _whole()
    assert await store.add_whole(whole, plan) == whole
    other = [PartPlan(0, 0, 5, b"all")]  # a retry on a replica that splits otherwise gets the first plan
    assert await store.add_whole(_whole(requests=6, header=b"other"), other) == whole
    assert await store.whole("obatch_1") == whole and await store.whole("nope") is None
    parts = await store.parts("obatch_1")
    assert [(p.index, p.first, p.count, p.upstream_id, p.sent_at, p.snapshot, p.terminal) for p in parts] == [
        (0, 0, 3, None, 0.0, b"", False),
        (1, 3, 2, None, 0.0, b"", False),
    ]
    assert await store.part_custom_ids("obatch_1", 1) == b"ids 1"
    await store.part_sent("obatch_1", 1, 123.5)
    await store.part_seen("obatch_1", 1, b"state", terminal=True, upstream_id="batch_up")
    (_, second) = await store.parts("obatch_1")
    assert (second.upstream_id, second.sent_at, second.snapshot, second.terminal) == ("batch_up", 123.5, b"state", True)
    assert await store.part_made_as("batch_up") == ("obatch_1", whole.owner, 1)
    assert await store.part_made_as("batch_other") is None
    await store.cancel_whole("obatch_1")
    found = await store.whole("obatch_1")
    assert found is not None and found.cancel_asked
    await store.drop_whole("obatch_1")
    assert await store.whole("obatch_1") is None and await store.parts("obatch_1") == []


async def test_a_part_entered_as_a_callers_batch_before_parts_were_told_apart_is_no_longer_one(tmp_path: Path) -> None:
    """(SQLite migration 9, PostgreSQL's 7 alike.) Before, a GetBatch of a part's id entered it as a batch of the
    caller's own: listed ever after."""
    path = tmp_path / "s.db"
    store = await open_store(path)
    try:
        await store.add_whole(_whole(), [PartPlan(0, 0, 3, b"")])
        await store.part_seen("obatch_1", 0, b"state", terminal=False, upstream_id="batch_up")
        await store.enter([seen("batch_up"), seen("batch_own")], [], owner="o", keep=5, observed_at=1.0)
        assert sorted(r.id for r in await store.list_for("o", None, before=None, limit=10)) == ["batch_own", "batch_up"]
    finally:
        await store.close()
    (forget,) = [part for part in SqliteStore.MIGRATIONS[8].split(";") if "DELETE" in part]
    with sqlite3.connect(path) as db:  # what migration 9 does to a database where it happened
        db.execute(forget)
    again = await open_store(path)
    try:
        assert [r.id for r in await again.list_for("o", None, before=None, limit=10)] == ["batch_own"]
    finally:
        await again.close()


async def test_a_batch_of_parts_goes_with_its_registry_entry(store: Store) -> None:
    now = time.time()
    await store.add_whole(_whole("obatch_entered", created_at=now - 100), [PartPlan(0, 0, 5, b"")])
    await store.add_whole(_whole("obatch_never_made", created_at=now - 100), [PartPlan(0, 0, 5, b"")])
    await store.enter([seen("obatch_entered")], [], owner="o", keep=5, observed_at=now)
    await store.sweep(now=now, keep_seconds=50, idempotency_seconds=100, claim_seconds=100)
    assert await store.whole("obatch_entered") is not None  # as long as its registry entry
    assert await store.whole("obatch_never_made") is None  # its create never finished: kept as long, then gone
    await store.sweep(now=now + 20_000, keep_seconds=50, idempotency_seconds=100, claim_seconds=100)
    assert (await store.counts())["wholes"] == 0 and (await store.counts())["parts"] == 0


async def test_a_parts_failures_are_examined_once_and_its_rerun_takes_the_next_index(store: Store) -> None:
    await store.add_whole(_whole(max_attempts=3), [PartPlan(0, 0, 3, b"ids", bodies=b"kept"), PartPlan(1, 3, 2, b"")])
    assert (await store.whole("obatch_1")).max_attempts == 3  # type: ignore[union-attr]
    assert await store.part_bodies("obatch_1", 0) == b"kept" and await store.part_bodies("obatch_1", 1) == b""
    rerun = PartPlan(-1, 1, 2, b"rerun ids", attempt=2, rerun_of=0, indices=b"1,2")
    assert await store.examine_part("obatch_1", 0, rerun)
    assert not await store.examine_part("obatch_1", 0, rerun)  # once: another replica's look writes nothing
    assert await store.examine_part("obatch_1", 1, None)
    parts = await store.parts("obatch_1")
    assert [(p.index, p.attempt, p.rerun_of, p.examined) for p in parts] == [
        (0, 1, None, True),
        (1, 1, None, True),
        (2, 2, 0, False),
    ]
    assert await store.part_indices("obatch_1", 2) == b"1,2"
    assert await store.part_custom_ids("obatch_1", 2) == b"rerun ids"


async def test_a_part_is_taken_by_one_maker_at_a_time(store: Store) -> None:
    await store.add_whole(_whole(), [PartPlan(0, 0, 3, b"")])
    assert await store.take_part("obatch_1", 0, hold_seconds=30) == 0.0  # never sent before
    assert await store.take_part("obatch_1", 0, hold_seconds=30) is None  # held
    await asyncio.sleep(0.3)
    earlier = await store.take_part("obatch_1", 0, hold_seconds=0.2)  # its maker went quiet: look for what it made
    assert earlier is not None and earlier > 0
    await store.part_seen("obatch_1", 0, b"state", terminal=False, upstream_id="batch_up")
    assert await store.take_part("obatch_1", 0, hold_seconds=0) is None  # made


async def test_a_delegated_key_is_kept_sealed_until_the_re_runs_end(store: Store) -> None:
    await store.add_whole(_whole(), [PartPlan(0, 0, 3, b"", bodies=b"kept")])
    await store.delegate("obatch_1", "o", b"sealed")
    await store.delegate("obatch_1", "o", b"another")  # the first kept stays
    assert await store.delegation("obatch_1") == ("o", b"sealed")
    assert await store.delegated(10) == ["obatch_1"]
    await store.end_reruns("obatch_1")
    assert await store.delegation("obatch_1") is None and await store.delegated(10) == []
    assert await store.part_bodies("obatch_1", 0) == b""  # the requests kept for re-runs go too
    await store.delegate("obatch_1", "o", b"sealed")
    await store.drop_whole("obatch_1")
    await store.sweep(now=time.time(), keep_seconds=10, idempotency_seconds=10, claim_seconds=10)
    assert await store.delegated(10) == []  # gone with its batch


# -- retention ----------------------------------------------------------------------------------------------------
async def test_a_sweep_forgets_what_is_past_its_time(store: Store) -> None:
    now = time.time()
    await store.enter([seen("b")], [], owner="o", keep=5, observed_at=now)
    await store.claim("o", "settled", "f", "openai", holder="a", attempt_seconds=30)
    await store.settle_claim("o", "settled", "b")
    await store.claim("o", "ambiguous", "f", "openai", holder="a", attempt_seconds=0)
    await store.begin_results("b")
    await store.add_result_chunk("b", 0, 1, b"r")
    await store.finish_results("b", items=1, nbytes=1)
    assert await store.sweep(now=now, keep_seconds=100, idempotency_seconds=100, claim_seconds=100) == 0
    # The ambiguous claim expires first, then the settled key, then the batch with everything of it.
    assert await store.sweep(now=now + 50, keep_seconds=100, idempotency_seconds=100, claim_seconds=10) == 1
    assert (await store.claim("o", "ambiguous", "f", "openai", holder="b", attempt_seconds=30)).mine
    await store.release_claim("o", "ambiguous", "b")
    assert await store.sweep(now=now + 1000, keep_seconds=10_000, idempotency_seconds=100, claim_seconds=10_000) == 1
    counts = await store.counts()
    assert counts["idempotency"] == 0 and counts["batches"] == 1
    assert await store.sweep(now=now + 20_000, keep_seconds=10_000, idempotency_seconds=100, claim_seconds=10_000) > 0
    assert all(n == 0 for n in (await store.counts()).values()), await store.counts()


# -- results cache ------------------------------------------------------------------------------------------------
async def test_results_are_served_only_once_whole(store: Store) -> None:
    await store.begin_results("b")
    await store.add_result_chunk("b", 0, 3, b"abc")
    await store.add_result_chunk("b", 3, 2, b"de")
    assert await store.result_set("b") is None  # not whole yet
    await store.finish_results("b", items=5, nbytes=5)
    assert await store.result_set("b") == 5
    assert await store.result_chunks("b", 0, limit=10) == [(0, 3, b"abc"), (3, 2, b"de")]
    assert await store.result_chunks("b", 2, limit=10) == [(0, 3, b"abc"), (3, 2, b"de")]  # the chunk holding 2
    assert await store.result_chunks("b", 3, limit=1) == [(3, 2, b"de")]
    assert await store.result_chunks("b", 5, limit=10) == []
    assert await store.results_bytes() == 5
    await store.begin_results("b")  # starting over forgets the old chunks
    assert await store.result_set("b") is None and await store.result_chunks("b", 0, limit=10) == []
    await store.drop_results("b")
    assert (await store.counts())["result_sets"] == 0 and await store.results_bytes() == 0


async def test_the_oldest_results_go_first_past_the_byte_budget(store: Store) -> None:
    for batch_id in ("old", "mid", "new"):
        await store.begin_results(batch_id)
        await store.add_result_chunk(batch_id, 0, 1, b"x" * 10)
        await store.finish_results(batch_id, items=1, nbytes=10)
        await asyncio.sleep(0.01)
    await store.begin_results("unfinished")  # not counted, not dropped
    assert await store.trim_results(max_bytes=25, max_age=3600) == 1
    assert await store.result_set("old") is None
    assert await store.result_set("mid") == 1 and await store.result_set("new") == 1
    assert await store.trim_results(max_bytes=25, max_age=3600) == 0
    assert await store.trim_results(max_bytes=0, max_age=3600) == 2
    assert (await store.counts())["result_sets"] == 1
    # The chunks of a dropped set go with it.
    assert (await store.counts())["result_chunks"] == 0


async def test_results_older_than_the_age_limit_are_dropped(store: Store) -> None:
    for batch_id, chunk in (("old", b"ab"), ("new", b"c")):
        await store.begin_results(batch_id)
        await store.add_result_chunk(batch_id, 0, len(chunk), chunk)
        await store.finish_results(batch_id, items=len(chunk), nbytes=len(chunk))
        if batch_id == "old":
            await asyncio.sleep(0.3)
    assert await store.trim_results(max_bytes=10**9, max_age=0.2) == 1
    assert await store.result_set("old") is None
    assert await store.result_set("new") == 1
    assert await store.result_chunks("new", 0, limit=10) == [(0, 1, b"c")]


# -- plumbing -----------------------------------------------------------------------------------------------------
async def test_only_writes_count_as_transactions(store: Store) -> None:
    writes = store.transactions
    await store.batch("b")
    await store.list_for("o", None, before=None, limit=5)
    await store.result_chunks("b", 0, limit=5)
    await store.counts()
    assert store.transactions == writes
    await store.claim("o", "r", "f", "openai", holder="a", attempt_seconds=1)
    await store.enter([seen("b")], [], owner="o", keep=5, observed_at=1.0)
    assert store.transactions == writes + 2


async def test_a_write_cancelled_at_any_await_leaves_the_store_usable(store: Store) -> None:
    """A poll loop is cancelled when its last subscriber leaves, possibly mid-transaction."""
    for step in range(40):
        task = asyncio.ensure_future(_enter(store, b"x" * step))
        for _ in range(step % 8):  # cancel after a varying number of loop turns: before, while and after it runs
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    (revision,) = await _enter(store, b"last")  # raised "transaction within a transaction"
    assert (await store.latest_revision("b")) == revision
    assert await store.integrity_check() == "ok"


class _Held:
    """A notify that holds the database's thread as it runs (the writes asked for meanwhile queue behind it) until
    released; `running` once it does."""

    def __init__(self) -> None:
        self.running, self.release = threading.Event(), threading.Event()

    def __call__(self, _changes: Sequence[Change]) -> list[Delivery]:
        self.running.set()
        self.release.wait(10)
        return []

    async def started(self) -> bool:
        return await asyncio.to_thread(self.running.wait, 10)


def _entering(store: Store, batch_id: str, notify: Notify | None = None) -> asyncio.Task[list[Revision]]:
    """A write (a new batch's first revision) as a task of its own; its notify runs when `o` has an endpoint."""
    return asyncio.create_task(store.enter([seen(batch_id)], [], owner="o", keep=5, observed_at=1.0, notify=notify))


async def test_a_write_whose_caller_is_cancelled_while_it_runs_is_rolled_back(tmp_path: Path) -> None:
    """SQLite runs a transaction on its own thread: one whose caller is cancelled as it runs is undone there, as on
    PostgreSQL, so what a caller does after a write it is told of (a revision remembered and announced) is never
    skipped for a write that stays."""
    sqlite = await open_store(tmp_path / "s.db")
    held = _Held()
    try:
        assert await sqlite.add_endpoint(_endpoint("wh_o"), limit=5)  # (an endpoint to tell: notify runs)
        saving = _entering(sqlite, "b", held)
        assert await held.started()
        saving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await saving
        held.release.set()
        assert await sqlite.latest_revision("b") is None  # rolled back
        (again,) = await sqlite.enter([seen("b")], [], owner="o", keep=5, observed_at=2.0)
        assert again.rev == 1
    finally:
        held.release.set()
        await sqlite.close()
        await sqlite.close()  # (twice is once)


async def test_writes_asked_for_while_one_runs_share_its_next_commit_each_all_or_nothing(tmp_path: Path) -> None:
    """SQLite: the writes that queue behind a running one are committed together, each in a savepoint of its own:
    one that fails, or whose caller left, is rolled back alone, and the others stay."""
    sqlite = await open_store(tmp_path / "s.db")
    held = _Held()

    def failing(_changes: Sequence[Change]) -> list[Delivery]:
        raise RuntimeError("the outbox could not be written")

    try:
        assert await sqlite.add_endpoint(_endpoint("wh_o"), limit=5)  # (an endpoint to tell: notify runs)
        first = _entering(sqlite, "a", held)
        assert await held.started()
        grouped = [_entering(sqlite, "b"), _entering(sqlite, "c", failing), _entering(sqlite, "d"),
                   _entering(sqlite, "e")]  # fmt: skip
        await asyncio.sleep(0.05)  # (all four queued behind the first)
        grouped[3].cancel()  # its caller leaves before its group runs: it never does
        held.release.set()
        assert [r.batch_id for r in await first] == ["a"]
        b, c, d, e = await asyncio.gather(*grouped, return_exceptions=True)
        assert isinstance(b, list) and isinstance(d, list)
        assert [r.batch_id for r in b] == ["b"] and [r.batch_id for r in d] == ["d"]
        assert isinstance(c, RuntimeError) and isinstance(e, asyncio.CancelledError)
        kept = {batch_id: await sqlite.latest_revision(batch_id) for batch_id in "abcde"}
        assert [batch_id for batch_id, revision in kept.items() if revision is not None] == ["a", "b", "d"]
        assert await sqlite.integrity_check() == "ok"
    finally:
        held.release.set()
        await sqlite.close()


async def test_a_write_queued_as_the_store_closes_is_committed_first_and_one_after_fails_at_once(
    tmp_path: Path,
) -> None:
    sqlite = await open_store(tmp_path / "s.db")
    held = _Held()
    try:
        assert await sqlite.add_endpoint(_endpoint("wh_o"), limit=5)
        first = _entering(sqlite, "a", held)
        assert await held.started()
        queued = _entering(sqlite, "b")
        await asyncio.sleep(0.05)  # (queued behind the first, whose commit is held)
        closing = asyncio.create_task(sqlite.close())
        await asyncio.sleep(0.05)
        held.release.set()
        await first
        assert [r.batch_id for r in await asyncio.wait_for(queued, 10)] == ["b"]
        await closing
        for _ in range(2):  # (and again: the first failure leaves nothing queued behind it)
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(sqlite.refuse_key("o", 2.0), 10)
    finally:
        held.release.set()
        await sqlite.close()
    again = await open_store(tmp_path / "s.db")
    try:
        assert (await again.latest_revision("b")) is not None
    finally:
        await again.close()


async def test_a_grouped_write_whose_caller_leaves_before_the_group_commits_is_rolled_back(tmp_path: Path) -> None:
    """A write that has run, in a group whose commit is still to come, whose caller is cancelled: not committed (the
    group runs again without it), so its caller, told "cancelled", never skips what it does after a write."""
    sqlite = await open_store(tmp_path / "s.db")
    held, ran_b, slow = _Held(), threading.Event(), threading.Event()

    def noting_b(_changes: Sequence[Change]) -> list[Delivery]:
        ran_b.set()
        return []

    def slow_c(_changes: Sequence[Change]) -> list[Delivery]:
        slow.wait(10)
        return []

    try:
        assert await sqlite.add_endpoint(_endpoint("wh_o"), limit=5)
        first = _entering(sqlite, "a", held)
        assert await held.started()
        b, c = _entering(sqlite, "b", noting_b), _entering(sqlite, "c", slow_c)
        await asyncio.sleep(0.05)  # (both queued: one group, b then c)
        held.release.set()
        assert await asyncio.to_thread(ran_b.wait, 10)  # b has run; c holds the group's commit back
        b.cancel()
        with pytest.raises(asyncio.CancelledError):
            await b
        slow.set()
        assert [r.batch_id for r in await c] == ["c"] and [r.batch_id for r in await first] == ["a"]
        assert await sqlite.latest_revision("b") is None and await sqlite.latest_revision("c") is not None
    finally:
        held.release.set()
        slow.set()
        await sqlite.close()


async def test_a_read_cancelled_at_any_await_leaves_the_store_usable(store: Store) -> None:
    """A results stream reads ahead; the read is cancelled when the client leaves."""
    await store.begin_results("b")
    await store.add_result_chunk("b", 0, 1, b"r" * 100_000)
    await store.finish_results("b", items=1, nbytes=100_000)
    for step in range(40):
        task = asyncio.ensure_future(store.result_chunks("b", 0, limit=10))
        for _ in range(step % 8):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await store.result_chunks("b", 0, limit=10) == [(0, 1, b"r" * 100_000)]
    assert len(await _enter(store, b"after")) == 1


async def _enter(store: Store, snapshot: bytes) -> list[Revision]:
    batch = SeenBatch(id="b", provider="openai", status="in_progress", terminal=False, snapshot=snapshot)
    return await store.enter([batch], [], owner="o", keep=5, observed_at=0.0)


async def test_the_shared_secret_is_the_databases_or_none(target: str | Path, store: Store) -> None:
    secret = await store.shared_secret("owner_secret")
    if isinstance(target, Path):
        assert secret is None  # one process's own: the secret is a file beside it (auth.py)
        return
    assert secret is not None and len(secret) == 64
    assert await store.shared_secret("owner_secret") == secret
    assert await store.shared_secret("token_key") not in (None, secret)  # each name a secret of its own


# -- a server killed mid-load -------------------------------------------------------------------------------------
async def _server_process(sim: Sim, tmp_path: Path, target: str | Path) -> tuple[asyncio.subprocess.Process, int]:
    env = clean_env(tmp_path / "state.db", GATEWAY_URL=sim.url, GRPC_LISTEN="127.0.0.1:0", STATE_DB=str(target))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otari_batch_grpc.server", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "the server process exited"
        if match := re.search(r"\(port (\d+)\)", line):
            return process, int(match.group(1))


@pytest.mark.subprocess
@pytest.mark.slow
async def test_kill_9_mid_load_loses_nothing_acknowledged(sim: Sim, tmp_path: Path, target: str | Path) -> None:
    if isinstance(target, Path):
        target = tmp_path / "state.db"
    process, port = await _server_process(sim, tmp_path, target)
    acknowledged: dict[str, str] = {}
    sent: list[str] = []

    async def worker(stub: Stub) -> None:
        while True:
            rid = str(uuid.uuid4())
            sent.append(rid)
            try:
                reply = await stub.CreateBatch(create_request(2, request_id=rid), metadata=ALICE, timeout=10)
            except grpc.aio.AioRpcError:
                return  # the server is gone
            acknowledged[rid] = reply.batch.id

    try:
        async with connect(port) as stub:
            workers = [asyncio.ensure_future(worker(stub)) for _ in range(8)]

            async def loaded() -> bool:
                return len(acknowledged) >= 40

            await eventually(loaded)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await asyncio.wait_for(asyncio.gather(*workers), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert len(sent) > len(acknowledged)  # killed with creates in flight
    if isinstance(target, Path):
        with sqlite3.connect(target) as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    else:
        store = await open_store(target)
        try:
            assert await store.integrity_check() == "ok"
        finally:
            await store.close()

    process, port = await _server_process(sim, tmp_path, target)
    try:
        async with connect(port) as stub:
            for rid, batch_id in acknowledged.items():
                again = await stub.CreateBatch(create_request(2, request_id=rid), metadata=ALICE)
                assert again.batch.id == batch_id
                known = await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=ALICE)  # no provider
                assert known.batch.id == batch_id
            for rid in sent:  # the ones in flight at the kill: their batch, or "unknown, retry later"; never two
                try:
                    await stub.CreateBatch(create_request(2, request_id=rid), metadata=ALICE)
                except grpc.aio.AioRpcError as error:
                    info = details(error).info
                    assert info is not None and info.reason == "CREATE_OUTCOME_UNKNOWN", error
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    per_request = Counter(b.metadata.get("otari_request_id", "").split("/")[0] for b in sim.state.batches.values())
    assert set(acknowledged) <= set(per_request) <= set(sent)
    assert set(per_request.values()) == {1}


# -- webhook endpoints (#32) ---------------------------------------------------------------------------------------
def _endpoint(endpoint_id: str = "wh_1", owner: str = "o", **fields: object) -> EndpointRecord:
    values: dict[str, object] = {
        "url": "https://hooks.example.com/x?token=t", "events": "terminal", "metadata_filter": "{}",
        "description": "", "secrets": b"sealed secrets", "sealed_key": b"sealed key", "enabled": True,
        "disabled_reason": "", "created_at": 100.0, "updated_at": 100.0, **fields,
    }  # fmt: skip
    return EndpointRecord(endpoint_id, owner, **values)  # type: ignore[arg-type]


async def test_an_endpoint_is_kept_for_its_owner_up_to_a_limit_and_changed_only_as_read(store: Store) -> None:
    first = _endpoint()
    assert await store.add_endpoint(first, limit=2)
    assert await store.add_endpoint(_endpoint("wh_2", created_at=101.0), limit=2)
    assert not await store.add_endpoint(_endpoint("wh_3"), limit=2)  # the owner has its 2
    assert await store.add_endpoint(_endpoint("wh_4", owner="p"), limit=2)  # another owner's count is its own
    assert await store.endpoint("wh_1") == first and await store.endpoint("wh_3") is None
    assert [e.id for e in await store.endpoints_of("o")] == ["wh_1", "wh_2"]
    disabled = dataclasses.replace(first, enabled=False, disabled_reason="410 Gone", updated_at=200.0)
    assert await store.update_endpoint(disabled, read_at=first.updated_at)
    assert await store.endpoint("wh_1") == disabled
    stale = dataclasses.replace(first, url="https://elsewhere.example/", updated_at=300.0)
    assert not await store.update_endpoint(stale, read_at=first.updated_at)  # changed since it was read
    assert not await store.update_endpoint(dataclasses.replace(disabled, owner="p"), read_at=200.0)  # not p's
    assert not await store.delete_endpoint("wh_1", "p")
    assert await store.delete_endpoint("wh_1", "o") and await store.endpoint("wh_1") is None
    assert not await store.delete_endpoint("wh_1", "o")


async def _claim(
    store: Store, holder: str, *, now: float, lease_seconds: float = 30.0, per_endpoint: int = 10
) -> list[DeliveryRecord]:
    claimed = await store.claim_deliveries(
        holder, now=now, lease_seconds=lease_seconds, limit=10, per_endpoint=per_endpoint
    )
    return [c.delivery for c in claimed]


def _telling(changes_seen: list[Change]) -> Notify:
    """A notify that tells every endpoint of every change, recording what it was given."""

    def notify(changes: Sequence[Change]) -> list[Delivery]:
        changes_seen.extend(changes)
        return [
            Delivery(e.id, c.seen.id, c.revision.rev, f"batch.{c.seen.status}", c.seen.terminal, b"event")
            for c in changes
            for e in c.endpoints
        ]

    return notify


async def test_the_outbox_is_written_in_the_transaction_of_the_revision_it_tells_of(store: Store) -> None:
    for endpoint_id, owner, at in (("wh_o", "o", 1.0), ("wh_p", "p", 2.0), ("wh_q", "q", 3.0)):
        assert await store.add_endpoint(_endpoint(endpoint_id, owner=owner, created_at=at), limit=5)
    await store.enter([seen("b")], [], owner="p", keep=5, observed_at=1.0)  # shown to p long ago
    await store.enter([], ["b"], owner="q", keep=5, observed_at=50.0)  # and to q lately
    changes: list[Change] = []
    done = seen("b", status="completed", terminal=True)
    (revision,) = await store.enter(
        [done], [], owner="o", keep=5, observed_at=100.0, notify=_telling(changes), trusted_since=40.0
    )
    (change,) = changes
    assert (change.seen, change.before, change.revision) == (done, "in_progress", revision)
    assert [e.id for e in change.endpoints] == ["wh_o", "wh_q"]  # the one showing it, and q; p's access is stale
    (told,) = await store.deliveries("wh_o", 10)
    assert (told.batch_id, told.rev, told.kind, told.terminal, told.state, told.event) == (
        "b",
        revision.rev,
        "batch.completed",
        True,
        "pending",
        b"event",
    )
    assert told.next_at == told.created_at == 100.0 and told.attempts == 0
    assert await store.deliveries("wh_p", 10) == []

    def failing(_changes: Sequence[Change]) -> list[Delivery]:
        raise RuntimeError("the outbox could not be written")

    with pytest.raises(RuntimeError):  # nothing of the transaction stays: the revision goes with its events
        await store.enter([seen("b", status="expired", terminal=True)], [], owner="o", keep=5, observed_at=101.0,
                          notify=failing)  # fmt: skip
    latest = await store.latest_revision("b")
    assert latest is not None and latest.rev == revision.rev


async def test_a_pending_event_a_newer_change_tells_of_is_superseded(store: Store) -> None:
    assert await store.add_endpoint(_endpoint("wh_o"), limit=5)
    notify = _telling([])
    for step, status in enumerate(("validating", "in_progress", "completed")):
        batch = seen("c", status=status, terminal=status == "completed")
        await store.enter([batch], [], owner="o", keep=5, observed_at=float(step), notify=notify)
    states = [(d.rev, d.kind, d.state) for d in await store.deliveries("wh_o", 10)]
    assert states == [(3, "batch.completed", "pending"), (2, "batch.in_progress", "superseded"),
                      (1, "batch.validating", "superseded")]  # fmt: skip
    assert await store.enter([seen("d")], [], owner="nobody", keep=5, observed_at=9.0, notify=notify)  # no endpoints
    assert len(await store.deliveries("wh_o", 10)) == 3


async def test_a_claimed_event_comes_with_its_endpoint_and_its_owners_access_as_of_the_claim(store: Store) -> None:
    for endpoint_id, owner in (("wh_o", "o"), ("wh_q", "q"), ("wh_r", "r")):
        assert await store.add_endpoint(_endpoint(endpoint_id, owner=owner), limit=5)
    for batch_id in ("b", "c", "d"):  # o shows each; q and r were shown them
        await store.enter([seen(batch_id)], [], owner="o", keep=5, observed_at=10.0)
        await store.enter([], [batch_id], owner="q", keep=5, observed_at=20.0)
        await store.enter([], [batch_id], owner="r", keep=5, observed_at=30.0)
    notify = _telling([])
    for batch_id in ("b", "c", "d"):
        done = seen(batch_id, status="completed", terminal=True)
        await store.enter([done], [], owner="o", keep=5, observed_at=40.0, notify=notify, trusted_since=0.0)
    await store.refuse_key("q", 35.0)  # q's key refused after it was shown them: its showing counts no more
    await store.revoke("c", "r")  # r no longer sees c
    claimed = await store.claim_deliveries("A", now=100.0, lease_seconds=30.0, limit=20, per_endpoint=10)
    seen_as = {(c.delivery.batch_id, c.endpoint.id): (c.endpoint.owner, c.verified_at) for c in claimed}
    assert seen_as == {
        ("b", "wh_o"): ("o", 40.0), ("c", "wh_o"): ("o", 40.0), ("d", "wh_o"): ("o", 40.0),
        ("b", "wh_q"): ("q", 0.0), ("c", "wh_q"): ("q", 0.0), ("d", "wh_q"): ("q", 0.0),
        ("b", "wh_r"): ("r", 30.0), ("c", "wh_r"): ("r", 0.0), ("d", "wh_r"): ("r", 30.0),
    }  # fmt: skip
    assert [c.endpoint for c in claimed] == [await store.endpoint(c.endpoint.id) for c in claimed]


async def test_outbox_events_are_leased_one_at_a_time_per_endpoint_and_batch_and_taken_over_once_a_lease_ends(
    store: Store,
) -> None:
    assert await store.add_endpoint(_endpoint("wh_o"), limit=5)
    notify = _telling([])
    for step, status in enumerate(("validating", "completed")):  # (a terminal event supersedes nothing terminal)
        await store.enter([seen("b", status=status, terminal=True)], [], owner="o", keep=5, observed_at=10.0 + step,
                          notify=notify)  # fmt: skip
    await store.enter([seen("c")], [], owner="o", keep=5, observed_at=12.0, notify=notify)
    taken = await _claim(store, "A", now=100.0, lease_seconds=30.0)
    assert [(d.batch_id, d.rev) for d in taken] == [("b", 1), ("c", 1)]  # b's second waits for its first
    assert await _claim(store, "B", now=110.0, lease_seconds=30.0) == []  # A holds them
    first = taken[0]
    assert not await store.finish_delivery(first.id, "B", state="delivered", attempts=1, next_at=0.0, status=200,
                                           error="", done_at=111.0)  # fmt: skip
    assert await store.finish_delivery(first.id, "A", state="delivered", attempts=1, next_at=0.0, status=204,
                                       error="", done_at=111.0)  # fmt: skip
    # A dies holding c: once its lease ends, B takes c, and b's second
    again = await _claim(store, "B", now=131.0, lease_seconds=30.0)
    assert sorted((d.batch_id, d.rev) for d in again) == [("b", 2), ("c", 1)]
    retried = next(d for d in again if d.batch_id == "c")
    assert await store.finish_delivery(retried.id, "B", state="pending", attempts=1, next_at=200.0, status=503,
                                       error="busy", done_at=0.0)  # fmt: skip
    late = await _claim(store, "A", now=199.0, lease_seconds=30.0)
    assert [(d.batch_id, d.rev) for d in late] == [("b", 2)]  # c is not due yet; b's second, B's lease ended
    assert await store.disable_endpoint("wh_o", "410 Gone", now=199.5)
    assert not await store.disable_endpoint("wh_o", "410 Gone", now=199.6)
    assert await _claim(store, "A", now=300.0, lease_seconds=30.0) == []  # disabled: kept, not sent
    endpoint = await store.endpoint("wh_o")
    assert endpoint is not None and (endpoint.enabled, endpoint.disabled_reason) == (False, "410 Gone")
    states = {(d.batch_id, d.rev): (d.state, d.attempts, d.last_status) for d in await store.deliveries("wh_o", 10)}
    assert states == {("b", 1): ("delivered", 1, 204), ("b", 2): ("pending", 0, 0), ("c", 1): ("pending", 1, 503)}
    assert await store.enable_endpoint("wh_o", now=301.0)  # enabled again: what waited is sent (A's lease ended)
    assert sorted(d.batch_id for d in await _claim(store, "A", now=302.0, lease_seconds=30.0)) == [
        "b",
        "c",
    ]


async def test_an_event_being_tried_is_not_superseded_and_the_newer_one_waits_for_it(store: Store) -> None:
    """So they arrive in order: a newer change's event never overtakes one a replica is sending."""
    assert await store.add_endpoint(_endpoint("wh_o"), limit=5)
    notify = _telling([])
    await store.enter([seen("b", status="validating")], [], owner="o", keep=5, observed_at=1.0, notify=notify)
    (sending,) = await _claim(store, "A", now=10.0, lease_seconds=30.0)
    await store.enter([seen("b", status="in_progress")], [], owner="o", keep=5, observed_at=11.0, notify=notify)
    assert await _claim(store, "B", now=12.0, lease_seconds=30.0) == []  # it waits its turn
    assert await store.finish_delivery(sending.id, "A", state="delivered", attempts=1, next_at=0.0, status=204,
                                       error="", done_at=13.0)  # fmt: skip
    (newer,) = await _claim(store, "B", now=14.0, lease_seconds=30.0)
    assert (newer.rev, newer.kind) == (2, "batch.in_progress")


async def test_an_owner_whose_key_was_refused_has_no_endpoint_told(store: Store) -> None:
    for endpoint_id, owner in (("wh_o", "o"), ("wh_q", "q")):
        assert await store.add_endpoint(_endpoint(endpoint_id, owner=owner), limit=5)
    await store.enter([], [], owner="q", keep=5, observed_at=1.0)
    await store.enter([seen("b")], [], owner="q", keep=5, observed_at=50.0)  # shown to q lately
    await store.refuse_key("q", 60.0)  # and q's key refused since
    changes: list[Change] = []
    await store.enter([seen("b", status="completed", terminal=True)], [], owner="o", keep=5, observed_at=70.0,
                      notify=_telling(changes), trusted_since=40.0)  # fmt: skip
    assert [e.id for e in changes[0].endpoints] == ["wh_o"]


async def test_the_batches_endpoints_are_told_of_are_their_owners_live_ones_not_refused_nor_delegated(
    store: Store,
) -> None:
    assert await store.add_endpoint(_endpoint("wh_o2", owner="o", created_at=2.0), limit=5)
    disabled = _endpoint("wh_o1", owner="o", enabled=False, sealed_key=b"o1's key")
    assert await store.add_endpoint(disabled, limit=5)  # disabled: followed too
    assert await store.add_endpoint(_endpoint("wh_q", owner="q"), limit=5)
    await store.enter([seen("live")], [], owner="o", keep=5, observed_at=1.0)
    await store.enter([seen("done", status="completed", terminal=True)], [], owner="o", keep=5, observed_at=2.0)
    await store.enter([seen("nobodys")], [], owner="r", keep=5, observed_at=3.0)  # no endpoint of r's
    await store.enter([seen("revoked")], [], owner="q", keep=5, observed_at=4.0)
    await store.revoke("revoked", "q")
    await store.enter([seen("rerun")], [], owner="o", keep=5, observed_at=5.0)
    await store.delegate("rerun", "o", b"sealed")  # (followed with its own key: core.delegated)
    assert [tuple(f)[:4] for f in await store.endpoint_batches(10)] == [("live", "openai", "wh_o1", "o")]
    assert [f.sealed_key for f in await store.endpoint_batches(10)] == [b"o1's key"]  # (the endpoint's, to read with)
    notify = _telling([])
    await store.enter([seen("live", status="finalizing")], [], owner="o", keep=5, observed_at=6.0, notify=notify)
    assert await store.disable_endpoints_of("o", "refused: 401", now=9.0) == 2  # (wh_o1's key forgotten too)
    kept = sorted((e.id, e.enabled, e.disabled_reason, e.sealed_key) for e in await store.endpoints_of("o"))
    assert kept == [("wh_o1", False, "refused: 401", b""), ("wh_o2", False, "refused: 401", b"")]
    assert {d.last_error for d in await store.deliveries("wh_o2", 10)} == {"refused: 401"}  # its pending say so
    assert await store.disable_endpoints_of("o", "refused: 401", now=10.0) == 0
    assert await store.endpoint_batches(10) == []  # no key left to read them with
    assert (await store.endpoint("wh_q") or _endpoint()).enabled


async def test_the_outbox_is_kept_to_its_window(store: Store) -> None:
    assert await store.add_endpoint(_endpoint("wh_o"), limit=5)
    notify = _telling([])
    for batch_id, at in (("old", 10.0), ("held", 11.0), ("new", 500.0)):
        await store.enter([seen(batch_id, status="completed", terminal=True)], [], owner="o", keep=5,
                          observed_at=at, notify=notify)  # fmt: skip
    (delivered,) = [d for d in await store.deliveries("wh_o", 10) if d.batch_id == "old"]
    claimed = await _claim(store, "A", now=20.0, lease_seconds=1000.0)
    assert sorted(d.batch_id for d in claimed) == ["held", "old"]
    assert await store.finish_delivery(delivered.id, "A", state="delivered", attempts=1, next_at=0.0, status=204,
                                       error="", done_at=21.0)  # fmt: skip
    await store.disable_endpoint("wh_o", "paused", now=30.0)
    # The window ends at 100: "old" (delivered at 21) is forgotten, "held" is being tried (kept), "new" is young.
    assert await store.sweep_outbox(before=100.0, now=600.0) == 1
    assert sorted((d.batch_id, d.state) for d in await store.deliveries("wh_o", 10)) == [
        ("held", "pending"),
        ("new", "pending"),
    ]
    # Once its lease ends, "held" (never delivered) is dropped, saying why; then forgotten in its turn.
    assert await store.sweep_outbox(before=100.0, now=2000.0) == 1
    states = {d.batch_id: (d.state, d.last_error) for d in await store.deliveries("wh_o", 10)}
    assert states == {"held": ("dropped", "not delivered within the retry window"), "new": ("pending", "")}
    assert await store.sweep_outbox(before=2500.0, now=2600.0) == 2  # held forgotten, new dropped


async def test_a_slow_endpoint_is_given_so_many_events_at_once_by_the_whole_fleet_and_no_more(store: Store) -> None:
    assert await store.add_endpoint(_endpoint("wh_slow", owner="o"), limit=5)
    assert await store.add_endpoint(_endpoint("wh_other", owner="p"), limit=5)
    notify = _telling([])
    for i in range(6):
        await store.enter([seen(f"s{i}", status="completed", terminal=True)], [], owner="o", keep=5,
                          observed_at=1.0 + i, notify=notify)  # fmt: skip
    await store.enter([seen("x", status="completed", terminal=True)], [], owner="p", keep=5, observed_at=9.0,
                      notify=notify)  # fmt: skip
    first = await _claim(store, "A", now=100.0, per_endpoint=2)
    assert sorted(d.batch_id for d in first) == ["s0", "s1", "x"]  # two of the slow one's, and the other's
    assert await _claim(store, "B", now=101.0, per_endpoint=2) == []  # its two are being tried: none more
    done = next(d for d in first if d.batch_id == "s0")
    assert await store.finish_delivery(done.id, "A", state="delivered", attempts=1, next_at=0.0, status=204,
                                       error="", done_at=102.0)  # fmt: skip
    assert [d.batch_id for d in await _claim(store, "B", now=103.0, per_endpoint=2)] == ["s2"]


async def test_replicas_claiming_at_one_instant_give_a_slow_endpoint_no_more_than_its_share(
    store: Store, target: str | Path
) -> None:
    """Two replicas (a store each), claiming many times at once: together they lease no more of one endpoint's
    events than `per_endpoint` (on PostgreSQL, claims take turns under an advisory lock)."""
    assert await store.add_endpoint(_endpoint("wh_slow"), limit=5)
    notify = _telling([])
    for i in range(40):
        await store.enter([seen(f"s{i}", status="completed", terminal=True)], [], owner="o", keep=5,
                          observed_at=1.0 + i, notify=notify)  # fmt: skip
    other = await open_store(target)
    try:
        claims = [_claim(replica, f"{name}{i}", now=100.0, per_endpoint=3)
                  for i in range(8) for name, replica in (("A", store), ("B", other))]  # fmt: skip
        taken = [d for claimed in await asyncio.gather(*claims) for d in claimed]
    finally:
        await other.close()
    assert len(taken) == 3 and len({d.id for d in taken}) == 3


async def test_a_stale_event_whose_try_failed_gives_way_to_the_newer_one(store: Store) -> None:
    """A try of `in_progress` fails while `completed` waits behind it: it is superseded then, not tried again for
    hours ahead of the terminal one."""
    assert await store.add_endpoint(_endpoint("wh_o"), limit=5)
    notify = _telling([])
    await store.enter([seen("b", status="in_progress")], [], owner="o", keep=5, observed_at=1.0, notify=notify)
    (trying,) = await _claim(store, "A", now=10.0)
    await store.enter([seen("b", status="completed", terminal=True)], [], owner="o", keep=5, observed_at=11.0,
                      notify=notify)  # fmt: skip
    assert await store.finish_delivery(trying.id, "A", state="pending", attempts=1, next_at=5000.0, status=503,
                                       error="busy", done_at=0.0)  # fmt: skip
    (newer,) = await _claim(store, "B", now=12.0)
    assert (newer.rev, newer.kind) == (2, "batch.completed")
    states = {d.rev: (d.state, d.last_status) for d in await store.deliveries("wh_o", 10)}
    assert states == {1: ("superseded", 503), 2: ("pending", 0)}


async def test_a_stale_event_left_pending_never_holds_the_newer_one_back_and_is_swept(store: Store) -> None:
    """The older event was being tried when the newer came (so not superseded then), and its try never finished (a
    replica died; or, on PostgreSQL, a finish that could not see the newer save yet): once its lease ends it is
    neither sent nor waited for, and the sweep marks it superseded."""
    assert await store.add_endpoint(_endpoint("wh_o"), limit=5)
    notify = _telling([])
    await store.enter([seen("b", status="in_progress")], [], owner="o", keep=5, observed_at=1.0, notify=notify)
    await _claim(store, "A", now=10.0)  # A dies holding it
    await store.enter([seen("b", status="completed", terminal=True)], [], owner="o", keep=5, observed_at=11.0,
                      notify=notify)  # fmt: skip
    assert [d.state for d in await store.deliveries("wh_o", 10)] == ["pending", "pending"]
    (newer,) = await _claim(store, "B", now=41.0)  # A's lease has ended
    assert (newer.rev, newer.kind) == (2, "batch.completed")
    assert await store.sweep_outbox(before=0.0, now=42.0) == 1
    assert {d.rev: d.state for d in await store.deliveries("wh_o", 10)} == {1: "superseded", 2: "pending"}
