"""One batch per request_id, whatever replica each identical create reaches (#23): a create running on another
replica is waited for, not taken for a lost reply; only an attempt that is over (it timed out, or its replica was
killed) is looked for upstream, and a batch is created again only when that attempt certainly made none."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.client import BatchClient, BatchError
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, connect, create_request, details, make_settings
from tests.test_replicas import replica_process, replicas

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# A real gateway's pace (a request in ~50-80 ms), and a create slower than the other replicas' search for it.
GATEWAY_LATENCY = 0.08
SLOW_CREATE = 0.5


async def _identical_creates(stubs: list[Stub], request: pb.CreateBatchRequest, n: int = 20) -> list[str]:
    async def create(i: int) -> str:
        for _ in range(100):  # a running create that outlasts this call's deadline is UNAVAILABLE: retry
            try:
                reply = await stubs[i % len(stubs)].CreateBatch(request, metadata=ALICE, timeout=10)
                return reply.batch.id
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
                await asyncio.sleep(0.1)
        raise AssertionError("never got a batch")

    return list(await asyncio.gather(*(create(i) for i in range(n))))


@pytest.mark.parametrize(("n", "trials"), [(2, 10), (3, 20)])
@pytest.mark.slow
async def test_identical_creates_spread_over_replicas_make_one_batch_every_trial(
    sim: Sim, tmp_path: Path, postgres_url: str, n: int, trials: int
) -> None:
    await sim.pace(GATEWAY_LATENCY, concurrency=20)
    async with replicas(sim, tmp_path, postgres_url, n=n) as servers, contextlib.AsyncExitStack() as stack:
        stubs = [await stack.enter_async_context(connect(s.port)) for s in servers]
        # An older batch of the caller's: a search for a create that got no reply can walk back past it and conclude
        # that create made nothing (as on a real gateway with a history), so taking a running create for a lost
        # reply would make a second batch here.
        older = (await stubs[0].CreateBatch(create_request(1), metadata=ALICE)).batch.id
        sim.state.batches[older].created_at -= 3600
        for trial in range(trials):
            await sim.fault(op="create", delay=SLOW_CREATE, times=1)  # the first create outlasts the searches
            request = create_request(2, request_id=str(uuid.uuid4()))
            ids = await _identical_creates(stubs, request)
            assert len(set(ids)) == 1, f"trial {trial}: {len(set(ids))} batches"
            assert ids[0] in sim.state.batches
    assert len(sim.state.batches) == trials + 1  # one upstream batch per request_id, every trial
    assert await sim.requests_seen("create") == trials + 1


async def test_identical_creates_on_one_sqlite_server_make_one_batch(sim: Sim, tmp_path: Path) -> None:
    await sim.pace(GATEWAY_LATENCY, concurrency=20)
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        older = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        sim.state.batches[older].created_at -= 3600  # as above: a search could walk past it
        for _ in range(5):
            await sim.fault(op="create", delay=SLOW_CREATE, times=1)
            ids = await _identical_creates([stub], create_request(2, request_id=str(uuid.uuid4())))
            assert len(set(ids)) == 1
    assert len(sim.state.batches) == 6 and await sim.requests_seen("create") == 6


async def test_a_retry_whose_deadline_passes_while_the_first_runs_is_unavailable_and_creates_nothing(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    request = create_request(1, request_id=str(uuid.uuid4()))
    async with replicas(sim, tmp_path, postgres_url, n=2) as (first, second), contextlib.AsyncExitStack() as stack:
        on_first = await stack.enter_async_context(connect(first.port))
        on_second = await stack.enter_async_context(connect(second.port))
        await sim.fault(op="create", delay=2.0, times=1)
        running = asyncio.ensure_future(on_first.CreateBatch(request, metadata=ALICE, timeout=10))
        await asyncio.sleep(0.3)  # the first attempt holds the claim and waits on the gateway
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await on_second.CreateBatch(request, metadata=ALICE, timeout=0.8)
        assert time.monotonic() - started < 0.8  # answered before its deadline, not DEADLINE_EXCEEDED
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        found = details(caught.value)
        assert found.info is not None and found.retry is not None
        assert found.info.reason == "CREATE_IN_PROGRESS" and found.info.metadata["request_id"] == request.request_id
        assert 0 < found.retry.retry_delay.ToTimedelta().total_seconds() <= 1.0
        first_id = (await running).batch.id
        again = await on_second.CreateBatch(request, metadata=ALICE, timeout=10)
        assert again.batch.id == first_id
    assert list(sim.state.batches) == [first_id] and await sim.requests_seen("create") == 1


@pytest.mark.parametrize("made_upstream", [True, False], ids=["the-gateway-made-it", "it-made-none"])
@pytest.mark.subprocess
@pytest.mark.slow
async def test_a_replica_killed_mid_create_leaves_one_batch_found_or_made_by_the_retry(
    sim: Sim, tmp_path: Path, postgres_url: str, made_upstream: bool
) -> None:
    """kill -9 while the create waits on the gateway. The gateway may still make the batch (its request was in);
    or not (here: it drops a request whose client went away). A retry on another replica waits out the dead
    attempt's deadline (UPSTREAM_TIMEOUT 2 s, plus the grace), then finds that batch, or makes the one: the search
    walks back past the dead attempt's time (to an older batch of the caller's), so it certainly made none."""
    body = {"q": {"messages": [{"role": "user", "content": "hi"}]}}
    async with contextlib.AsyncExitStack() as stack:
        survivor = await stack.enter_async_context(
            BatchServer(make_settings(sim.url, tmp_path / "survivor", state_db=postgres_url), gateway_url=sim.url)
        )
        client = await stack.enter_async_context(
            BatchClient(f"127.0.0.1:{survivor.port}", api_key="sim-key-alice", max_attempts=60)
        )
        older = await client.create("openai:gpt-4o-mini", body)
        sim.state.batches[older.id].created_at -= 3600
        process, port = await stack.enter_async_context(
            replica_process(sim, tmp_path / "doomed", postgres_url, UPSTREAM_TIMEOUT="2")
        )
        if made_upstream:
            await sim.pace(3.0)  # every request takes 3 s, whether its client is still there or not
        else:
            await sim.fault(op="create", delay=3.0, times=1)  # gives up on a client that went away
        request_id = str(uuid.uuid4())
        doomed = await stack.enter_async_context(
            BatchClient(f"127.0.0.1:{port}", api_key="sim-key-alice", max_attempts=1)
        )
        attempt = asyncio.create_task(doomed.create("openai:gpt-4o-mini", body, request_id=request_id))
        await asyncio.sleep(1.0)  # claimed, and waiting on the gateway
        process.kill()
        await process.wait()
        with pytest.raises(BatchError):
            await attempt
        await sim.pace(0.0)
        batch = await client.create("openai:gpt-4o-mini", body, request_id=request_id, deadline=60)
        await asyncio.sleep(3.5)  # anything the gateway was still making has landed
        assert set(sim.state.batches) == {older.id, batch.id}
        assert await client.create("openai:gpt-4o-mini", body, request_id=request_id) == batch
    # The older batch, the doomed attempt's, and (only when that one made nothing) the retry's.
    assert await sim.requests_seen("create") == (2 if made_upstream else 3)
