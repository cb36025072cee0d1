"""Replicas on one PostgreSQL: one create for concurrent identical calls spread over them, one poll loop per live
batch across the fleet, every subscriber on every replica told of every change, and a lease taken over when its
holder is killed (-9), with the killed replica's subscribers resuming elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest

from otari_batch_grpc.client import BatchClient
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.server.store.postgres import PostgresStore
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, connect, create_request, eventually, make_settings, port_to_bind_later

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# Quick watches, and a lease short enough to see taken over in a test.
REPLICA = {"watch_poll_min": 0.05, "watch_poll_max": 0.2, "watch_heartbeat": 30.0, "watch_lease_seconds": 1.0}
BATCHES, SUBSCRIBERS = 30, 300
# Replicas that poll nothing during a test (each batch once, when first watched).
QUIET_REPLICA = {"watch_poll_min": 60.0, "watch_poll_max": 60.0, "watch_lease_seconds": 120.0}


@contextlib.asynccontextmanager
async def replicas(sim: Sim, tmp_path: Path, url: str, n: int = 3) -> AsyncIterator[list[BatchServer]]:
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        for i in range(n):
            settings = make_settings(sim.url, tmp_path / f"r{i}", state_db=url, **REPLICA)
            servers.append(await stack.enter_async_context(BatchServer(settings, gateway_url=sim.url)))
        yield servers


async def _leases(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url, server_settings={"search_path": POSTGRES_SCHEMA})
    try:
        return [(r["name"], r["holder"]) for r in await conn.fetch("SELECT name, holder FROM leases ORDER BY name")]
    finally:
        await conn.close()


async def test_50_identical_creates_over_3_replicas_make_one_batch(sim: Sim, tmp_path: Path, postgres_url: str) -> None:
    request = create_request(2, request_id="0b9d1a2e-6f3c-4e58-9a71-5c2d8e4f6a10")
    async with replicas(sim, tmp_path, postgres_url) as servers, contextlib.AsyncExitStack() as stack:
        stubs = [await stack.enter_async_context(connect(s.port)) for s in servers]

        async def create(i: int) -> str:
            for _ in range(50):  # a claim in flight on another replica is UNAVAILABLE, with RetryInfo: retry
                try:
                    return (await stubs[i % 3].CreateBatch(request, metadata=ALICE)).batch.id
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
                    await asyncio.sleep(0.1)
            raise AssertionError("never settled")

        ids = await asyncio.gather(*(create(i) for i in range(50)))
    assert len(set(ids)) == 1 and len(sim.state.batches) == 1
    assert await sim.requests_seen("create") == 1


async def test_a_lost_reply_retried_on_another_replica_and_results_cached_for_all(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    request = create_request(3, request_id="5e2b7c1d-9a4f-4b6e-8d3c-1f0a2b3c4d5e")
    async with (
        replicas(sim, tmp_path, postgres_url, n=2) as (first, second),
        connect(first.port) as on_first,
        connect(second.port) as on_second,
    ):
        await sim.fault(op="create", drop_after_create=True, times=1)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await on_first.CreateBatch(request, metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # made upstream; the reply was lost
        again = (await on_second.CreateBatch(request, metadata=ALICE)).batch
        assert list(sim.state.batches) == [again.id]  # found, not made twice
        await sim.force(again.id, "completed")
        for stub in (on_first, on_second):  # the second replica streams what the first one fetched
            call = stub.StreamResults(pb.StreamResultsRequest(batch_id=again.id), metadata=ALICE)
            assert [r.custom_id async for chunk in call for r in chunk.results] == ["req-0", "req-1", "req-2"]
        assert await sim.requests_seen("results") == 1


@pytest.mark.slow
async def test_one_poll_loop_per_batch_and_every_replica_sees_every_change(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    async with replicas(sim, tmp_path, postgres_url) as servers, contextlib.AsyncExitStack() as stack:
        stubs: list[Stub] = [await stack.enter_async_context(connect(s.port)) for s in servers]
        # 300 subscribers over 30 live batches, 100 on each replica (each batch watched on every replica).
        ids = [(await stubs[0].CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(BATCHES)]
        watches = [
            stub.WatchBatch(pb.WatchBatchRequest(batch_id=ids[i % BATCHES]), metadata=ALICE)
            for stub in stubs
            for i in range(SUBSCRIBERS // 3)
        ]
        for watch in watches:
            first = await watch.read()
            assert isinstance(first, pb.WatchBatchResponse)
            assert first.event.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT

        async def all_leased() -> bool:
            return len(await _leases(postgres_url)) == BATCHES

        await eventually(all_leased)
        # One replica polls each batch: the gateway sees one replica's polls (each loop at its slowest pace once
        # nothing changes: one per watch_poll_max), not three replicas'.
        await asyncio.sleep(1.0)
        before = await sim.requests_seen("get")
        await asyncio.sleep(2.0)
        polls = await sim.requests_seen("get") - before
        assert polls <= BATCHES * 2.0 / REPLICA["watch_poll_max"] * 1.3, polls
        assert len(await _leases(postgres_url)) == BATCHES
        for batch_id in ids:
            await sim.force(batch_id, "completed")
        for watch in watches:
            statuses = []
            while isinstance(response := await watch.read(), pb.WatchBatchResponse):
                statuses.append(response.event.batch.status)
            assert await watch.code() == grpc.StatusCode.OK
            assert statuses == [batch_pb2.BATCH_STATUS_COMPLETED], statuses  # the change, once, on every replica

        async def no_leases() -> bool:
            return not await _leases(postgres_url)

        await eventually(no_leases)  # each loop gave its lease up at the end


async def test_a_stream_following_all_batches_hears_of_one_created_on_another_replica(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    async with (
        replicas(sim, tmp_path, postgres_url, n=2) as (first, second),
        connect(first.port) as on_first,
        connect(second.port) as on_second,
    ):
        follow = on_second.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)

        async def following() -> bool:
            return bool(second.service.hub._owner_streams)

        await eventually(following)
        batch_id = (await on_first.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        event = await asyncio.wait_for(_first_batch_event(follow), 10)
        follow.cancel()
    assert event.batch.id == batch_id and event.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT


async def _first_batch_event(call: Any) -> watch_pb2.BatchEvent:
    """The first event of a WatchBatches stream that is about a batch (not a heartbeat)."""
    while True:
        response = await call.read()
        if response.event.batch.id:
            return response.event  # type: ignore[no-any-return]


async def test_a_watch_resumed_past_a_revision_heard_late_from_another_replica_is_sent_it(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    """Revisions are numbered as they commit, but a replica hears of another's a moment later: a stream can be sent
    a revision saved here before an earlier one saved elsewhere, and its token then says it is past that one. A
    resume sends that batch again, as a snapshot (a change was lost so in the soak, seed 740873)."""
    async with contextlib.AsyncExitStack() as stack:
        first, second = [
            await stack.enter_async_context(
                BatchServer(
                    make_settings(sim.url, tmp_path / name, state_db=postgres_url, **QUIET_REPLICA),
                    gateway_url=sim.url,
                )
            )
            for name in ("first", "second")
        ]
        on_first = await stack.enter_async_context(connect(first.port))
        on_second = await stack.enter_async_context(connect(second.port))
        a, b = [(await on_first.CreateBatch(create_request(2), metadata=ALICE)).batch for _ in range(2)]
        call = on_first.WatchBatches(pb.WatchBatchesRequest(batch_ids=[a.id, b.id]), metadata=ALICE)
        assert {(await _first_batch_event(call)).batch.id for _ in range(2)} == {a.id, b.id}
        assert isinstance(first.store, PostgresStore) and first.store._listener is not None
        first.store._listener.cancel()  # `first` hears nothing more of the other replica: its notices come late
        await on_second.CancelBatch(pb.CancelBatchRequest(batch_id=a.id), metadata=ALICE)  # saved by `second`
        await on_first.CancelBatch(pb.CancelBatchRequest(batch_id=b.id), metadata=ALICE)  # here, numbered after it
        event = await asyncio.wait_for(_first_batch_event(call), 10)
        assert (event.batch.id, event.batch.status) == (b.id, batch_pb2.BATCH_STATUS_CANCELLING)
        call.cancel()  # broken before `a`'s change came
        request = pb.WatchBatchesRequest(batch_ids=[a.id, b.id], resume_token=event.resume_token)
        sent_again = []
        for on in (on_second, on_first):  # on `first` too, which remembers `a` as it was (it heard nothing since)
            resumed = on.WatchBatches(request, metadata=ALICE)
            sent_again.append(await asyncio.wait_for(_first_batch_event(resumed), 10))
            resumed.cancel()
    for again in sent_again:
        assert (again.batch.id, again.batch.status) == (a.id, batch_pb2.BATCH_STATUS_CANCELLING)
        assert again.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT  # (the caller may have it: a snapshot says no more)


# -- a replica killed (-9) --------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def replica_process(
    sim: Sim, state_dir: Path, url: str, port: int = 0, **settings: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    env = {  # nothing of the developer's own environment (their METRICS_ADDRESS, OTEL_*, OWNER_SECRET, ...)
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GATEWAY_URL": sim.url,
        "GATEWAY_API_ROOT": sim.state.api_root,
        "GRPC_LISTEN": f"127.0.0.1:{port}",
        "STATE_DB": str(state_dir / "state.db"),
        "DATABASE_URL": url,
        "WATCH_POLL_MIN": "0.05",
        "WATCH_POLL_MAX": "0.2",
        "WATCH_LEASE_SECONDS": "1",
        "SHUTDOWN_GRACE": "1",
        **settings,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otari_batch_grpc.server", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        port = 0
        said: list[bytes] = []
        while not port:  # the port it bound
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, f"the replica exited before serving: {b''.join(said[-5:]).decode(errors='replace')}"
            said.append(line)
            with contextlib.suppress(ValueError):  # grpc core's own lines are not JSON
                message = json.loads(line).get("message", "")
                if found := re.search(r"serving on \S+ \(port (\d+)\)", message):
                    port = int(found.group(1))
        drain = asyncio.create_task(process.stderr.read())
        yield process, port
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()
        if drain is not None:
            drain.cancel()


@pytest.mark.subprocess
async def test_a_killed_lease_holder_is_taken_over_and_its_subscribers_resume_elsewhere(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        procs = [
            await stack.enter_async_context(replica_process(sim, tmp_path / f"p{i}", postgres_url)) for i in range(3)
        ]
        first = procs[0][1]
        async with connect(first) as stub:
            batch_id = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        # A subscriber on every replica, each through the round-robin client, which resumes broken streams.
        clients = [
            await stack.enter_async_context(
                BatchClient([f"127.0.0.1:{port}" for _, port in procs[i:] + procs[:i]], api_key="sim-key-alice")
            )
            for i in range(3)
        ]
        seen: list[list[int]] = [[] for _ in clients]  # every state each subscriber was shown
        changes: list[list[int]] = [[] for _ in clients]  # the changes among them

        async def follow(i: int) -> None:
            async for event in clients[i].watch(batch_id):
                if event.batch.id:
                    seen[i].append(event.batch.status)
                if event.kind == watch_pb2.BATCH_EVENT_KIND_CHANGE:
                    changes[i].append(event.batch.status)

        followers = [asyncio.create_task(follow(i)) for i in range(3)]

        async def leased() -> bool:
            return len(await _leases(postgres_url)) == 1

        await eventually(leased)
        # The simulator's clock moves the batch on: in_progress now, the next stage seconds later.
        created = sim.state.batches[batch_id].created_at
        await sim.set_stage_seconds(time.time() - created + 0.1)

        async def everyone_sees(status: int) -> bool:
            return all(status in statuses for statuses in seen)

        await eventually(lambda: everyone_sees(batch_pb2.BATCH_STATUS_IN_PROGRESS))
        # Kill -9 every replica but the last in turn, the holder among them: the lease moves on.
        (holder_before,) = await _leases(postgres_url)
        procs[0][0].kill()
        procs[1][0].kill()
        await procs[0][0].wait()
        await procs[1][0].wait()
        await sim.force(batch_id, "completed")
        await eventually(lambda: everyone_sees(batch_pb2.BATCH_STATUS_COMPLETED), within=20)
        await asyncio.wait_for(asyncio.gather(*followers), 20)
        for statuses, changed in zip(seen, changes, strict=True):
            # No missed and no repeated change (a resumed stream may show the state it resumed at as a snapshot).
            assert changed[0] == batch_pb2.BATCH_STATUS_IN_PROGRESS and changed[-1] == batch_pb2.BATCH_STATUS_COMPLETED
            assert changed == sorted(set(changed), key=changed.index) and len(set(changed)) == len(changed), statuses
            assert statuses[0] == batch_pb2.BATCH_STATUS_VALIDATING and statuses[-1] == changed[-1]
        assert holder_before  # there was one holder, and the survivor polled after the kill


@pytest.mark.subprocess
@pytest.mark.slow
async def test_a_rolling_restart_under_load_fails_no_call_and_loses_nothing(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    ports = [port_to_bind_later() for _ in range(3)]
    async with contextlib.AsyncExitStack() as outer:
        running: list[contextlib.AsyncExitStack] = []
        for i, port in enumerate(ports):
            stack = await outer.enter_async_context(contextlib.AsyncExitStack())
            await stack.enter_async_context(replica_process(sim, tmp_path / f"p{i}", postgres_url, port))
            running.append(stack)
        client = await outer.enter_async_context(
            BatchClient([f"127.0.0.1:{port}" for port in ports], api_key="sim-key-alice", max_attempts=10)
        )
        created: list[str] = []
        stop = asyncio.Event()

        async def load() -> None:  # creates (idempotent, retried) and reads, as a steady client would
            while not stop.is_set():
                batch = await client.create(
                    "openai:gpt-4o-mini", {"q": {"messages": [{"role": "user", "content": "hi"}]}}
                )
                created.append(batch.id)
                assert (await client.get(batch.id)).id == batch.id
                await asyncio.sleep(0.02)

        workers = [asyncio.create_task(load()) for _ in range(4)]
        await asyncio.sleep(1.0)
        for i, port in enumerate(ports):  # one at a time: stop (SIGTERM, drain), start again on the same port
            await running[i].aclose()
            running[i] = await outer.enter_async_context(contextlib.AsyncExitStack())
            await running[i].enter_async_context(replica_process(sim, tmp_path / f"p{i}-again", postgres_url, port))
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)  # any call that failed for good raises here
    # Everything acknowledged is there, once: one upstream batch per create.
    assert len(created) > 20, "the load did not run through the restarts"
    assert len(created) == len(set(created)) and set(created) <= set(sim.state.batches)
    assert len(sim.state.batches) == len(created)
