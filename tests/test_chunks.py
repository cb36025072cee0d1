"""StreamResults chunks: boundaries, resume inside a chunk, a result larger than a chunk, a short stream that says
so, and the gateway's body read as it arrives (any layout of it)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, body, create_request

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
BOTH_API_ROOTS = True


def _small_chunks(server: BatchServer, chunk_bytes: int) -> None:
    results = server.service.results
    results.policy = dataclasses.replace(results.policy, chunk_bytes=chunk_bytes)


async def _chunks(stub: Stub, batch_id: str, start: int = 0) -> list[pb.StreamResultsResponse]:
    request = pb.StreamResultsRequest(batch_id=batch_id, start_index=start)
    return [chunk async for chunk in stub.StreamResults(request, metadata=ALICE)]


def _ids(chunks: list[pb.StreamResultsResponse]) -> list[str]:
    return [r.custom_id for c in chunks for r in c.results]


@pytest.mark.parametrize("start", [0, 1, 7, 8, 9, 19, 20])
async def test_chunks_are_contiguous_and_resume_anywhere_first_fetch_and_cached(
    stub: Stub, sim: Sim, server: BatchServer, start: int
) -> None:
    _small_chunks(server, 1000)  # a few results per chunk
    batch = (await stub.CreateBatch(create_request(20), metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    for _ in ("first fetch", "from the cache"):
        chunks = await _chunks(stub, batch.id, start)
        expected = [f"req-{n}" for n in range(start, 20)]
        assert _ids(chunks) == expected
        if len(expected) > 5:
            assert len(chunks) > 1  # chunked, not one message
        if expected:
            assert chunks[0].first_index == start
        position = start
        for chunk in chunks:  # each chunk starts where the one before ended
            assert chunk.first_index == position and chunk.total_count == 20
            position += len(chunk.results)
    assert await sim.requests_seen("results") == 1


async def test_a_result_larger_than_a_chunk_is_a_chunk_of_its_own(stub: Stub, sim: Sim, server: BatchServer) -> None:
    _small_chunks(server, 100)
    request = create_request(3)
    request.requests[1].body.CopyFrom(body("x" * 5000))
    batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    for _ in range(2):  # first fetch, then cached
        chunks = await _chunks(stub, batch.id)
        assert [len(c.results) for c in chunks] == [1, 1, 1]
        assert "x" * 5000 in chunks[1].results[0].completion.choices[0].message.content


async def test_a_stream_short_of_its_total_says_the_gateway_left_some_out(stub: Stub, sim: Sim) -> None:
    request = create_request(2)
    request.requests.append(
        pb.BatchRequestItem(
            custom_id="lost", body=body(simulate={"fail": {"code": "x", "message": "y"}, "error_file_only": True})
        )
    )
    batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    chunks = await _chunks(stub, batch.id)
    assert _ids(chunks) == ["req-0", "req-1"]
    assert {c.total_count for c in chunks} == {3}  # 2 of 3: the caller can see one is missing


async def test_a_body_of_another_layout_is_still_read(stub: Stub, sim: Sim) -> None:
    batch = (await stub.CreateBatch(create_request(3), metadata=ALICE)).batch
    await sim.force(batch.id, "completed")
    sim.state.results_prefix = {"object": "list"}
    chunks = await _chunks(stub, batch.id)
    assert _ids(chunks) == ["req-0", "req-1", "req-2"]
