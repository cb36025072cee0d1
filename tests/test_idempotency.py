"""Idempotent CreateBatch (AIP-155): one batch per (caller, request_id), whatever happens to the replies."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from tests.conftest import ALICE, BOB, MASTER, Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
BOTH_API_ROOTS = True


def _rid() -> str:
    return str(uuid.uuid4())


async def test_a_retry_returns_the_first_batch(stub: Stub, sim: Sim) -> None:
    request = create_request(2, request_id=_rid())
    first = (await stub.CreateBatch(request, metadata=ALICE)).batch
    second = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert second.id == first.id
    assert first.request_id == request.request_id
    assert len(sim.state.batches) == 1 and await sim.requests_seen("create") == 1


async def test_50_concurrent_identical_calls_make_one_batch(stub: Stub, sim: Sim) -> None:
    request = create_request(2, request_id=_rid())
    replies = await asyncio.gather(*(stub.CreateBatch(request, metadata=ALICE) for _ in range(50)))
    assert {r.batch.id for r in replies} == {next(iter(sim.state.batches))}
    assert await sim.requests_seen("create") == 1


async def test_the_same_request_id_of_another_caller_is_another_batch(stub: Stub, sim: Sim) -> None:
    rid = _rid()
    mine = (await stub.CreateBatch(create_request(1, request_id=rid), metadata=ALICE)).batch
    theirs = (await stub.CreateBatch(create_request(1, request_id=rid), metadata=BOB)).batch
    assert mine.id != theirs.id


async def test_a_different_request_under_a_used_request_id_is_already_exists(stub: Stub, sim: Sim) -> None:
    rid = _rid()
    first = (await stub.CreateBatch(create_request(1, request_id=rid), metadata=ALICE)).batch
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(2, request_id=rid), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = details(caught.value).info
    assert info is not None and info.reason == "REQUEST_ID_REUSED"
    assert info.metadata["request_id"] == rid and info.metadata["batch_id"] == first.id
    assert len(sim.state.batches) == 1


async def test_retry_after_a_restart_returns_the_first_batch(sim: Sim, tmp_path: Path) -> None:
    request = create_request(1, request_id=_rid())
    settings = make_settings(sim.url, tmp_path)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        first = (await stub.CreateBatch(request, metadata=ALICE)).batch
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        again = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert again.id == first.id and len(sim.state.batches) == 1


async def test_a_lost_reply_is_recovered_from_the_gateway_not_created_twice(stub: Stub, sim: Sim) -> None:
    # Make older batches of the same caller so the search has to look past them.
    for _ in range(3):
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    request = create_request(2, request_id=_rid())
    await sim.fault(op="create", drop_after_create=True, times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # the batch exists; the reply was lost
    assert len(sim.state.batches) == 4
    recovered = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert len(sim.state.batches) == 4  # exactly one batch for the request_id
    assert recovered.request_id == request.request_id
    assert recovered.id == sim.state.order[-1]
    assert await sim.requests_seen("list") >= 1
    # And from then on it is settled: no more searching.
    lists = await sim.requests_seen("list")
    assert (await stub.CreateBatch(request, metadata=ALICE)).batch.id == recovered.id
    assert await sim.requests_seen("list") == lists


async def test_recovery_never_takes_another_users_batch_with_the_same_request_id(stub: Stub, sim: Sim) -> None:
    rid = _rid()
    real_clock = sim.state.clock
    sim.state.clock = lambda: real_clock() - 3600  # alice's batch is an hour old: the search can end past it
    alices = (await stub.CreateBatch(create_request(1, request_id=rid), metadata=ALICE)).batch
    sim.state.clock = real_clock
    # The master key, for bob, same request_id: the gateway fails without creating, so the claim stays open.
    for_bob = create_request(1, request_id=rid, user="bob")
    await sim.fault(op="create", status=500, times=1)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.CreateBatch(for_bob, metadata=MASTER)
    # The retry searches the master key's listing, which holds alice's batch stamped with the same request_id.
    bobs = (await stub.CreateBatch(for_bob, metadata=MASTER)).batch
    assert bobs.id != alices.id
    assert bobs.user == "bob" and bobs.request_id == rid
    assert await sim.requests_seen("list") >= 1 and len(sim.state.batches) == 2


async def test_a_refused_create_can_be_retried_under_the_same_request_id(stub: Stub, sim: Sim) -> None:
    request = create_request(1, request_id=_rid())
    await sim.fault(op="create", status=400, detail="Unknown or unsupported model", times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    created = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert created.id in sim.state.batches and await sim.requests_seen("list") == 0


@pytest.mark.parametrize("rid", ["not-a-uuid", "1234", "83c70c20-011e-4819-8c19-102fe48ef75"])
async def test_a_malformed_request_id_is_invalid_argument(stub: Stub, sim: Sim, rid: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, request_id=rid), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["request_id"]
    assert await sim.requests_seen() == 0


async def test_the_request_id_stamp_takes_one_metadata_pair(stub: Stub, sim: Sim) -> None:
    fifteen = {f"k{i}": "v" for i in range(15)}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, request_id=_rid(), metadata=fifteen), metadata=ALICE)
    assert details(caught.value).fields == ["metadata"]
    assert "14" in (caught.value.details() or "")
    fourteen = {f"k{i}": "v" for i in range(14)}
    rid = _rid()
    reply = await stub.CreateBatch(create_request(1, request_id=rid, metadata=fourteen), metadata=ALICE)
    assert dict(reply.batch.metadata) == fourteen and reply.batch.request_id == rid
    upstream = sim.state.batches[reply.batch.id].metadata
    stamped_id, digest = upstream["otari_request_id"].split("/")  # one stamp: the request_id and the request's digest
    assert len(upstream) == 16 and stamped_id == rid and len(digest) == 32
    for reserved in ("otari_request_id", "otari_request_digest"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateBatch(create_request(1, metadata={reserved: "x"}), metadata=ALICE)
        assert details(caught.value).fields == [f"metadata[{reserved}]"]


async def test_a_create_the_gateway_timed_out_is_made_by_the_retry_once_the_listing_shows_it_is_not_there(
    stub: Stub, server: BatchServer, sim: Sim
) -> None:
    """A 504 from the gateway leaves the outcome open: the retry searches the caller's listing, and a batch this
    service saw before the first attempt proves that attempt made nothing (the listing is newest first), so the
    retry creates, at once, not after the claim's time (the soak's CREATE_OUTCOME_UNKNOWN for minutes, #24)."""
    older = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    with sqlite3.connect(server.settings.state_db) as db:  # seen a minute ago (the gateway dates it just now)
        db.execute("UPDATE batches SET first_seen = first_seen - 60 WHERE id = ?", (older.id,))
    request = create_request(1, request_id=_rid())
    await sim.fault(op="create", status=504, times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # the gateway's own timeout, said as such
    made = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert made.request_id == request.request_id and len(sim.state.batches) == 2
    assert await sim.requests_seen("list") >= 1  # it looked before it made it
