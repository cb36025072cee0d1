"""Access ends when the gateway says so (#29), the matrix: every RPC, with a key revoked at the gateway, a user
deleted and a user blocked, under a short trust window (2 s) and none (0). (test_access.py: the rest of the issue.)

Each world: a caller with a key of its own has a live batch, a completed one whose results the service keeps, a
create made with a request_id and a page token, and five streams open (WatchBatch of the live batch, WatchBatches of
everything, WatchBatches of the completed batch alone: idle, WaitBatch, StreamResults waiting). Then the gateway
revokes the key (or deletes the user, or blocks it), and the trust window passes. From then on:
- revoked or deleted: every RPC is UNAUTHENTICATED, replays and cached results included, and every stream has
  ended UNAUTHENTICATED within the window and one poll interval;
- blocked: reads are served (replays too) and the streams go on; a create is PERMISSION_DENIED USER_BLOCKED.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2_grpc
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import Sim, create_request, details, http_client, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

pytestmark = pytest.mark.asyncio(loop_scope="class")

POLL = {"watch_poll_min": 0.05, "watch_poll_max": 0.1, "watch_heartbeat": 30.0}
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
WORLDS = [(who, trust) for who in ("revoked", "deleted", "blocked") for trust in (2.0, 0.0)]


@dataclass
class World:
    who: str
    trust: float
    stub: Stub
    sim: Sim
    server: BatchServer
    key: str
    live: batch_pb2.Batch
    done: batch_pb2.Batch
    replay: pb.CreateBatchRequest
    page_token: str
    changed_at: float  # when the gateway revoked, deleted or blocked
    streams: dict[str, Any] = field(default_factory=dict)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)

    @property
    def refused(self) -> bool:
        return self.who in ("revoked", "deleted")


@pytest_asyncio.fixture(scope="class", loop_scope="class", params=WORLDS, ids=[f"{w}-trust{t:g}" for w, t in WORLDS])
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    who, trust = request.param
    state = SimState(stage_seconds=3600)
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(running_simulator(state))
        http = await stack.enter_async_context(http_client(base_url=url))
        sim = Sim(url=url, state=state, http=http)
        settings = make_settings(url, tmp_path_factory.mktemp("access"), owner_trust_seconds=trust, **POLL)
        server = await stack.enter_async_context(BatchServer(settings, gateway_url=url))
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
        stub = batch_service_pb2_grpc.BatchServiceStub(channel)
        key_id, key = await sim.new_key("carol")
        md = (("authorization", f"Bearer {key}"),)
        live = (await stub.CreateBatch(create_request(1), metadata=md)).batch
        done = (await stub.CreateBatch(create_request(2), metadata=md)).batch
        await sim.force(done.id, "completed")
        await _results(stub, done.id, md)  # kept by the service from now on
        replay = create_request(1, request_id=str(uuid.uuid4()))
        await stub.CreateBatch(replay, metadata=md)
        page = await stub.ListBatches(pb.ListBatchesRequest(page_size=1), metadata=md)
        assert page.next_page_token
        streams: dict[str, Any] = {
            "WatchBatch": stub.WatchBatch(pb.WatchBatchRequest(batch_id=live.id), metadata=md),
            "WatchBatches": stub.WatchBatches(pb.WatchBatchesRequest(), metadata=md),
            "WatchBatches(idle)": stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[done.id]), metadata=md),
            "StreamResults(wait)": stub.StreamResults(
                pb.StreamResultsRequest(batch_id=live.id, wait=True), metadata=md
            ),
        }
        for call in streams.values():
            assert await asyncio.wait_for(call.read(), 10) is not grpc.aio.EOF
        wait = pb.WaitBatchRequest(batch_id=live.id, timeout=duration_pb2.Duration(seconds=60))
        streams["WaitBatch"] = stub.WaitBatch(wait, metadata=md)
        await asyncio.sleep(0.2)  # the wait has joined
        if who == "revoked":
            await sim.set_key_active(key_id, False)
        elif who == "deleted":
            await sim.delete_user("carol")
        else:
            await sim.block_user("carol")
        changed = time.monotonic()
        world = World(who, trust, stub, sim, server, key, live, done, replay, page.next_page_token, changed, streams)
        await asyncio.sleep(trust + 0.3)  # the trust window passes: nothing the service keeps counts for the key
        yield world
        for call in streams.values():
            call.cancel()


async def _results(stub: Stub, batch_id: str, md: Any) -> int:
    count = 0
    async for response in stub.StreamResults(pb.StreamResultsRequest(batch_id=batch_id), metadata=md):
        count += len(response.results)
    return count


async def _first_event(call: Any) -> Any:
    response = await asyncio.wait_for(call.read(), 10)
    assert response is not grpc.aio.EOF
    return response


class TestEveryRpc:
    """Cell by cell: the RPC, after the gateway's change and the trust window."""

    async def _check(self, world: World, call: Any, *, blocked_code: grpc.StatusCode | None = None) -> Any:
        """Refused (revoked, deleted), or served (blocked: `blocked_code` when a blocked user is refused too)."""
        if world.refused:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == UNAUTHENTICATED, caught.value.details()
            info = details(caught.value).info
            assert info is not None and info.reason == "GATEWAY_UNAUTHENTICATED"
            return None
        if blocked_code is not None:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == blocked_code
            return caught.value
        return await call

    async def test_create(self, world: World) -> None:
        error = await self._check(
            world,
            world.stub.CreateBatch(create_request(1), metadata=world.md),
            blocked_code=grpc.StatusCode.PERMISSION_DENIED,
        )
        if error is not None:
            info = details(error).info
            assert info is not None and info.reason == "USER_BLOCKED"

    async def test_create_replayed(self, world: World) -> None:
        """The create's request_id again: its batch only to a caller the gateway still takes."""
        replayed = await self._check(world, world.stub.CreateBatch(world.replay, metadata=world.md))
        if replayed is not None:
            assert replayed.batch.id

    async def test_get_live(self, world: World) -> None:
        await self._check(world, world.stub.GetBatch(pb.GetBatchRequest(batch_id=world.live.id), metadata=world.md))

    async def test_get_completed(self, world: World) -> None:
        got = await self._check(
            world, world.stub.GetBatch(pb.GetBatchRequest(batch_id=world.done.id), metadata=world.md)
        )
        if got is not None:
            assert got.batch.status == batch_pb2.BATCH_STATUS_COMPLETED

    async def test_list_first_page(self, world: World) -> None:
        await self._check(world, world.stub.ListBatches(pb.ListBatchesRequest(page_size=1), metadata=world.md))

    async def test_list_next_page(self, world: World) -> None:
        request = pb.ListBatchesRequest(page_size=1, page_token=world.page_token)
        await self._check(world, world.stub.ListBatches(request, metadata=world.md))

    async def test_results_kept(self, world: World) -> None:
        await self._check(world, _results(world.stub, world.done.id, world.md))

    async def test_watch_completed(self, world: World) -> None:
        call = world.stub.WatchBatch(pb.WatchBatchRequest(batch_id=world.done.id), metadata=world.md)
        await self._check(world, _first_event(call))

    async def test_watch_many_listed(self, world: World) -> None:
        call = world.stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[world.done.id]), metadata=world.md)
        event = await self._check(world, _first_event(call))
        call.cancel()
        if event is not None:
            assert event.event.batch.status == batch_pb2.BATCH_STATUS_COMPLETED

    async def test_watch_many_all(self, world: World) -> None:
        call = world.stub.WatchBatches(pb.WatchBatchesRequest(), metadata=world.md)
        await self._check(world, _first_event(call))
        call.cancel()

    async def test_wait_completed(self, world: World) -> None:
        await self._check(world, world.stub.WaitBatch(pb.WaitBatchRequest(batch_id=world.done.id), metadata=world.md))

    async def test_cancel(self, world: World) -> None:
        await self._check(
            world, world.stub.CancelBatch(pb.CancelBatchRequest(batch_id=world.live.id), metadata=world.md)
        )

    async def test_streams_opened_before(self, world: World) -> None:
        """Revoked or deleted: each stream has ended UNAUTHENTICATED, within the trust window and one poll interval
        of the change (a generous margin on top: a bound, not a timing goal). Blocked: each goes on."""
        bound = world.trust + POLL["watch_poll_max"] + 3.0
        for name, call in world.streams.items():
            if not world.refused:
                assert not call.done(), f"{name} ended for a blocked user"
                continue
            left = bound - (time.monotonic() - world.changed_at)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async with asyncio.timeout(max(left, 0.01)):
                    if name == "WaitBatch":
                        await call
                    while (await call.read()) is not grpc.aio.EOF:
                        pass
            assert caught.value.code() == UNAUTHENTICATED, (name, caught.value.details())
