"""Re-runs of retryable failures (CreateBatchRequest.max_attempts), against the simulator's transient failures (a
request that fails its first N tries with a 500 line): made while no caller is connected, with the key the caller
delegated for the batch (kept sealed, deleted when the batch ends, dropped at the first 401)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.util.stamps import PART_KEY
from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, FAST, Sim, body, connect, create_request, details, eventually, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

S = batch_pb2


@pytest.fixture
async def server(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    settings = make_settings(sim.url, tmp_path, part_max_requests=10, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as running:
        yield running


def _transient(request: pb.CreateBatchRequest, index: int, fails: int, code: str = "server_error") -> None:
    spec = {"key": str(uuid.uuid4()), "fails": fails, "code": code}
    request.requests[index].body.CopyFrom(body(f"question {index}", simulate={"transient": spec}))


def _parts_of(sim: Sim, batch_id: str) -> dict[int, Any]:
    """The simulator's batches that are parts of `batch_id`, by part index."""
    found = {}
    for made in sim.state.batches.values():
        whose, _, index = made.metadata.get(PART_KEY, "").rpartition("/")
        if whose == batch_id:
            found[int(index)] = made
    return found


async def _run_to_the_end(sim: Sim, server: BatchServer, batch_id: str, status: str = "completed") -> None:
    """Finish every part the service makes (the first tries `status`, every re-run completed) until the batch's
    delegated key is gone: it ended. Nothing calls the service meanwhile."""

    async def ended() -> bool:
        for index, made in _parts_of(sim, batch_id).items():
            if made.forced is None:
                await sim.force(made.id, status if index < 2 else "completed")
        return await server.store.delegation(batch_id) is None

    await eventually(ended, within=20)


async def _results(stub: Stub, batch_id: str) -> list[Any]:
    out: list[Any] = []
    async for response in stub.StreamResults(pb.StreamResultsRequest(batch_id=batch_id), metadata=ALICE):
        out.extend(response.results)
    return out


async def test_transient_failures_are_run_again_with_no_caller_connected(server: BatchServer, sim: Sim) -> None:
    request = create_request(15, max_attempts=3)
    _transient(request, 3, fails=1)
    _transient(request, 12, fails=1)
    _transient(request, 5, fails=5)  # fails every try it gets
    _transient(request, 7, fails=1, code="invalid_request")  # not retryable: one try
    async with connect(server.port) as stub:
        batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert batch.id.startswith("obatch_") and len(batch.parts) == 2
    sealed = await server.store.delegation(batch.id)
    assert sealed is not None and b"sim-key-alice" not in sealed[1]  # kept, and not as it is
    await _run_to_the_end(sim, server, batch.id)
    parts = _parts_of(sim, batch.id)
    # the two first tries; req-3 and req-5 again, req-12 again; req-5 a third time
    assert [len(parts[i].requests) for i in sorted(parts)] == [10, 5, 2, 1, 1]
    async with connect(server.port) as stub:
        done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
        assert done.status == S.BATCH_STATUS_COMPLETED
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (15, 13, 2)
        assert [p.attempt for p in done.parts] == [1, 1, 2, 2, 3]
        results = await _results(stub, batch.id)
    assert [r.custom_id for r in results] == [f"req-{i}" for i in range(15)]
    attempts = {r.custom_id: r.attempts for r in results}
    assert (attempts["req-3"], attempts["req-12"], attempts["req-5"], attempts["req-7"], attempts["req-0"]) == (
        2,
        2,
        3,
        1,
        1,
    )
    assert results[3].HasField("completion") and results[12].HasField("completion")
    assert results[5].error.code == "server_error" and results[7].error.code == "invalid_request"


async def test_an_expired_part_is_run_again_whole(server: BatchServer, sim: Sim) -> None:
    async with connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(12, max_attempts=2), metadata=ALICE)).batch
    await _run_to_the_end(sim, server, batch.id, status="expired")
    async with connect(server.port) as stub:
        done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
        assert done.status == S.BATCH_STATUS_COMPLETED and done.request_counts.completed == 12
        results = await _results(stub, batch.id)
    assert all(r.HasField("completion") and r.attempts == 2 for r in results)


async def test_a_small_batch_with_re_runs_is_one_of_the_services_own(server: BatchServer, sim: Sim) -> None:
    async with connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(3, max_attempts=2), metadata=ALICE)).batch
        assert batch.id.startswith("obatch_") and len(batch.parts) == 1
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateBatch(create_request(3, max_attempts=6), metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(caught.value).fields == ["max_attempts"]


async def test_a_key_the_gateway_refuses_stops_the_re_runs_and_the_batch_ends(server: BatchServer, sim: Sim) -> None:
    key_id, key = await sim.new_key("alice")
    _, other = await sim.new_key("alice")
    request = create_request(3, max_attempts=3)
    _transient(request, 1, fails=1)
    async with connect(server.port) as stub:
        batch = (await stub.CreateBatch(request, metadata=[("authorization", f"Bearer {key}")])).batch
        await sim.set_key_active(key_id, False)
        await sim.force(batch.parts[0].id, "completed")

        async def dropped() -> bool:
            return await server.store.delegation(batch.id) is None

        await eventually(dropped, within=10)
        assert len(_parts_of(sim, batch.id)) == 1  # no re-run was made
        another_key = [("authorization", f"Bearer {other}")]  # the same user's
        done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=another_key)).batch
    assert done.status == S.BATCH_STATUS_COMPLETED and done.request_counts.failed == 1


async def test_a_re_run_the_gateway_refuses_ends_and_the_first_try_stands(server: BatchServer, sim: Sim) -> None:
    request = create_request(3, max_attempts=3)
    _transient(request, 1, fails=1)
    async with connect(server.port) as stub:
        batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
        await sim.fault(op="create", status=400, detail="no more of these", times=1)  # the re-run's create
        await sim.force(batch.parts[0].id, "completed")

        async def ended() -> bool:
            return await server.store.delegation(batch.id) is None

        await eventually(ended, within=10)
        done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
        assert done.status == S.BATCH_STATUS_COMPLETED
        counts = done.request_counts
        assert (counts.total, counts.completed, counts.failed) == (3, 2, 1)
        assert [(p.attempt, p.upstream_status) for p in done.parts] == [(1, "completed"), (2, "not_made")]
        assert "no more of these" in done.errors[0].message
        results = await _results(stub, batch.id)
    assert results[1].error.code == "server_error" and results[1].attempts == 1  # its first try stands


async def test_a_key_that_does_not_open_on_this_replica_leaves_the_re_runs_waiting(
    server: BatchServer, sim: Sim
) -> None:
    """A replica without the key-encryption key a delegated key was sealed with decides nothing: the re-runs
    wait (the key is kept), and go on where it opens."""
    request = create_request(3, max_attempts=2)
    _transient(request, 1, fails=1)
    async with connect(server.port) as stub:
        batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    reruns = server.service.core.wholes.reruns
    held = reruns._sealer
    reruns._sealer = Sealer({7: b"another key-encryption key, not this batch's"})
    await sim.force(batch.parts[0].id, "completed")
    await asyncio.sleep(1.0)  # several rounds of the re-runner (WATCH_POLL_MAX 0.1 s)
    assert len(_parts_of(sim, batch.id)) == 1 and await server.store.delegation(batch.id) is not None
    reruns._sealer = held
    await _run_to_the_end(sim, server, batch.id)
    assert len(_parts_of(sim, batch.id)) == 2
