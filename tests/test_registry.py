"""The registry and the results cache: provider-free lookups, local answers for terminal batches, and no data
served to a caller the gateway has not authorized (a matrix of two API keys and the master key)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.core import providers
from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, MASTER, Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
BOTH_API_ROOTS = True

Who = tuple[tuple[str, str], ...]


async def _completed(stub: Stub, sim: Sim, n: int = 3) -> batch_pb2.Batch:
    batch = (await stub.CreateBatch(create_request(n), metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    return batch


async def _results(stub: Stub, batch_id: str, who: Who = ALICE, start: int = 0, provider: str = "") -> list[str]:
    request = pb.StreamResultsRequest(batch_id=batch_id, provider=provider, start_index=start)
    out: list[str] = []
    async for chunk in stub.StreamResults(request, metadata=who):
        out.extend(f"{chunk.first_index + n}:{r.custom_id}" for n, r in enumerate(chunk.results))
    return out


async def test_provider_is_optional_for_a_batch_the_caller_was_shown(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(2), metadata=ALICE)).batch
    got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert got.id == batch.id and got.provider == "openai"
    await sim.force(batch.id, "completed")
    assert await _results(stub, batch.id) == ["0:req-0", "1:req-1"]
    other = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    cancelled = (await stub.CancelBatch(pb.CancelBatchRequest(batch_id=other.id), metadata=ALICE)).batch
    assert cancelled.status == batch_pb2.BATCH_STATUS_CANCELLING


async def test_a_listed_batch_is_known_too(stub: Stub, sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path / "other")
    async with BatchServer(settings, gateway_url=sim.url) as other, connect(other.port) as other_stub:
        batch = (await other_stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.fault(op="models", status=404, detail="Not Found", times=1)  # no gateway providers to look among
    with pytest.raises(grpc.aio.AioRpcError):  # this server has never seen it
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
    await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch.id == batch.id


async def test_a_batch_made_elsewhere_is_found_among_the_gateways_providers(
    stub: Stub, sim: Sim, tmp_path: Path
) -> None:
    settings = make_settings(sim.url, tmp_path / "other")
    async with BatchServer(settings, gateway_url=sim.url) as other, connect(other.port) as other_stub:
        batch = (await other_stub.CreateBatch(create_request(1, model="mistral:mistral-small"), metadata=ALICE)).batch
    found = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert (found.id, found.provider) == (batch.id, "mistral")


async def test_an_unknown_batch_without_provider_is_looked_for_at_the_gateways_providers(stub: Stub, sim: Sim) -> None:
    """A caller with no batch here and no providers configured: the gateway's model list names the providers to ask
    (read once; groq, which has no batches, is passed over)."""
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_unknown"), metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        found = details(caught.value)
        assert found.info is not None and found.info.reason == "BATCH_NOT_FOUND"
        assert found.info.metadata["providers"] == "openai,anthropic,mistral"
    assert await sim.requests_seen("models") == 1


async def test_concurrent_lookups_read_the_gateways_providers_once(stub: Stub, sim: Sim) -> None:
    lookups = [stub.GetBatch(pb.GetBatchRequest(batch_id=f"batch_unknown{i}"), metadata=ALICE) for i in range(5)]
    answers = await asyncio.gather(*lookups, return_exceptions=True)
    assert all(isinstance(a, grpc.aio.AioRpcError) and a.code() == grpc.StatusCode.NOT_FOUND for a in answers)
    assert await sim.requests_seen("models") == 1


async def test_a_gateway_without_a_model_list_leaves_the_provider_to_name(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="models", status=404, detail="Not Found", times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_unknown"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["provider"]
    assert await sim.requests_seen("get") == 0


async def test_the_gateways_providers_asked_are_capped(stub: Stub, sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "DISCOVERED_ASKED", 2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_unknown"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(caught.value).info.metadata["providers"] == "openai,anthropic"  # type: ignore[union-attr]


async def test_the_provider_lookup_does_not_reveal_another_callers_batch(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    answers = []
    for batch_id in (batch.id, "batch_madeup0000000000000000"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=BOB)
        found = details(caught.value)
        assert found.info is not None
        message = (caught.value.details() or "").replace(batch_id, "<id>")
        answers.append((caught.value.code(), found.info.reason, message, found.info.metadata["providers"]))
    # The same answer as for a batch nobody has: nothing says the id exists.
    assert answers[0] == answers[1]
    assert answers[0][:2] == (grpc.StatusCode.NOT_FOUND, "BATCH_NOT_FOUND")


async def test_a_terminal_batch_is_served_from_the_registry(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    running = await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
    again = await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
    assert (running.batch, await sim.requests_seen("get")) == (again.batch, 2)  # not terminal: always asked
    await sim.force(batch.id, "completed")
    done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert done.status == batch_pb2.BATCH_STATUS_COMPLETED
    gets = await sim.requests_seen("get")
    for _ in range(3):
        assert (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch == done
    assert await sim.requests_seen("get") == gets
    # A cancel of it is settled locally too.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await sim.requests_seen("cancel") == 0


async def test_results_are_fetched_once_then_streamed_from_the_cache(stub: Stub, sim: Sim, server: BatchServer) -> None:
    results = server.service.results
    results.policy = dataclasses.replace(results.policy, chunk_bytes=16_384)  # many chunks
    batch = await _completed(stub, sim, 1200)  # more than one page of the store
    first = await _results(stub, batch.id)
    assert await server.store.result_set(batch.id) == 1200
    second = await _results(stub, batch.id)
    assert second == first and len(first) == 1200
    assert await sim.requests_seen("results") == 1
    chunks = [c async for c in stub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id), metadata=ALICE)]
    assert len(chunks) > 1 and all(c.total_count == 1200 for c in chunks)  # chunked, each saying the total
    cached = [r for c in chunks for r in c.results]
    assert cached[7].completion.choices[0].message.content == "Echo: question 7"


@pytest.mark.parametrize("cached", [False, True])
async def test_a_broken_stream_resumes_at_start_index(stub: Stub, sim: Sim, cached: bool) -> None:
    batch = await _completed(stub, sim, 5)
    if cached:
        await _results(stub, batch.id)
    assert await _results(stub, batch.id, start=3) == ["3:req-3", "4:req-4"]
    assert await _results(stub, batch.id, start=5) == []  # at the end: every result was received
    with pytest.raises(grpc.aio.AioRpcError) as past:
        await _results(stub, batch.id, start=9)
    assert past.value.code() == grpc.StatusCode.OUT_OF_RANGE
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _results(stub, batch.id, start=-1)
    assert details(caught.value).fields == ["start_index"]


@pytest.mark.parametrize("operation", ["get", "cancel", "results"])
async def test_no_cross_caller_leak(stub: Stub, sim: Sim, operation: str) -> None:
    """Alice's terminal batch, its snapshot and results cached: Bob gets the gateway's NOT_FOUND, never data."""
    batch = await _completed(stub, sim, 2)
    await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
    assert len(await _results(stub, batch.id)) == 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if operation == "get":
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB)
        elif operation == "cancel":
            await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB)
        else:
            await _results(stub, batch.id, BOB, provider="openai")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_no_cross_caller_leak_in_lists(stub: Stub, sim: Sim) -> None:
    batch = await _completed(stub, sim, 2)
    await _results(stub, batch.id)
    listed = await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=BOB)
    assert list(listed.batches) == []
    mine = await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert [b.id for b in mine.batches] == [batch.id]


async def test_another_authorized_caller_is_checked_upstream_then_served(stub: Stub, sim: Sim) -> None:
    batch = await _completed(stub, sim, 2)
    mine = await _results(stub, batch.id)
    gets = await sim.requests_seen("get")
    assert await _results(stub, batch.id, MASTER, provider="openai") == mine
    assert await sim.requests_seen("get") == gets + 1  # the master key was authorized by the gateway first
    assert await sim.requests_seen("results") == 1  # and then served from the cache


async def test_trust_expires_so_a_revoked_key_loses_access(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=0)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _completed(stub, sim, 2)
        await _results(stub, batch.id)
        gets = await sim.requests_seen("get")
        await _results(stub, batch.id)
        assert await sim.requests_seen("get") == gets + 1  # re-checked upstream, not trusted
        await sim.set_key_active("key-alice", False)  # revoked at the gateway
        for call in (_results(stub, batch.id), stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_cache_keeps_to_its_byte_budget_oldest_first(sim: Sim, tmp_path: Path) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        old = await _completed(stub, sim, 400)
        new = await _completed(stub, sim, 400)
        await _results(stub, old.id)
        assert await server.store.result_set(old.id) == 400
        one_set = await server.store.results_bytes()
        results = server.service.results
        results.policy = dataclasses.replace(results.policy, max_bytes=one_set * 3 // 2)  # room for one set
        await _results(stub, new.id)
        assert await server.store.result_set(old.id) is None
        assert await server.store.result_set(new.id) == 400
        assert await server.store.results_bytes() <= one_set * 3 // 2
        assert len(await _results(stub, old.id)) == 400  # evicted: fetched through the gateway again
        assert await sim.requests_seen("results") == 3


async def test_the_database_holds_no_credential(stub: Stub, sim: Sim, server: BatchServer) -> None:
    await _completed(stub, sim, 1)
    await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    path = server.settings.state_db
    with sqlite3.connect(path) as db:
        owners = {row[0] for row in db.execute("SELECT owner FROM access")}
    assert len(owners) == 1 and len(next(iter(owners))) == 64  # an HMAC-SHA256, hex
    for file in path.parent.glob(path.name + "*"):
        if not file.name.endswith(".secret"):
            assert b"sim-key-alice" not in file.read_bytes()
