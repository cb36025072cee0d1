"""Batches larger than one upstream batch, through real channels against the simulator: split into parts (here of
PART_MAX_REQUESTS 10), one id of the service's own, read, watched, listed, cancelled and streamed as one batch."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.util.stamps import PART_KEY
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, FAST, Sim, body, connect, create_request, details, make_settings
from tests.test_replicas import replica_process

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

S = batch_pb2
PARTS = {"part_max_requests": 10, **FAST}


@pytest.fixture
async def parted(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    async with BatchServer(make_settings(sim.url, tmp_path, **PARTS), gateway_url=sim.url) as running:
        yield running


@pytest.fixture
async def stub(parted: BatchServer) -> AsyncIterator[Stub]:
    async with connect(parted.port) as made:
        yield made


async def _results(stub: Stub, batch_id: str, start: int = 0, who: Any = ALICE) -> list[Any]:
    out: list[Any] = []
    async for response in stub.StreamResults(
        pb.StreamResultsRequest(batch_id=batch_id, start_index=start), metadata=who
    ):
        out.extend(response.results)
    return out


async def _finish(sim: Sim, batch: batch_pb2.Batch, status: str = "completed") -> None:
    for part in batch.parts:
        await sim.force(part.id, status)


async def test_a_batchs_parts_are_encoded_one_at_a_time(
    sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts made at once (PART_CREATES_AT_ONCE, 4) are still encoded one at a time, each sent as soon as it is
    ready: the first reaches the gateway without waiting for the others' megabytes. (The encoder, watched: each
    call held a moment, on its thread, so that calls at once would overlap.)"""
    encoding, most = 0, 0
    watch = threading.Lock()
    encode = convert.create_body

    def watched(*args: Any, **kwargs: Any) -> bytes:
        nonlocal encoding, most
        with watch:
            encoding += 1
            most = max(most, encoding)
        try:
            time.sleep(0.05)
            return encode(*args, **kwargs)
        finally:
            with watch:
                encoding -= 1

    monkeypatch.setattr(convert, "create_body", watched)
    settings = make_settings(sim.url, tmp_path, part_max_requests=600, **FAST)  # (past 500: encoded on a thread)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as made:
        batch = (await made.CreateBatch(create_request(2400), metadata=ALICE)).batch
    assert len(batch.parts) == 4 and most == 1


async def test_a_batch_larger_than_a_part_is_one_batch_made_of_parts(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(25, metadata={"team": "a"}), metadata=ALICE)).batch
    assert batch.id.startswith("obatch_") and batch.provider == "openai"
    assert batch.status == S.BATCH_STATUS_VALIDATING and batch.request_counts.total == 25
    assert dict(batch.metadata) == {"team": "a"}
    assert [(p.first_request, p.request_count) for p in batch.parts] == [(0, 10), (10, 10), (20, 5)]
    upstream = [sim.state.batches[p.id] for p in batch.parts]
    assert [len(b.requests) for b in upstream] == [10, 10, 5]
    assert [b.requests[0]["custom_id"] for b in upstream] == ["req-0", "req-10", "req-20"]
    assert [b.metadata[PART_KEY] for b in upstream] == [f"{batch.id}/{i}" for i in range(3)]
    assert len(sim.state.batches) == 3  # and nothing else was made

    await sim.force(batch.parts[0].id, "completed")
    now = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert now.status != S.BATCH_STATUS_COMPLETED and now.parts[0].status == S.BATCH_STATUS_COMPLETED
    await _finish(sim, batch)
    done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert done.status == S.BATCH_STATUS_COMPLETED
    assert (done.request_counts.total, done.request_counts.completed) == (25, 25)
    assert done.usage.total_tokens > 0 and done.HasField("completed_at")

    results = await _results(stub, batch.id)
    assert [r.custom_id for r in results] == [f"req-{i}" for i in range(25)]
    assert all(r.HasField("completion") for r in results)
    assert [r.custom_id for r in await _results(stub, batch.id, start=13)] == [f"req-{i}" for i in range(13, 25)]
    assert await _results(stub, batch.id, start=25) == []


async def test_a_batch_that_fits_one_part_keeps_the_gateways_id(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(10), metadata=ALICE)).batch
    assert batch.id in sim.state.batches and not batch.parts
    assert PART_KEY not in sim.state.batches[batch.id].metadata


async def test_its_parts_are_not_the_callers_batches_and_no_one_else_sees_it(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(15), metadata=ALICE)).batch
    listed = (await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)).batches
    assert [b.id for b in listed] == [batch.id]
    assert [b.id for b in (await stub.ListBatches(pb.ListBatchesRequest(), metadata=ALICE)).batches] == [batch.id]
    for call in (
        stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=BOB),
        stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB),
        stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="anthropic"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert all(b.cancel_at is None for b in sim.state.batches.values())  # Bob cancelled nothing


async def test_a_parts_own_id_is_its_batchs_and_is_never_listed_as_the_callers(stub: Stub, sim: Sim) -> None:
    """The caller sees the parts' ids (`parts`): read, watched or cancelled by one, it names the batch it is a
    part of, is not registered as a batch of the caller's own (so no listing shows it), and is not cancelled."""
    batch = (await stub.CreateBatch(create_request(15), metadata=ALICE)).batch
    part = batch.parts[1]
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: stub.GetBatch(pb.GetBatchRequest(batch_id=part.id, provider="openai"), metadata=ALICE),
        "cancel": lambda: stub.CancelBatch(pb.CancelBatchRequest(batch_id=part.id, provider="openai"), metadata=ALICE),
        "results": lambda: stub.StreamResults(
            pb.StreamResultsRequest(batch_id=part.id, provider="openai"), metadata=ALICE
        ).read(),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, name
        info = details(caught.value).info
        assert info is not None and info.reason == "BATCH_IS_A_PART", name
        assert (info.metadata["part_of"], info.metadata["part"]) == (batch.id, "1"), name
    assert all(b.cancel_at is None for b in sim.state.batches.values())
    listed = (await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)).batches
    assert [b.id for b in listed] == [batch.id]
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # another caller: the gateway shows it nothing
        await stub.GetBatch(pb.GetBatchRequest(batch_id=part.id, provider="openai"), metadata=BOB)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_part_is_cancelled_by_no_key_of_its_user_and_told_apart_only_to_whom_the_gateway_shows_it(
    stub: Stub, sim: Sim
) -> None:
    """Another key of the same user (the gateway shows them its batches): told the part is one, nothing cancelled.
    Another user: NOT_FOUND, as for any batch not theirs (no word of the batch it is a part of)."""
    batch = (await stub.CreateBatch(create_request(15), metadata=ALICE)).batch
    _, key = await sim.new_key("alice")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelBatch(
            pb.CancelBatchRequest(batch_id=batch.parts[0].id, provider="openai"),
            metadata=(("authorization", f"Bearer {key}"),),
        )
    info = details(caught.value).info
    assert info is not None and (info.reason, info.metadata["part_of"]) == ("BATCH_IS_A_PART", batch.id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.parts[0].id, provider="openai"), metadata=BOB)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and batch.id not in (caught.value.details() or "")
    assert all(b.cancel_at is None for b in sim.state.batches.values())


async def test_a_cancelled_batch_serves_its_finished_parts_and_an_error_for_the_rest(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(25), metadata=ALICE)).batch
    await sim.force(batch.parts[0].id, "completed")
    cancelled = (await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert cancelled.status in (S.BATCH_STATUS_CANCELLING, S.BATCH_STATUS_CANCELLED)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # not before it ended
        await _results(stub, batch.id)
    assert details(caught.value).info.reason == "BATCH_NOT_COMPLETED"  # type: ignore[union-attr]
    for part in batch.parts[1:]:
        await sim.force(part.id, "cancelled")
    ended = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert ended.status == S.BATCH_STATUS_CANCELLED and ended.request_counts.completed == 10
    results = await _results(stub, batch.id)
    assert [r.custom_id for r in results] == [f"req-{i}" for i in range(25)]
    assert all(r.HasField("completion") for r in results[:10])
    assert {r.error.code for r in results[10:]} == {"batch_cancelled"}
    assert batch.parts[1].id in results[10].error.message
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_request_missing_from_its_parts_results_gets_an_error_that_says_why(stub: Stub, sim: Sim) -> None:
    request = create_request(12)
    lost = body("lost", simulate={"fail": {"code": "server_error", "message": "boom"}, "error_file_only": True})
    request.requests[11].body.CopyFrom(lost)
    batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    await _finish(sim, batch)
    results = await _results(stub, batch.id)
    assert [r.custom_id for r in results] == [f"req-{i}" for i in range(12)]
    assert results[11].error.code == "result_missing" and batch.parts[1].id in results[11].error.message


async def test_a_watch_follows_the_whole_with_one_event_per_change(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(25), metadata=ALICE)).batch
    call: Any = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
    first = (await call.read()).event
    assert first.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT and first.batch.id == batch.id
    await _finish(sim, batch)
    events = []
    while (response := await call.read()) is not grpc.aio.EOF:
        events.append(response.event)
    assert events and events[-1].batch.status == S.BATCH_STATUS_COMPLETED
    assert all(e.batch.id == batch.id for e in events)
    statuses = [e.batch.status for e in events if e.kind == watch_pb2.BATCH_EVENT_KIND_CHANGE]
    assert len(statuses) == len(set(statuses)) or len(events) <= 4  # one per change of the whole, none per part


async def test_the_same_request_id_makes_one_batch_of_parts(stub: Stub, sim: Sim) -> None:
    request = create_request(25, request_id=str(uuid.uuid4()))
    first, again = await asyncio.gather(
        stub.CreateBatch(request, metadata=ALICE), stub.CreateBatch(request, metadata=ALICE)
    )
    assert first.batch.id == again.batch.id and len(sim.state.batches) == 3
    assert (await stub.CreateBatch(request, metadata=ALICE)).batch.id == first.batch.id
    other = create_request(26, request_id=request.request_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(other, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.batch.request_id == request.request_id


async def test_a_part_refused_cancels_the_parts_made_and_keeps_nothing(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, part_creates_at_once=1, **PARTS)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        await sim.fault(op="create", status=400, detail="the provider refuses this one", skip=1, times=1)
        request = create_request(25, request_id=str(uuid.uuid4()))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateBatch(request, metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the provider refuses this one" in (caught.value.details() or "")
        (made,) = sim.state.batches.values()
        assert made.forced == "cancelled" or made.cancel_at is not None  # the one part made was cancelled
        listed = (await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)).batches
        assert listed == []
        again = (await stub.CreateBatch(request, metadata=ALICE)).batch  # a retry starts over
        assert len(again.parts) == 3 and again.parts[0].id != made.id


async def test_a_request_too_large_for_any_part_is_invalid(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, part_max_bytes=2048, **PARTS)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        request = create_request(3)
        request.requests[2].body.CopyFrom(body("x" * 4000))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateBatch(request, metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(caught.value).fields[0] == "requests[2]"
    assert not sim.state.batches


@pytest.mark.subprocess
@pytest.mark.slow
async def test_a_replica_killed_mid_split_leaves_every_part_made_once_by_the_retry_elsewhere(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    """kill -9 after the first part is made and while the second is at the gateway (which still makes it). A retry
    on another replica, which would split otherwise (PART_MAX_REQUESTS 20), waits out the dead attempt's claim,
    then goes on with the recorded plan: the second part is found by its stamp, the rest made, none twice."""
    survivor_settings = make_settings(sim.url, tmp_path / "survivor", state_db=postgres_url, part_max_requests=20)
    async with contextlib.AsyncExitStack() as stack:
        survivor = await stack.enter_async_context(BatchServer(survivor_settings, gateway_url=sim.url))
        stub = await stack.enter_async_context(connect(survivor.port))
        older = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch  # the search stops past it
        sim.state.batches[older.id].created_at -= 3600
        process, port = await stack.enter_async_context(
            replica_process(
                sim,
                tmp_path / "doomed",
                postgres_url,
                UPSTREAM_TIMEOUT="2",
                PART_MAX_REQUESTS="10",
                PART_CREATES_AT_ONCE="1",
            )
        )
        doomed = await stack.enter_async_context(connect(port))
        await sim.pace(1.0)  # each create takes a second, whether its client is still there or not
        request = create_request(35, request_id=str(uuid.uuid4()))
        attempt = asyncio.ensure_future(doomed.CreateBatch(request, metadata=ALICE))
        await asyncio.sleep(1.5)  # the first part made, the second at the gateway
        process.kill()
        await process.wait()
        with pytest.raises(grpc.aio.AioRpcError):
            await attempt
        await asyncio.sleep(1.0)  # the second part landed
        await sim.pace(0.0)
        batch = (await stub.CreateBatch(request, metadata=ALICE, timeout=60)).batch
        assert [(p.first_request, p.request_count) for p in batch.parts] == [(0, 10), (10, 10), (20, 10), (30, 5)]
        made = [b for b in sim.state.batches.values() if b.id != older.id]
        assert sorted(b.metadata[PART_KEY] for b in made) == sorted(f"{batch.id}/{i}" for i in range(4))
        assert {p.id for p in batch.parts} == {b.id for b in made}
        assert await sim.requests_seen("create") == 5  # the older batch, then each part once: the second found
        await _finish(sim, batch)
        results = await _results(stub, batch.id)
        assert [r.custom_id for r in results] == [f"req-{i}" for i in range(35)]


async def test_results_larger_than_the_cache_are_streamed_whole_and_not_kept(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, results_cache_max_bytes=2000, **PARTS)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(25), metadata=ALICE)).batch
        await _finish(sim, batch)
        for _ in range(2):
            assert [r.custom_id for r in await _results(stub, batch.id)] == [f"req-{i}" for i in range(25)]
        assert await server.store.result_set(batch.id) is None  # past the cache: read from the gateway each time
        assert await sim.requests_seen("results") == 6


@pytest.mark.postgres
@pytest.mark.parametrize("first_splits", [True, False], ids=["split-then-not", "one-then-split"])
async def test_a_retry_on_a_replica_that_splits_otherwise_keeps_what_the_first_attempt_made(
    sim: Sim, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, first_splits: bool
) -> None:
    """The first attempt's reply is lost (the gateway made what it sent); the retry runs on a replica whose
    PART_MAX_REQUESTS would decide otherwise. It keeps the first attempt's decision: the recorded parts (the one
    in flight found by its stamp), or the one upstream batch it made. Nothing is made twice."""
    from otari_batch_grpc.server.domain import idempotency

    monkeypatch.setattr(idempotency, "ATTEMPT_GRACE_SECONDS", 0.5)  # (a dead attempt's claim ends sooner)
    splits, whole = make_settings(sim.url, tmp_path / "a", state_db=postgres_url, part_max_requests=10), None
    single = make_settings(sim.url, tmp_path / "b", state_db=postgres_url)
    first, second = (splits, single) if first_splits else (single, splits)
    request = create_request(15, request_id=str(uuid.uuid4()))
    async with BatchServer(first, gateway_url=sim.url) as server, connect(server.port) as stub:
        older = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch  # the search stops past it
        sim.state.batches[older.id].created_at -= 3600
        await sim.fault(op="create", drop_after_create=True, skip=1 if first_splits else 0, times=1)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.CreateBatch(request, metadata=ALICE, timeout=10)
    await asyncio.sleep(1.0)  # past the dead attempt's claim
    async with BatchServer(second, gateway_url=sim.url) as server, connect(server.port) as stub:
        whole = (await stub.CreateBatch(request, metadata=ALICE, timeout=30)).batch
    made = [b for b in sim.state.batches.values() if b.id != older.id]
    if first_splits:
        assert whole.id.startswith("obatch_") and len(whole.parts) == 2 and len(made) == 2
        assert sorted(b.metadata[PART_KEY] for b in made) == [f"{whole.id}/0", f"{whole.id}/1"]
    else:
        assert [b.id for b in made] == [whole.id] and not whole.parts  # the one batch the first attempt made


async def test_a_first_stream_resumed_late_reads_only_the_parts_it_needs(
    stub: Stub, sim: Sim, parted: BatchServer
) -> None:
    """Resumed at result 23 of 25 with nothing cached, the stream reads the third part alone (a million results
    resumed near their end need not come through the gateway again), and keeps nothing (a part of the set)."""
    batch = (await stub.CreateBatch(create_request(25), metadata=ALICE)).batch
    await _finish(sim, batch)
    tail = await _results(stub, batch.id, start=23)
    assert [r.custom_id for r in tail] == ["req-23", "req-24"]
    assert await sim.requests_seen("results") == 1 and await parted.store.result_set(batch.id) is None
    assert [r.custom_id for r in await _results(stub, batch.id, start=12)] == [f"req-{i}" for i in range(12, 25)]
    assert [r.custom_id for r in await _results(stub, batch.id)] == [f"req-{i}" for i in range(25)]
    assert await parted.store.result_set(batch.id) == 25  # the whole set, cached by the stream from 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _results(stub, batch.id, start=26)
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE


async def test_a_create_without_a_request_id_that_fails_halfway_undoes_what_it_made(sim: Sim, tmp_path: Path) -> None:
    """No retry can find it (no request_id): the part made is cancelled, and nothing of the batch is kept."""
    settings = make_settings(sim.url, tmp_path, part_creates_at_once=1, **PARTS)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        await sim.fault(op="create", status=500, detail="the gateway broke", skip=1)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.CreateBatch(create_request(25), metadata=ALICE)
        (made,) = sim.state.batches.values()
        assert made.cancel_at is not None or made.forced == "cancelled"
        assert (await server.store.counts())["wholes"] == 0
