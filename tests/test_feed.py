"""The feed (#20): subscriptions started from what the service knows, gateway reads shared, and what a subscription
took given back however it ends; the poll lease released only by the loop that holds it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.core.observations import Observation, seen
from otari_batch_grpc.server.domain.subscriptions.hub import Hub
from otari_batch_grpc.server.domain.subscriptions.poll_loop import WatchPolicy
from otari_batch_grpc.server.domain.subscriptions.subscribers import Problem, Subscriber, Watcher
from otari_batch_grpc.server.store import open_store
from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, FAST, Sim, connect, create_request, details, make_settings, port_to_bind_later

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

SNAPSHOT = watch_pb2.BATCH_EVENT_KIND_SNAPSHOT


async def _first(call: Any) -> Any:
    response = await asyncio.wait_for(call.read(), 10)
    assert response is not grpc.aio.EOF
    return response


async def _ends_with(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while True:
            response = await asyncio.wait_for(call.read(), 10)
            assert response is not grpc.aio.EOF, "the stream ended OK"
    return caught.value


# -- what a subscription took, given back whatever ends it (the lock-out) ------------------------------------------
@pytest.mark.parametrize(
    ("fault", "code"),
    [({"status": 503}, grpc.StatusCode.UNAVAILABLE), ({"status": 404, "detail": "gone"}, grpc.StatusCode.NOT_FOUND)],
    ids=["the-gateway-fails-past-the-limit", "the-key-lost-access"],
)
async def test_a_watch_ended_by_the_hub_gives_its_batch_back(
    sim: Sim, tmp_path: Path, fault: dict[str, Any], code: grpc.StatusCode
) -> None:
    """With room for one watched batch: a watch the hub ends (the gateway failing longer than the limit, or the
    key losing access) leaves that room free, for WatchBatch and WaitBatch alike."""
    settings = make_settings(sim.url, tmp_path, limit_watched_per_caller=1, watch_failure_limit=0.3, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        await sim.fault(op="get", **fault)
        watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        assert (await _first(watch)).event.kind == SNAPSHOT
        assert (await _ends_with(watch)).code() == code
        await sim.http.delete("/_simulator/faults")
        # (with its provider: after a NOT_FOUND the service forgot the batch for this caller)
        again = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)
        assert (await _first(again)).event.kind == SNAPSHOT  # not RESOURCE_EXHAUSTED "You watch 1 batches"
        again.cancel()
        wait = pb.WaitBatchRequest(batch_id=batch.id, provider="openai")
        waited = await stub.WaitBatch(wait, metadata=ALICE, timeout=0.5)
        assert waited.batch.id == batch.id
        assert server.service.hub.subscriptions() <= 1


# -- what a subscription starts from: no gateway call for a batch the service knows for this caller ---------------
async def test_joins_and_resumes_of_known_batches_ask_the_gateway_nothing(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(
        sim.url,
        tmp_path,
        grpc_listen=f"127.0.0.1:{port_to_bind_later()}",
        watch_poll_min=20.0,
        watch_poll_max=20.0,
    )
    tokens: list[tuple[str, str]] = []
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        ids = [(await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(20)]
        before = await sim.requests_seen("get")
        watches = [stub.WatchBatch(pb.WatchBatchRequest(batch_id=ids[i % 20]), metadata=ALICE) for i in range(200)]
        for i, watch in enumerate(watches):
            event = (await _first(watch)).event
            assert event.kind == SNAPSHOT and event.batch.id == ids[i % 20]
            tokens.append((event.batch.id, event.resume_token))
        assert await sim.requests_seen("get") == before  # 200 snapshots, no gateway read
        for watch in watches:
            watch.cancel()
    # After a restart: every subscriber resumes from its token, from the store.
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        before = await sim.requests_seen("get")
        resumed = [
            stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id, resume_token=token), metadata=ALICE)
            for batch_id, token in tokens
        ]
        for watch in resumed:
            assert (await _first(watch)).event.kind == watch_pb2.BATCH_EVENT_KIND_HEARTBEAT  # resumed: nothing new
        assert await sim.requests_seen("get") == before
        for watch in resumed:
            watch.cancel()


async def test_a_batch_not_known_for_this_caller_is_read_from_the_gateway(stub: Stub, sim: Sim) -> None:
    listed = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    before = await sim.requests_seen("get")
    master = (("authorization", "Bearer sim-master-key"),)  # another caller: not known for it
    watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=listed.id, provider="openai"), metadata=master)
    assert (await _first(watch)).event.batch.id == listed.id
    assert await sim.requests_seen("get") == before + 1
    watch.cancel()


# -- shared gateway reads --------------------------------------------------------------------------------------------
async def test_concurrent_reads_of_one_live_batch_share_gateway_calls(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.pace(0.05, concurrency=20)  # as slow as the real gateway
    before = await sim.requests_seen("get")
    replies = await asyncio.gather(
        *(stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE, timeout=30) for _ in range(300))
    )
    assert {reply.batch.id for reply in replies} == {batch.id}
    assert await sim.requests_seen("get") - before <= 10  # a handful, not 300


async def test_a_shared_read_that_fails_fails_for_each_caller_with_its_error(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.fault(op="get", status=503, delay=0.2, times=1)
    results = await asyncio.gather(
        *(stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE, timeout=30) for _ in range(5)),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert failed and all(r.code() == grpc.StatusCode.UNAVAILABLE for r in failed)
    assert all(details(r).info is not None for r in failed)
    assert (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch.id == batch.id


# -- the poll lease: a loop releases only its own ------------------------------------------------------------------
async def test_an_ending_loop_never_releases_the_lease_of_the_loop_that_replaced_it(postgres_url: str) -> None:
    """The race: a batch's loop ends (its last subscriber left) and a new subscriber starts a new loop at once; the
    new loop takes the lease before the old one's release lands. The release must not free the new loop's lease,
    or two replicas end up polling the batch."""
    store = await open_store(postgres_url)
    try:
        assert await store.hold_lease("poll:b", "replica-1/old-loop", 30)
        assert await store.hold_lease("poll:b", "replica-1/new-loop", 30)  # the replica's newer loop takes over
        assert not await store.hold_lease("poll:b", "replica-2/a-loop", 30)  # another replica's is refused
        await store.release_lease("poll:b", "replica-1/old-loop")  # the old loop's release, landing late
        assert not await store.hold_lease("poll:b", "replica-2/a-loop", 30)  # still held
        async with contextlib.AsyncExitStack() as stack:
            conn = await asyncpg.connect(postgres_url, server_settings={"search_path": POSTGRES_SCHEMA})
            stack.push_async_callback(conn.close)
            rows = await conn.fetch("SELECT name, holder FROM leases")
        assert [(r["name"], r["holder"]) for r in rows] == [("poll:b", "replica-1/new-loop")]
        await store.release_lease("poll:b", "replica-1/new-loop")
        assert await store.hold_lease("poll:b", "replica-2/a-loop", 30)  # released by its holder: free
    finally:
        await store.close()


async def test_reads_of_an_unchanged_batch_renew_the_stored_access_a_restart_trusts(sim: Sim, tmp_path: Path) -> None:
    """The store's record that the gateway showed a caller a batch is renewed as reads keep showing it (within a
    quarter of the trust window), not only when it changes: a replica or a restart trusts it for a join (#20)."""
    settings = make_settings(
        sim.url,
        tmp_path,
        grpc_listen=f"127.0.0.1:{port_to_bind_later()}",
        owner_trust_seconds=4.0,  # renewed when a read finds it over 1 s old
        watch_poll_min=20.0,
        watch_poll_max=20.0,
    )
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch_id = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        for _ in range(10):  # reads more often than the renewal interval; the state does not change
            await asyncio.sleep(0.3)
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=ALICE)
    await asyncio.sleep(1.5)  # past the trust window from the create; within it from the last reads
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        before = await sim.requests_seen("get")
        watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id), metadata=ALICE)
        assert (await _first(watch)).event.kind == SNAPSHOT
        assert await sim.requests_seen("get") == before  # the store vouched for the caller: no gateway read
        watch.cancel()


async def test_a_poll_loop_that_fails_leaves_its_many_batch_subscribers_free_to_follow_it_again() -> None:
    """A loop that failed (an error of the server's own) reports it and is gone; a WatchBatches subscriber must not
    stay joined to it, or it would never follow that batch again (the soak's watches that stopped moving, #24)."""

    async def poll(watcher: Watcher, batch_id: str, provider: str) -> Observation:
        raise RuntimeError("a fault of the server's own")

    policy = WatchPolicy(
        poll_min=0.01, poll_max=0.02, failure_limit=60, trust_seconds=300, watched_per_caller=1, lease_seconds=1
    )
    hub = Hub(poll=poll, policy=policy)
    subscriber = Subscriber(Watcher("key", "owner"), many=True)
    live = batch_pb2.Batch(id="b1", status=batch_pb2.BATCH_STATUS_IN_PROGRESS)
    hub.join(subscriber, "b1", "openai", Observation(live, 1, time.time()))
    problems: list[Problem] = []
    while not problems:
        problems = [item for item in await subscriber.next(5.0) if isinstance(item, Problem)]
    assert problems[0].error.reason == "WATCH_FAILED"
    assert "b1" not in subscriber.joined
    hub.make_room("owner", 1)  # its place among the owner's watched batches was given back
    hub.join(subscriber, "b1", "openai", Observation(live, 1, time.time()))  # and it can follow the batch again
    await hub.close()


@pytest.mark.parametrize("rpc", ["WatchBatch", "WatchBatches"])
async def test_a_live_watch_sends_each_revision_saved_when_the_hub_offered_it_only_the_latest(
    stub: Stub, server: BatchServer, rpc: str
) -> None:
    """A replica that does not poll a batch reads the revisions another saved in a burst, and the hub offers each
    stream the latest alone (a subscriber holds one pending state per batch); the stream still sends every revision
    between, from the store: a watch misses none (the soak's skipped revisions, #24)."""
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    watch: Any = (
        stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        if rpc == "WatchBatch"
        else stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[batch.id]), metadata=ALICE)
    )
    assert (await _first(watch)).event.batch.status == batch_pb2.BATCH_STATUS_VALIDATING
    owner = server.service.owners.owner_of_key("sim-key-alice")
    saved = []
    for status in (batch_pb2.BATCH_STATUS_IN_PROGRESS, batch_pb2.BATCH_STATUS_FINALIZING):
        state = batch_pb2.Batch()
        state.CopyFrom(batch)
        state.status = status
        (revision,) = await server.store.enter(
            [seen(state, "openai")], [], owner=owner, keep=100, observed_at=time.time()
        )
        saved.append(Observation.of(revision))
    for observation in saved:  # offered at once, as the hub does with what another replica saved
        server.service.core.hub.publish(observation)
    events = [(await _first(watch)).event for _ in saved]
    assert [(e.previous_status, e.batch.status) for e in events] == [
        (batch_pb2.BATCH_STATUS_VALIDATING, batch_pb2.BATCH_STATUS_IN_PROGRESS),
        (batch_pb2.BATCH_STATUS_IN_PROGRESS, batch_pb2.BATCH_STATUS_FINALIZING),
    ]
    watch.cancel()
