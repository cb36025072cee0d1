"""What a new user meets first (#21): a wrong key is UNAUTHENTICATED on every RPC, whatever the service could
answer from its own state; a batch id given without its provider is looked for, and unknown is NOT_FOUND."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import duration_pb2

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import watch_pb2
from tests.conftest import ALICE, BOB, Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

WRONG = (("authorization", "Bearer sim-key-alicd"),)  # one letter off


async def _first(call: Any) -> None:
    async for _ in call:
        return


async def test_a_wrong_key_is_unauthenticated_on_every_rpc(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch  # a real id, the registry knows it
    ref = {"batch_id": batch.id}
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "CreateBatch": lambda: stub.CreateBatch(create_request(1), metadata=WRONG),
        "GetBatch": lambda: stub.GetBatch(pb.GetBatchRequest(**ref), metadata=WRONG),
        "ListBatches": lambda: stub.ListBatches(pb.ListBatchesRequest(), metadata=WRONG),
        "CancelBatch": lambda: stub.CancelBatch(pb.CancelBatchRequest(**ref), metadata=WRONG),
        "StreamResults": lambda: _first(stub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id), metadata=WRONG)),
        "WatchBatch": lambda: _first(stub.WatchBatch(pb.WatchBatchRequest(**ref), metadata=WRONG)),
        "WatchBatches": lambda: _first(stub.WatchBatches(pb.WatchBatchesRequest(), metadata=WRONG, timeout=5)),
        "WaitBatch": lambda: stub.WaitBatch(
            pb.WaitBatchRequest(**ref, timeout=duration_pb2.Duration(seconds=1)), metadata=WRONG
        ),
    }
    for method, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method, caught.value.details())
        found = details(caught.value)
        assert found.info is not None and found.info.reason == "GATEWAY_UNAUTHENTICATED", method
        assert "Invalid API key" in (caught.value.details() or ""), method


async def test_a_wrong_key_is_asked_about_once_for_the_trust_window(stub: Stub, sim: Sim) -> None:
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ListBatches(pb.ListBatchesRequest(), metadata=WRONG)
    assert await sim.requests_seen("list") == 1  # the verdict is kept
    assert (await stub.ListBatches(pb.ListBatchesRequest(), metadata=ALICE)).batches == []  # a right key is fine


async def test_an_unknown_id_without_provider_is_not_found_after_the_callers_providers_were_asked(
    stub: Stub, sim: Sim
) -> None:
    await stub.CreateBatch(create_request(1), metadata=ALICE)  # alice uses openai
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_mistyped"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    found = details(caught.value)
    assert found.info is not None and found.info.reason == "BATCH_NOT_FOUND"
    assert found.info.metadata["providers"] == "openai,anthropic,mistral"  # hers first, then the gateway's


async def test_another_users_id_without_provider_is_not_found(stub: Stub, sim: Sim) -> None:
    alices = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await stub.CreateBatch(create_request(1), metadata=BOB)  # bob uses openai too
    for call in (
        stub.GetBatch(pb.GetBatchRequest(batch_id=alices.id), metadata=BOB),
        stub.CancelBatch(pb.CancelBatchRequest(batch_id=alices.id), metadata=BOB),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_configured_provider_is_asked_for_a_batch_made_elsewhere(sim: Sim, tmp_path: Path) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path / "a"), gateway_url=sim.url) as elsewhere,
        connect(elsewhere.port) as other,
    ):
        made = (await other.CreateBatch(create_request(1), metadata=ALICE)).batch
    settings = make_settings(sim.url, tmp_path / "b", providers="anthropic, openai")
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=made.id), metadata=ALICE)).batch
        assert got.id == made.id and got.provider == "openai"
        watched = stub.WatchBatch(pb.WatchBatchRequest(batch_id=made.id), metadata=ALICE)
        first = await watched.read()
        assert isinstance(first, pb.WatchBatchResponse) and first.event.batch.id == made.id
        watched.cancel()


async def test_results_from_past_the_last_one_are_out_of_range(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(3), metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    for attempt in ("first fetch", "from the cache"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _first(stub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id, start_index=4), metadata=ALICE))
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE, attempt
        found = details(caught.value)
        assert found.info is not None and found.info.metadata["results"] == "3", attempt
    at_the_end = stub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id, start_index=3), metadata=ALICE)
    assert [r async for chunk in at_the_end for r in chunk.results] == []  # all received: an empty end
    tail = [
        r.custom_id
        async for chunk in stub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id, start_index=2), metadata=ALICE)
        for r in chunk.results
    ]
    assert tail == ["req-2"]


async def test_watching_all_opens_at_once_and_never_shows_a_batch_finished_before_it_opened(
    stub: Stub, sim: Sim
) -> None:
    everything = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE, timeout=10)
    first = await everything.read()  # nothing live yet: a heartbeat at once, not 15 s of silence
    assert isinstance(first, pb.WatchBatchesResponse) and first.event.kind == watch_pb2.BATCH_EVENT_KIND_HEARTBEAT
    everything.cancel()
    done = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.force(done.id, "completed")
    await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=ALICE)  # the service knows it finished
    live = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    everything = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE, timeout=10)
    first = await everything.read()
    assert isinstance(first, pb.WatchBatchesResponse)
    assert first.event.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT and first.event.batch.id == live.id
    await stub.ListBatches(pb.ListBatchesRequest(), metadata=ALICE)  # shows the finished one again: not news
    await sim.force(live.id, "completed")
    change = await everything.read()
    assert isinstance(change, pb.WatchBatchesResponse)
    assert change.event.kind == watch_pb2.BATCH_EVENT_KIND_CHANGE and change.event.batch.id == live.id
    everything.cancel()
