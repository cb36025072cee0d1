"""UploadBatch, through real channels against the simulator: a header, then chunks of requests, spooled until the
stream ends; then the same create as CreateBatch (PART_MAX_REQUESTS 10 here)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.parts.requests import InMessage, Spool
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, FAST, Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub


@pytest.fixture
async def stub(sim: Sim, tmp_path: Path) -> AsyncIterator[Stub]:
    settings = make_settings(sim.url, tmp_path, part_max_requests=10, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as made:
        yield made


def _header(request: pb.CreateBatchRequest) -> pb.UploadBatchRequest:
    header = pb.CreateBatchRequest()
    header.CopyFrom(request)
    header.ClearField("requests")
    return pb.UploadBatchRequest(header=header)


async def _messages(request: pb.CreateBatchRequest, chunk: int) -> AsyncIterator[pb.UploadBatchRequest]:
    yield _header(request)
    items: Sequence[pb.BatchRequestItem] = request.requests
    for start in range(0, len(items), chunk):
        yield pb.UploadBatchRequest(chunk=pb.RequestChunk(requests=items[start : start + chunk]))


async def _refused(stub: Stub, messages: AsyncIterator[pb.UploadBatchRequest]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UploadBatch(messages, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


async def test_an_upload_in_chunks_is_the_same_create_as_one_message(stub: Stub, sim: Sim) -> None:
    request = create_request(25, request_id=str(uuid.uuid4()), metadata={"via": "upload"})
    uploaded = (await stub.UploadBatch(_messages(request, 7), metadata=ALICE)).batch
    assert uploaded.id.startswith("obatch_") and len(uploaded.parts) == 3
    assert dict(uploaded.metadata) == {"via": "upload"} and uploaded.request_counts.total == 25
    again = (await stub.UploadBatch(_messages(request, 4), metadata=ALICE)).batch  # chunked otherwise: a retry
    assert again.id == uploaded.id
    assert (await stub.CreateBatch(request, metadata=ALICE)).batch.id == uploaded.id  # and in one message
    assert len(sim.state.batches) == 3
    custom_ids = [r["custom_id"] for b in sim.state.batches.values() for r in b.requests]
    assert sorted(custom_ids) == sorted(f"req-{i}" for i in range(25))


async def test_an_upload_that_fits_one_part_is_the_gateways_batch(stub: Stub, sim: Sim) -> None:
    request = create_request(5)
    batch = (await stub.UploadBatch(_messages(request, 2), metadata=ALICE)).batch
    assert batch.id in sim.state.batches and not batch.parts
    assert [r["custom_id"] for r in sim.state.batches[batch.id].requests] == [f"req-{i}" for i in range(5)]


async def test_an_upload_broken_off_creates_nothing(stub: Stub, sim: Sim) -> None:
    request = create_request(25)
    sent = asyncio.Event()

    async def until_broken() -> AsyncIterator[pb.UploadBatchRequest]:
        async for message in _messages(request, 10):
            yield message
            if message.HasField("chunk"):
                sent.set()
        await asyncio.Event().wait()  # the last chunk never comes

    call: Any = stub.UploadBatch(until_broken(), metadata=ALICE)
    await sent.wait()
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.2)
    assert not sim.state.batches and await sim.requests_seen("create") == 0


async def test_a_bad_chunk_is_named_by_its_place_in_the_batch_and_nothing_is_made(stub: Stub, sim: Sim) -> None:
    request = create_request(12)
    request.requests[9].custom_id = "req-2"  # in the second chunk, a custom_id the first used
    error = await _refused(stub, _messages(request, 5))
    assert details(error).fields == ["requests[9].custom_id"]
    assert "already used by requests[2]" in (error.details() or "")

    async def no_header() -> AsyncIterator[pb.UploadBatchRequest]:
        yield pb.UploadBatchRequest(chunk=pb.RequestChunk(requests=request.requests[:2]))

    assert details(await _refused(stub, no_header())).fields == ["header"]

    async def header_with_requests() -> AsyncIterator[pb.UploadBatchRequest]:
        yield pb.UploadBatchRequest(header=create_request(1, model="nope"))

    assert details(await _refused(stub, header_with_requests())).fields == ["header.model", "header.requests"]

    async def header_only() -> AsyncIterator[pb.UploadBatchRequest]:
        yield _header(request)

    assert details(await _refused(stub, header_only())).fields == ["chunk"]
    assert not sim.state.batches


async def test_a_chunk_from_a_client_on_an_older_contract_is_invalid_argument(stub: Stub, sim: Sim) -> None:
    """RequestChunk.requests was field 1: a chunk so numbered is refused, saying why, and nothing is made."""
    request = create_request(3)
    item = request.requests[0].SerializeToString()
    old = pb.RequestChunk.FromString(b"\x0a" + bytes([len(item)]) + item)  # field 1: a field it no longer has

    async def messages() -> AsyncIterator[pb.UploadBatchRequest]:
        yield _header(request)
        yield pb.UploadBatchRequest(chunk=old)

    error = await _refused(stub, messages())
    assert details(error).fields == ["chunk"] and "regenerate the stubs" in (error.details() or "")
    assert not sim.state.batches


def _json_request(n: int) -> pb.CreateBatchRequest:
    text = '{"messages": [{"role": "user", "content": "hi"}]}'
    items = [pb.BatchRequestItem(custom_id=f"req-{i}", body_json=text) for i in range(n)]
    return pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=items)


@pytest.mark.parametrize(
    ("index", "change", "field", "says"),
    [
        (3, {"custom_id": "req-1"}, "requests[3].custom_id", "already used by requests[1]"),  # in its own chunk
        (9, {"custom_id": "req-2"}, "requests[9].custom_id", "already used by requests[2]"),  # an earlier chunk's
        (8, {"custom_id": ""}, "requests[8].custom_id", "is required"),
        (7, {"custom_id": "c" * 513}, "requests[7].custom_id", "at most 512 characters"),
        (11, {"body_json": "[1]"}, "requests[11].body_json", "must be a JSON object"),
        (6, {"body_json": "{}"}, "requests[6].body_json", "not an empty object"),
    ],
)
async def test_a_bad_request_among_json_bodies_is_named_as_one_alone_would_be(
    stub: Stub, sim: Sim, index: int, change: dict[str, str], field: str, says: str
) -> None:
    """Each mistake among body_json requests is named by its place in the batch, after good chunks as within the
    first."""
    request = _json_request(12)
    for name, value in change.items():
        setattr(request.requests[index], name, value)
    error = await _refused(stub, _messages(request, 5))
    assert details(error).fields == [field] and says in (error.details() or "")
    assert not sim.state.batches


async def test_parts_read_at_once_from_a_spool_get_their_own_requests() -> None:
    """Parts are read from threads at once: each read stands alone (no shared file position)."""
    spool = Spool(pb.CreateBatchRequest(model="openai:gpt-4o-mini"))
    try:
        items = [pb.BatchRequestItem(custom_id=f"r{i}", body_json=f'{{"n": {i}}}') for i in range(20_000)]
        for start in range(0, len(items), 700):
            await spool.add(pb.RequestChunk(requests=items[start : start + 700]))
        for _ in range(5):
            parts = await asyncio.gather(*(spool.read(i * 5000, (i + 1) * 5000) for i in range(4)))
            for i, part in enumerate(parts):
                assert [item.custom_id for item in part] == [f"r{j}" for j in range(i * 5000, (i + 1) * 5000)]
        assert spool.custom_ids(4999, 5001) == ["r4999", "r5000"]
    finally:
        spool.close()


async def test_a_spool_write_that_fails_is_raised_by_the_next_step() -> None:
    """A chunk is written while the next arrives: a write that fails (here: to a spool already closed) is raised
    by the next add or flush, never lost."""
    spool = Spool(pb.CreateBatchRequest(model="openai:gpt-4o-mini"))
    spool.close()
    await spool.add(pb.RequestChunk(requests=_json_request(3).requests))
    with pytest.raises(ValueError, match="closed file"):
        await spool.flush()
    with pytest.raises(ValueError, match="closed file"):
        await spool.add(pb.RequestChunk(requests=_json_request(3).requests))


async def test_a_flush_whose_caller_is_cancelled_leaves_the_write_to_finish() -> None:
    """The write a cancelled flush waited for runs to its end, for the next flush and the reads after it."""
    spool = Spool(pb.CreateBatchRequest(model="openai:gpt-4o-mini"))
    try:
        await spool.add(pb.RequestChunk(requests=_json_request(3).requests))
        waiting = asyncio.create_task(spool.flush())
        await asyncio.sleep(0)
        waiting.cancel()
        await spool.flush()
        assert [item.custom_id for item in await spool.read(0, 3)] == ["req-0", "req-1", "req-2"]
    finally:
        spool.close()


async def test_a_spooled_part_is_the_same_part_as_from_one_message() -> None:
    """The spool keeps the chunks' bytes as they came (RequestChunk.requests is numbered as
    CreateBatchRequest.requests): a part read back, and the digest, are those of the whole request in one message."""
    request = create_request(30, metadata={"a": "b"})
    for i in range(0, 30, 3):  # bodies of both kinds
        request.requests[i].body_json = f'{{"messages": [{{"role": "user", "content": "hi"}}], "n": {i}}}'
    assert {item.WhichOneof("content") for item in request.requests} == {"body", "body_json"}
    spool = Spool(request)
    try:
        for start in range(0, 30, 7):
            await spool.add(pb.RequestChunk(requests=request.requests[start : start + 7]))
        whole = InMessage(request)
        assert spool.fingerprint() == whole.fingerprint()
        assert list(spool.sizes()) == list(whole.sizes())
        header = pb.CreateBatchRequest(model=request.model, user="u")
        for start, end in ((0, 30), (5, 6), (6, 20), (29, 30)):
            assert await spool.part(header, start, end) == await whole.part(header, start, end)
        assert await spool.whole() == request
    finally:
        spool.close()


async def test_an_upload_with_a_key_the_gateway_refuses_spools_nothing(stub: Stub, sim: Sim) -> None:
    """The key is checked at the header, before any request is read: a wrong key gets UNAUTHENTICATED, not the
    verdict on its requests (here a repeated custom_id in the second chunk)."""
    request = create_request(12)
    request.requests[9].custom_id = "req-2"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UploadBatch(_messages(request, 5), metadata=[("authorization", "Bearer not-a-key")])
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not sim.state.batches
