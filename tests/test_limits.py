"""Per-caller limits on a real server: one caller past a limit gets RESOURCE_EXHAUSTED with RetryInfo, and other
callers (and the caller's own local reads) are served meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.errors import ServiceError
from otari_batch_grpc.server.edge.limits import LimitPolicy, Limits
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import watch_pb2
from tests.conftest import ALICE, BOB, FAST, Sim, connect, create_request, details, eventually, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub


@contextlib.asynccontextmanager
async def limited(sim: Sim, tmp_path: Path, **limits: Any) -> AsyncIterator[Stub]:
    async with limited_server(sim, tmp_path, **limits) as (_, stub):
        yield stub


@contextlib.asynccontextmanager
async def limited_server(sim: Sim, tmp_path: Path, **limits: Any) -> AsyncIterator[tuple[BatchServer, Stub]]:
    settings = make_settings(sim.url, tmp_path, **limits)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        yield server, stub


def watching(server: BatchServer, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return server.service.hub.subscriptions() == count

    return check


def assert_limited(error: grpc.aio.AioRpcError, limit: str) -> None:
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(error)
    assert found.info is not None and found.info.reason == "LIMIT_EXCEEDED"
    assert found.info.metadata["limit"] == limit
    assert found.retry is not None and found.retry.retry_delay.ToTimedelta().total_seconds() > 0


async def _first(call: Any) -> Any:
    async for message in call:
        return message
    return None


async def test_streams_past_the_callers_limit_are_refused_and_others_are_served(sim: Sim, tmp_path: Path) -> None:
    async with limited(sim, tmp_path, limit_streams_per_caller=3) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        watches = [stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE) for _ in range(3)]
        for watch in watches:
            assert (await _first(watch)).event.batch.id == batch.id
        refused = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _first(refused)
        assert_limited(caught.value, "streams_per_caller")
        # Another caller is not affected; and a stream that ends gives its place back.
        bobs = (await stub.CreateBatch(create_request(1), metadata=BOB)).batch
        assert (await _first(stub.WatchBatch(pb.WatchBatchRequest(batch_id=bobs.id), metadata=BOB))).event
        watches[0].cancel()
        for _ in range(100):
            again = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
            try:
                assert (await _first(again)).event.batch.id == batch.id
                break
            except grpc.aio.AioRpcError as error:  # the cancel reaches the server asynchronously
                assert_limited(error, "streams_per_caller")
                await asyncio.sleep(0.05)
        else:
            pytest.fail("a cancelled stream never gave its place back")
        for watch in (*watches, again):
            watch.cancel()


async def test_the_server_wide_stream_cap(sim: Sim, tmp_path: Path) -> None:
    async with limited(sim, tmp_path, limit_streams_total=2) as stub:
        mine = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        theirs = (await stub.CreateBatch(create_request(1), metadata=BOB)).batch
        open_ = [
            stub.WatchBatch(pb.WatchBatchRequest(batch_id=mine.id), metadata=ALICE),
            stub.WatchBatch(pb.WatchBatchRequest(batch_id=theirs.id), metadata=BOB),
        ]
        for watch in open_:
            await _first(watch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _first(stub.WatchBatch(pb.WatchBatchRequest(batch_id=theirs.id), metadata=BOB))
        assert_limited(caught.value, "streams_total")
        for watch in open_:
            watch.cancel()


async def test_batches_watched_per_caller(sim: Sim, tmp_path: Path) -> None:
    async with limited(sim, tmp_path, limit_watched_per_caller=3) as stub:
        ids = [(await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(4)]
        two = stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=ids[:2]), metadata=ALICE)
        await _first(two)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _first(stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=ids[2:]), metadata=ALICE))
        assert_limited(caught.value, "watched_per_caller")
        one_more = stub.WatchBatch(pb.WatchBatchRequest(batch_id=ids[2]), metadata=ALICE)
        assert (await _first(one_more)).event.batch.id == ids[2]  # 3 of 3
        for call in (two, one_more):
            call.cancel()


async def test_a_burst_of_gateway_calls_queues_behind_its_own_callers_limit(sim: Sim, tmp_path: Path) -> None:
    async with limited(sim, tmp_path, limit_upstream_per_caller=2, limit_upstream_queue_per_caller=3) as stub:
        # Distinct batches: identical reads would share one gateway call.
        bobs = [(await stub.CreateBatch(create_request(1), metadata=BOB)).batch for _ in range(6)]
        alices = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        await sim.force(alices.id, "completed")
        await stub.GetBatch(pb.GetBatchRequest(batch_id=alices.id), metadata=ALICE)  # now known to be finished
        gets_before = await sim.requests_seen("get")
        await sim.fault(op="get", delay=30.0)  # every gateway GET hangs from now on
        burst = [
            asyncio.ensure_future(stub.GetBatch(pb.GetBatchRequest(batch_id=b.id), metadata=BOB, timeout=60))
            for b in bobs[:5]
        ]

        async def in_flight() -> int:
            return await sim.requests_seen("get") - gets_before

        async def two_in_flight() -> bool:
            return await in_flight() >= 2

        await eventually(two_in_flight)
        # Two at the gateway, three queued: the sixth is refused at once.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id=bobs[5].id), metadata=BOB, timeout=10)
        assert_limited(caught.value, "upstream_per_caller")
        # Alice's local read (a finished batch she was shown) does not wait behind bob's burst.
        got = await stub.GetBatch(pb.GetBatchRequest(batch_id=alices.id), metadata=ALICE, timeout=10)
        assert got.batch.id == alices.id
        assert await in_flight() == 2  # the queue held the rest back
        for call in burst:
            call.cancel()
        await asyncio.gather(*burst, return_exceptions=True)


async def test_gateway_slots_come_back_after_cancelled_calls() -> None:
    limits = Limits(
        LimitPolicy(streams_per_caller=1, streams_total=1, upstream_per_caller=1, upstream_queue_per_caller=1)
    )
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with limits.upstream("k"):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(Exception, match="limit per caller"):
        async with limits.upstream("k"):
            pass
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert not limits._upstream  # nothing left behind for the key
    async with limits.upstream("k"):
        pass


async def test_health_stays_serving_while_callers_hold_every_gateway_connection(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, upstream_max_connections=1, health_interval=0.05)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        await sim.fault(op="get", delay=3.0, times=1)
        slow = asyncio.ensure_future(stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE))
        await eventually(lambda: _seen(sim, "get"))  # the pool's one connection is now busy for 3 s
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)  # typed for sync channels only
            for _ in range(20):  # a second of probes, each of which would wait for the pool
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                await asyncio.sleep(0.05)
        assert not slow.done()
        assert (await slow).batch.id == batch.id


async def _seen(sim: Sim, op: str) -> bool:
    return await sim.requests_seen(op) > 0


async def test_a_stream_following_all_batches_is_told_of_one_past_the_limit(sim: Sim, tmp_path: Path) -> None:
    async with limited_server(sim, tmp_path, limit_watched_per_caller=2) as (server, stub):
        follow = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)  # no live batch yet

        async def following() -> bool:
            return bool(server.service.hub._owner_streams)

        await eventually(following)  # the stream follows before the batches are made
        ids = [(await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(3)]
        seen: dict[str, Any] = {}
        async for message in follow:
            if message.event.batch.id:
                seen[message.event.batch.id] = message.event
            if len(seen) == 3:
                break
        follow.cancel()
        kinds = [seen[i].kind for i in ids]
        assert kinds[:2] == [watch_pb2.BATCH_EVENT_KIND_SNAPSHOT] * 2
        assert kinds[2] == watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE
        assert seen[ids[2]].problem.code == "RESOURCE_EXHAUSTED" and seen[ids[2]].problem.reason == "LIMIT_EXCEEDED"


async def test_wait_batch_counts_as_watching(sim: Sim, tmp_path: Path) -> None:
    async with limited_server(sim, tmp_path, limit_watched_per_caller=1, **FAST) as (server, stub):
        ids = [(await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(2)]
        timeout = duration_pb2.Duration(seconds=30)
        first = asyncio.ensure_future(
            stub.WaitBatch(pb.WaitBatchRequest(batch_id=ids[0], timeout=timeout), metadata=ALICE)
        )
        await eventually(watching(server, 1))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.WaitBatch(pb.WaitBatchRequest(batch_id=ids[1], timeout=timeout), metadata=ALICE)
        assert_limited(caught.value, "watched_per_caller")
        await sim.force(ids[0], "completed")
        assert (await first).done


async def test_a_batch_past_the_limit_is_told_of_once_and_followed_once_there_is_room(sim: Sim, tmp_path: Path) -> None:
    async with limited_server(sim, tmp_path, limit_watched_per_caller=2) as (server, stub):
        follow = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)

        async def following() -> bool:
            return bool(server.service.hub._owner_streams)

        await eventually(following)
        ids = [(await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(3)]
        events: list[Any] = []

        async def read_until(done: Callable[[], bool]) -> None:
            async for message in follow:
                if message.event.batch.id:
                    events.append(message.event)
                if done():
                    return

        def told(kind: int, batch_id: str) -> int:
            return sum(1 for e in events if e.kind == kind and e.batch.id == batch_id)

        await asyncio.wait_for(read_until(lambda: len(events) == 3), 10)
        for _ in range(3):  # shown again and again while there is no room: no news
            await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
            await stub.GetBatch(pb.GetBatchRequest(batch_id=ids[2], provider="openai"), metadata=ALICE)
        await sim.force(ids[0], "cancelled")  # room for one more once the stream sees it finish
        await asyncio.wait_for(read_until(lambda: told(watch_pb2.BATCH_EVENT_KIND_CHANGE, ids[0]) == 1), 10)
        await stub.GetBatch(pb.GetBatchRequest(batch_id=ids[2], provider="openai"), metadata=ALICE)
        await asyncio.wait_for(read_until(lambda: told(watch_pb2.BATCH_EVENT_KIND_SNAPSHOT, ids[2]) == 1), 10)
        follow.cancel()
        assert told(watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE, ids[2]) == 1


# -- batches of any size ----------------------------------------------------------------------------------------------
async def _exhausted(call: Awaitable[Any], limit: str) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(caught.value)
    assert found.info is not None and found.info.metadata["limit"] == limit
    return found


def _upload(request: pb.CreateBatchRequest, chunk: int) -> AsyncIterator[pb.UploadBatchRequest]:
    async def messages() -> AsyncIterator[pb.UploadBatchRequest]:
        header = pb.CreateBatchRequest()
        header.CopyFrom(request)
        header.ClearField("requests")
        yield pb.UploadBatchRequest(header=header)
        for start in range(0, len(request.requests), chunk):
            yield pb.UploadBatchRequest(chunk=pb.RequestChunk(requests=request.requests[start : start + chunk]))

    return messages()


def test_uploads_spooled_at_once_are_bounded_on_the_whole_server_too() -> None:
    policy = LimitPolicy(streams_per_caller=1, streams_total=1, upstream_per_caller=1, upstream_queue_per_caller=1,
                         spooled_bytes_per_caller=1000, spooled_bytes_total=1500)  # fmt: skip
    limits = Limits(policy)
    with limits.spooling("alice") as alices:
        alices(900)  # within her own limit and the server's
        with limits.spooling("bob") as bobs:
            bobs(600)
            with pytest.raises(ServiceError) as refused:
                bobs(100)  # within his own 1,000, past the server's 1,500 with hers
            assert refused.value.metadata == {"limit": "spooled_bytes_total"}
            assert refused.value.retry_after is not None
    with limits.spooling("bob") as bobs:  # both uploads ended: every byte given back
        bobs(1000)


async def test_a_batch_past_its_size_limit_is_refused_for_good(sim: Sim, tmp_path: Path) -> None:
    async with limited(sim, tmp_path, limit_batch_requests=5) as stub:
        found = await _exhausted(stub.CreateBatch(create_request(6), metadata=ALICE), "batch_requests")
        assert found.retry is None  # no retry gets under it
        await _exhausted(stub.UploadBatch(_upload(create_request(6), 2), metadata=ALICE), "batch_requests")
        assert (await stub.CreateBatch(create_request(5), metadata=ALICE)).batch.id
    assert len(sim.state.batches) == 1


async def test_an_upload_past_the_servers_spool_is_refused_naming_that_limit(sim: Sim, tmp_path: Path) -> None:
    async with limited(sim, tmp_path, limit_spooled_bytes_total=3000) as stub:
        found = await _exhausted(stub.UploadBatch(_upload(create_request(60), 10), metadata=ALICE),
                                 "spooled_bytes_total")  # fmt: skip
        assert found.retry is not None
    assert not sim.state.batches


async def test_uploads_spooled_at_once_and_parts_made_at_once_are_bounded_per_caller(sim: Sim, tmp_path: Path) -> None:
    async with limited(
        sim, tmp_path, limit_spooled_bytes_per_caller=3000, limit_parts_in_flight_per_caller=2, part_max_requests=10
    ) as stub:
        found = await _exhausted(
            stub.UploadBatch(_upload(create_request(60), 10), metadata=ALICE), "spooled_bytes_per_caller"
        )
        assert found.retry is not None
        found = await _exhausted(stub.CreateBatch(create_request(25), metadata=ALICE), "parts_in_flight_per_caller")
        assert found.retry is not None
        assert len((await stub.CreateBatch(create_request(20), metadata=ALICE)).batch.parts) == 2
    assert len(sim.state.batches) == 2  # the two parts of the batch within the limits, nothing else
