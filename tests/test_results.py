"""StreamResults: every outcome in order, nothing the gateway sent lost, and clear answers when there are none."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import json_format

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.simulator.documents import results_document
from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, Sim, body, create_request, details, eventually

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
BOTH_API_ROOTS = True


async def _completed(stub: Stub, sim: Sim, request: pb.CreateBatchRequest) -> batch_pb2.Batch:
    batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    return batch


Results = grpc.aio.UnaryStreamCall[pb.StreamResultsRequest, pb.StreamResultsResponse]


def _stream(stub: Stub, batch_id: str, who: tuple[tuple[str, str], ...] = ALICE) -> Results:
    return stub.StreamResults(pb.StreamResultsRequest(batch_id=batch_id, provider="openai"), metadata=who)


async def test_results_stream_in_order_with_every_field(stub: Stub, sim: Sim) -> None:
    batch = await _completed(stub, sim, create_request(5))
    chunks = [chunk async for chunk in _stream(stub, batch.id)]
    assert [(c.first_index, c.total_count) for c in chunks] == [(0, 5)]  # small results: one chunk
    items = list(chunks[0].results)
    assert [i.custom_id for i in items] == [f"req-{n}" for n in range(5)]
    first = items[0]
    assert first.WhichOneof("outcome") == "completion"
    completion = first.completion
    assert completion.object == "chat.completion" and completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.content == "Echo: question 0"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.system_fingerprint == "fp_sim"
    # any-llm's extra fields have no typed home: those with a value are kept, the nulls are "not set".
    expected = results_document(sim.state.batches[batch.id])[0]["result"]
    assert not completion.HasField("extra")  # moderation and metadata: null
    assert set(json_format.MessageToDict(completion.choices[0].message.extra)) == {
        key
        for key, value in expected["choices"][0]["message"].items()
        if key not in ("role", "content", "refusal", "tool_calls", "annotations") and value is not None
    }
    assert expected["choices"][0]["message"]["annotations"] == []  # typed: none
    assert not completion.choices[0].message.annotations
    assert not completion.usage.HasField("extra")  # cache_creation_token_details: null


async def test_failed_items_carry_their_error(stub: Stub, sim: Sim) -> None:
    request = create_request(2)
    request.requests.append(
        pb.BatchRequestItem(
            custom_id="bad", body=body(simulate={"fail": {"code": "invalid_request", "message": "too long"}})
        )
    )
    batch = await _completed(stub, sim, request)
    items = [result async for chunk in _stream(stub, batch.id) for result in chunk.results]
    assert [i.WhichOneof("outcome") for i in items] == ["completion", "completion", "error"]
    assert items[2].custom_id == "bad"
    assert (items[2].error.code, items[2].error.message) == ("invalid_request", "too long")


async def test_completed_batch_whose_every_request_failed_is_not_an_empty_success(stub: Stub, sim: Sim) -> None:
    fail = {"fail": {"code": "x", "message": "y"}, "error_file_only": True}
    request = pb.CreateBatchRequest(
        model="openai:gpt-4o-mini",
        requests=[pb.BatchRequestItem(custom_id=f"r{i}", body=body(simulate=fail)) for i in range(3)],
    )
    batch = await _completed(stub, sim, request)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [item async for item in _stream(stub, batch.id)]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(caught.value).info
    assert info is not None and info.reason == "RESULTS_MISSING"
    assert info.metadata["status"] == "completed" and info.metadata["failed"] == "3"


@pytest.mark.parametrize(
    ("force", "reason", "status"),
    [
        (None, "BATCH_NOT_COMPLETED", "validating"),
        ("expired", "BATCH_HAS_NO_RESULTS", "expired"),
        ("cancelled", "BATCH_HAS_NO_RESULTS", "cancelled"),
        ("failed", "BATCH_HAS_NO_RESULTS", "failed"),
    ],
)
async def test_results_of_a_batch_that_is_not_completed(
    stub: Stub, sim: Sim, force: str | None, reason: str, status: str
) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    if force:
        await sim.force(batch.id, force)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [item async for item in _stream(stub, batch.id)]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(caught.value).info
    assert info is not None and info.reason == reason and info.metadata["status"] == status
    assert status in (caught.value.details() or "")


async def test_another_keys_results_are_not_found(stub: Stub, sim: Sim) -> None:
    batch = await _completed(stub, sim, create_request(1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [item async for item in _stream(stub, batch.id, BOB)]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_caller_leaving_mid_first_fetch_leaves_no_half_trusted_cache(
    stub: Stub, sim: Sim, server: BatchServer
) -> None:
    results = server.service.results
    results.policy = dataclasses.replace(results.policy, chunk_bytes=4096)  # many chunks: it stops mid-way
    batch = await _completed(stub, sim, create_request(3000))
    call = _stream(stub, batch.id)
    received = 0
    async for chunk in call:
        received += len(chunk.results)
        call.cancel()  # after the first chunk of the first fetch
        break
    assert 0 < received < 3000

    async def no_open_streams() -> bool:
        return len(server.service.streams) == 0

    await eventually(no_open_streams)
    assert await server.store.result_set(batch.id) is None  # what was written is not trusted
    # The server is healthy afterwards: the next call fetches again, whole, and that one is kept.
    again = [r.custom_id async for chunk in _stream(stub, batch.id) for r in chunk.results]
    assert again == [f"req-{n}" for n in range(3000)]
    assert await sim.requests_seen("results") == 2
    assert await server.store.result_set(batch.id) == 3000


async def test_a_deadline_during_a_slow_results_download_cancels_the_upstream_request(stub: Stub, sim: Sim) -> None:
    batch = await _completed(stub, sim, create_request(1))
    await sim.fault(op="results", delay=5.0, times=1)
    call = stub.StreamResults(
        pb.StreamResultsRequest(batch_id=batch.id, provider="openai"), metadata=ALICE, timeout=0.3
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [item async for item in call]
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    async def upstream_request_dropped() -> bool:
        return await sim.disconnects() == 1

    await eventually(upstream_request_dropped)
