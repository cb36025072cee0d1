"""The store: versioned migrations, refusal of a newer schema, and nothing acknowledged lost to a kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server.store import MIGRATIONS, Revision, SeenBatch, Store, StoreError
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, clean_env, connect, create_request, details, eventually

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

ROOT = Path(__file__).resolve().parent.parent


async def test_a_new_database_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = await Store.open(tmp_path / "s.db")  # reopening migrates nothing and loses nothing
    await again.close()


async def test_a_newer_schema_than_the_code_knows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this code knows"):
        await Store.open(path)


async def _server_process(sim: Sim, db: Path) -> tuple[asyncio.subprocess.Process, int]:
    env = clean_env(db, GATEWAY_URL=sim.url, GRPC_LISTEN="127.0.0.1:0")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otari_batch_grpc.server", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "the server process exited"
        if match := re.search(r"\(port (\d+)\)", line):
            return process, int(match.group(1))


async def test_kill_9_mid_load_loses_nothing_acknowledged(sim: Sim, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    process, port = await _server_process(sim, db)
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
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    process, port = await _server_process(sim, db)
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
    per_request = Counter(b.metadata.get("otari_request_id") for b in sim.state.batches.values())
    assert set(acknowledged) <= set(per_request) <= set(sent)
    assert set(per_request.values()) == {1}


async def test_results_older_than_the_age_limit_are_dropped(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
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
    finally:
        await store.close()


async def test_a_write_cancelled_at_any_await_leaves_the_store_usable(tmp_path: Path) -> None:
    """A poll loop is cancelled when its last subscriber leaves, possibly mid-transaction."""
    store = await Store.open(tmp_path / "s.db")
    try:
        for step in range(40):
            task = asyncio.ensure_future(_enter(store, b"x" * step))
            for _ in range(step % 8):  # cancel after a varying number of loop turns: before, in and after BEGIN
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        (revision,) = await _enter(store, b"last")  # raised "transaction within a transaction"
        assert (await store.latest_revision("b")) == revision
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def _enter(store: Store, snapshot: bytes) -> list[Revision]:
    seen = SeenBatch(id="b", provider="openai", status="in_progress", terminal=False, snapshot=snapshot)
    return await store.enter([seen], [], owner="o", keep=5, observed_at=0.0)
