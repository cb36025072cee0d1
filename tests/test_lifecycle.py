"""GetBatch, ListBatches and CancelBatch through a real channel against the simulator."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, Sim, create_request, details

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
BOTH_API_ROOTS = True


async def _create(stub: Stub, who: tuple[tuple[str, str], ...] = ALICE, n: int = 2) -> batch_pb2.Batch:
    return (await stub.CreateBatch(create_request(n), metadata=who)).batch


async def test_get_follows_the_batch_through_its_statuses(stub: Stub, sim: Sim) -> None:
    batch = await _create(stub, n=4)
    await sim.set_stage_seconds(0.2)
    seen: list[int] = []
    for _ in range(200):
        got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)).batch
        if not seen or seen[-1] != got.status:
            seen.append(got.status)
        if got.status == batch_pb2.BATCH_STATUS_COMPLETED:
            break
        await asyncio.sleep(0.02)
    assert seen[-1] == batch_pb2.BATCH_STATUS_COMPLETED
    assert set(seen) <= {
        batch_pb2.BATCH_STATUS_VALIDATING,
        batch_pb2.BATCH_STATUS_IN_PROGRESS,
        batch_pb2.BATCH_STATUS_FINALIZING,
        batch_pb2.BATCH_STATUS_COMPLETED,
    }
    assert seen == sorted(seen, key=[1, 3, 4, 5].index)
    assert got.request_counts.total == 4 and got.request_counts.completed == 4
    assert got.HasField("completed_at") and got.HasField("in_progress_at") and got.HasField("finalizing_at")
    assert got.output_file_id.startswith("file-out-")
    assert got.usage.total_tokens > 0


async def test_get_echoes_the_provider_as_sent(stub: Stub) -> None:
    batch = await _create(stub)
    got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="OpenAI"), metadata=ALICE)).batch
    assert got.provider == "OpenAI"


async def test_another_keys_batch_is_not_found(stub: Stub) -> None:
    batch = await _create(stub, ALICE)
    for call in (
        stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB),
        stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        info = details(caught.value).info
        assert info is not None and info.reason == "BATCH_NOT_FOUND" and info.metadata["batch_id"] == batch.id


async def test_a_typod_batch_id_is_not_found_not_retry_later(stub: Stub) -> None:
    # The gateway answers 502 for an unknown id as for a provider that is down; one more call settles which.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_nope", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    found = details(caught.value)
    assert found.info is not None and found.info.reason == "BATCH_NOT_FOUND"
    assert found.info.metadata["batch_id"] == "batch_nope" and found.retry is None


async def test_a_502_while_the_provider_is_down_stays_retryable(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="*", status=502, detail="LLM provider error")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_nope", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "does not know the batch id" in (caught.value.details() or "")
    found = details(caught.value)
    assert found.info is not None and found.info.reason == "PROVIDER_ERROR"
    assert found.retry is not None


@pytest.mark.parametrize(
    ("batch_id", "provider", "fields"),
    [
        ("", "openai", ["batch_id"]),
        ("", "", ["batch_id"]),
        ("a b", "x", ["batch_id"]),
    ],
)
async def test_get_and_cancel_need_batch_id_and_provider(
    stub: Stub, sim: Sim, batch_id: str, provider: str, fields: list[str]
) -> None:
    for call in (
        stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id, provider=provider), metadata=ALICE),
        stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch_id, provider=provider), metadata=ALICE),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(caught.value).fields == fields
    # Nothing asked of a provider (no provider named, none used: at most whether the key is right, once).
    assert await sim.requests_seen() == await sim.requests_seen("list") <= 1


async def test_cancel_goes_through_cancelling_to_cancelled(stub: Stub, sim: Sim) -> None:
    batch = await _create(stub)
    reply = await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)
    assert reply.batch.status == batch_pb2.BATCH_STATUS_CANCELLING
    assert reply.batch.HasField("cancelling_at")
    again = await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)
    assert again.batch.status == batch_pb2.BATCH_STATUS_CANCELLING
    await sim.set_stage_seconds(0)
    got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)).batch
    assert got.status == batch_pb2.BATCH_STATUS_CANCELLED and got.HasField("cancelled_at")


async def test_cancel_of_a_finished_batch_is_failed_precondition(stub: Stub, sim: Sim) -> None:
    batch = await _create(stub)
    await sim.force(batch.id, "completed")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(caught.value).info
    assert info is not None and info.reason == "BATCH_ALREADY_FINISHED" and info.metadata["status"] == "completed"


async def test_list_pages_through_the_callers_batches_only(stub: Stub) -> None:
    # Interleave two owners so the gateway's owner filter leaves its pages short: a short page is not the end.
    mine: list[str] = []
    for _ in range(7):
        mine.append((await _create(stub, ALICE, 1)).id)
        await _create(stub, BOB, 1)
        await _create(stub, BOB, 1)
    listed: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = await stub.ListBatches(
            pb.ListBatchesRequest(provider="openai", page_size=3, page_token=token), metadata=ALICE
        )
        pages += 1
        assert len(reply.batches) <= 3
        listed.extend(b.id for b in reply.batches)
        assert all(b.user == "alice" for b in reply.batches)
        token = reply.next_page_token
        if not token:
            break
        assert pages < 10
    assert listed == list(reversed(mine))  # newest first, every one, once
    assert pages >= 3


async def test_list_page_size_defaults_and_caps(stub: Stub, sim: Sim) -> None:
    for _ in range(3):
        await _create(stub, ALICE, 1)
    reply = await stub.ListBatches(pb.ListBatchesRequest(provider="openai", page_size=1000), metadata=ALICE)
    assert len(reply.batches) == 3 and reply.next_page_token == ""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai", page_size=-1), metadata=ALICE)
    assert details(caught.value).fields == ["page_size"]


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxfQ"])
async def test_list_rejects_a_token_it_did_not_issue(stub: Stub, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai", page_token=token), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["page_token"]


async def test_list_token_is_bound_to_its_provider(stub: Stub) -> None:
    for _ in range(2):
        await _create(stub, ALICE, 1)
    first = await stub.ListBatches(pb.ListBatchesRequest(provider="openai", page_size=1), metadata=ALICE)
    assert first.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(
            pb.ListBatchesRequest(provider="anthropic", page_token=first.next_page_token), metadata=ALICE
        )
    assert details(caught.value).fields == ["page_token"]
