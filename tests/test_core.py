"""The domain core: one path for batch state (saved, then announced), and the watch defects that had two paths.

Each test here failed before the core existed (issue #7): a stranded watch after leave-then-join, a many-batch
watch that died for everyone, a state announced before it was saved, a resume that sent nothing, a revoked key
that kept watching, state that only grew, and a GetBatch that wrote on every call.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.core.observations import behind
from otari_batch_grpc.server.domain.subscriptions.subscribers import Subscriber
from otari_batch_grpc.server.util.singleflight import SingleFlight
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, FAST, MASTER, Sim, connect, create_request, eventually, make_settings, peek

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

SNAPSHOT = watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
CHANGE = watch_pb2.BATCH_EVENT_KIND_CHANGE
HEARTBEAT = watch_pb2.BATCH_EVENT_KIND_HEARTBEAT
UNAVAILABLE = watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE
REMOVED = watch_pb2.BATCH_EVENT_KIND_REMOVED


async def _create(stub: Stub, who: Any = ALICE, **fields: Any) -> batch_pb2.Batch:
    return (await stub.CreateBatch(create_request(1, **fields), metadata=who)).batch


async def _next(call: Any, within: float = 10.0) -> watch_pb2.BatchEvent:
    response = await asyncio.wait_for(call.read(), within)
    assert response is not grpc.aio.EOF
    return response.event  # type: ignore[no-any-return]


# -- 2: a leave followed by a join ------------------------------------------------------------------------------
async def test_a_join_right_after_the_last_leave_gets_a_live_loop(wstub: Stub, fast: BatchServer, sim: Sim) -> None:
    batch = await _create(wstub)
    core = fast.service.core
    caller = fast.service.owners.caller("sim-key-alice")
    current = await core.fetch(caller, batch.id, "openai", time_left=None)
    first, second = Subscriber(caller.watcher), Subscriber(caller.watcher)
    core.hub.join(first, batch.id, "openai", current)
    core.hub.leave(first, [batch.id])  # the loop is cancelled; its task has not finished yet
    core.hub.join(second, batch.id, "openai", current)  # so this used to join the dying loop
    assert core.hub.loops() == 1
    await second.next(0.01)  # the snapshot it was offered
    await sim.force(batch.id, "completed")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = await second.next(0.5)
        if any(getattr(i, "terminal", False) for i in items):
            break
    else:
        raise AssertionError("the terminal state never reached the subscriber that joined")
    core.hub.leave(second)


# -- 3: one batch's trouble does not end a many-batch stream -----------------------------------------------------
async def test_watch_batches_reports_a_batch_the_gateway_forgot_and_goes_on(wstub: Stub, sim: Sim) -> None:
    keep, lose = await _create(wstub), await _create(wstub)
    del sim.state.batches[lose.id]  # the gateway no longer knows it (a registry entry from another upstream)
    sim.state.order.remove(lose.id)
    call = wstub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
    by_id: dict[str, list[watch_pb2.BatchEvent]] = {}
    while not any(e.kind == REMOVED for e in by_id.get(lose.id, [])):  # (its first poll finds it gone)
        event = await _next(call)
        by_id.setdefault(event.batch.id, []).append(event)
    assert by_id[keep.id][0].kind == SNAPSHOT
    assert by_id[lose.id][-1].problem.code == "NOT_FOUND"
    await sim.force(keep.id, "completed")
    event = await _next(call)
    assert event.batch.id == keep.id and event.batch.status == batch_pb2.BATCH_STATUS_COMPLETED
    call.cancel()
    # Dropped from the set: a new stream of everything does not bring it back.
    again = wstub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
    assert (await _next(again)).kind == watch_pb2.BATCH_EVENT_KIND_HEARTBEAT  # open, with nothing live to show
    with pytest.raises(TimeoutError):
        await _next(again, within=0.5)  # nothing live is left to report (keep is completed)
    again.cancel()


async def test_watch_batches_says_which_batch_is_unavailable_and_keeps_the_rest(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, watch_failure_limit=0.2, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        down = await _create(stub, model="anthropic:claude-3-5-haiku")
        up = await _create(stub)
        call = stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[down.id, up.id]), metadata=ALICE)
        assert {(await _next(call)).kind for _ in range(2)} == {SNAPSHOT}
        await sim.fault(op="*", status=502, detail="LLM provider error", provider="anthropic")  # that one is down
        event = await _next(call)
        assert event.kind == UNAVAILABLE and event.batch.id == down.id
        assert event.problem.reason == "WATCH_UPSTREAM_FAILING"
        await sim.force(up.id, "completed")
        while (event := await _next(call)).batch.id != up.id:
            pass
        assert event.batch.status == batch_pb2.BATCH_STATUS_COMPLETED  # the others' stream goes on
        call.cancel()


# -- 4: saved, then announced ------------------------------------------------------------------------------------
async def test_wait_batch_done_means_the_store_holds_the_terminal_state(
    wstub: Stub, fast: BatchServer, sim: Sim
) -> None:
    batch = await _create(wstub)
    waiting = asyncio.ensure_future(wstub.WaitBatch(pb.WaitBatchRequest(batch_id=batch.id), metadata=ALICE))
    await asyncio.sleep(0.1)
    await sim.force(batch.id, "completed")
    reply = await waiting
    assert reply.done
    record = await fast.store.batch(batch.id)
    assert record is not None and record.terminal and record.status == "completed"
    latest = await fast.store.latest_revision(batch.id)
    assert latest is not None and batch_pb2.Batch.FromString(latest.snapshot).status == reply.batch.status


# -- 5: the contract and the code agree --------------------------------------------------------------------------
async def test_a_resume_that_missed_nothing_repeats_nothing(wstub: Stub) -> None:
    """It says at once that it is resumed (a heartbeat with the token), and sends the next change as a change."""
    batch = await _create(wstub)
    call = wstub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
    first = await _next(call)
    call.cancel()
    resumed = wstub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id, resume_token=first.resume_token), metadata=ALICE)
    event = await _next(resumed)
    assert event.kind == HEARTBEAT and event.resume_token == first.resume_token
    await wstub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
    change = await _next(resumed)
    assert change.kind == CHANGE and change.previous_status == batch_pb2.BATCH_STATUS_VALIDATING
    resumed.cancel()


async def test_watch_batches_resumes_with_its_token_and_misses_nothing(wstub: Stub, sim: Sim) -> None:
    a, b = await _create(wstub), await _create(wstub)
    ids = [a.id, b.id]
    call = wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=ids), metadata=ALICE)
    seen = [await _next(call), await _next(call)]
    token = seen[-1].resume_token
    assert token
    call.cancel()
    await wstub.CancelBatch(pb.CancelBatchRequest(batch_id=a.id), metadata=ALICE)  # a change while away
    resumed = wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=ids, resume_token=token), metadata=ALICE)
    missed = await _next(resumed)  # a's change; b did not change: the caller has it, nothing is sent for it
    assert missed.batch.id == a.id and missed.kind == CHANGE
    assert missed.batch.status == batch_pb2.BATCH_STATUS_CANCELLING
    assert missed.previous_status == batch_pb2.BATCH_STATUS_VALIDATING
    await wstub.CancelBatch(pb.CancelBatchRequest(batch_id=b.id), metadata=ALICE)  # b is followed all the same
    while (later := await _next(resumed)).kind == HEARTBEAT:
        pass
    assert later.batch.id == b.id and later.kind == CHANGE
    assert later.previous_status == batch_pb2.BATCH_STATUS_VALIDATING
    resumed.cancel()
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # a token is bound to its batch_ids
        await wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[a.id], resume_token=token), metadata=ALICE).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_heartbeats_have_one_shape_on_both_watch_rpcs(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, **{**FAST, "watch_heartbeat": 0.1})
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        one = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        many = stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[batch.id]), metadata=ALICE)
        for call in (one, many):
            snapshot = await _next(call)
            beat = await _next(call)
            assert beat.kind == HEARTBEAT and not beat.HasField("batch")
            assert beat.resume_token == snapshot.resume_token and beat.HasField("observed_at")
            call.cancel()


# -- 6: a revoked key stops watching ------------------------------------------------------------------------------
async def test_a_revoked_key_stops_receiving_while_another_key_works(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=0.2, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        alice = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        master = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id, provider="openai"), metadata=MASTER)
        await _next(alice)
        await _next(master)
        await sim.set_key_active("key-alice", False)  # revoked at the gateway
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await _next(alice)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await sim.force(batch.id, "completed")
        while (event := await _next(master)).batch.status != batch_pb2.BATCH_STATUS_COMPLETED:
            assert event.kind in (SNAPSHOT, CHANGE, HEARTBEAT)  # the master key goes on to the end


# -- 7: retention, and no write per read --------------------------------------------------------------------------
async def test_retention_forgets_every_table_after_its_time(wstub: Stub, fast: BatchServer, sim: Sim) -> None:
    batch = await _create(wstub, request_id="6f1c1f0e-3b1a-4c55-9d43-0f5a8e2d7c11")
    await sim.force(batch.id, "completed")
    async for _ in wstub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id), metadata=ALICE):
        pass
    counts = await fast.store.counts()
    assert all(counts[t] > 0 for t in ("batches", "access", "idempotency", "revisions", "result_sets"))
    assert await fast.service.core.sweep(now=time.time()) == 0  # nothing is old yet
    later = time.time() + 31 * 86400
    assert await fast.service.core.sweep(now=later) > 0
    assert all(n == 0 for n in (await fast.store.counts()).values()), await fast.store.counts()


async def test_an_ambiguous_claim_expires(wstub: Stub, fast: BatchServer, sim: Sim) -> None:
    request = create_request(1, request_id="0b8a2f4e-9c3d-4e1f-8a7b-6c5d4e3f2a10")
    await sim.fault(op="create", delay=3.0, times=1)
    with pytest.raises(grpc.aio.AioRpcError):
        await wstub.CreateBatch(request, metadata=ALICE, timeout=0.3)  # no reply: outcome unknown
    assert (await fast.store.counts())["idempotency"] == 1
    await fast.service.core.sweep(now=time.time() + 3601)
    assert (await fast.store.counts())["idempotency"] == 0


async def test_get_of_an_unchanged_live_batch_writes_nothing(wstub: Stub, fast: BatchServer) -> None:
    batch = await _create(wstub)
    await wstub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
    writes = fast.store.transactions
    for _ in range(5):
        await wstub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
    assert fast.store.transactions == writes


# -- 1 (the registry behind it): what Bob was never shown stays his ---------------------------------------------
async def test_bob_cannot_watch_alices_batch_by_id(wstub: Stub) -> None:
    batch = await _create(wstub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[batch.id]), metadata=BOB).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_single_flight_shares_a_run_while_it_flies_and_outlives_a_caller_that_leaves() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        if runs == 2:
            raise ValueError("the second run fails")
        return runs

    first, second, leaving = (asyncio.ensure_future(flights.run("k", work)) for _ in range(3))
    await asyncio.sleep(0)
    leaving.cancel()  # a caller that leaves: the run goes on for the others
    release.set()
    assert await first == await second == 1 and runs == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert len(flights) == 0
    with pytest.raises(ValueError, match="second run"):  # after it landed, a call starts a new run; its error is theirs
        await flights.run("k", work)
    assert runs == 2 and len(flights) == 0


async def test_a_read_answered_after_a_later_cancel_does_not_take_the_batch_back(
    stub: Stub, server: BatchServer, sim: Sim
) -> None:
    """A GetBatch sent before a cancel, whose answer (validating, as it was read) arrives after the cancel's
    (cancelling): it is no new revision, and its caller gets the newer state. Watchers never see a batch go back."""
    batch = await _create(stub)
    await sim.fault(op="get", answer_delay=0.5, times=1)
    reads = await sim.requests_seen("get")
    late = asyncio.ensure_future(stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE))
    await eventually(lambda: _more_than(sim, "get", reads))  # read (as validating), its answer on its way
    cancelled = (await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
    assert cancelled.status == batch_pb2.BATCH_STATUS_CANCELLING
    assert (await late).batch.status == batch_pb2.BATCH_STATUS_CANCELLING
    replay = stub.WatchBatch(
        pb.WatchBatchRequest(batch_id=batch.id, resume_token=peek(server).resume(batch.id, 1)), metadata=ALICE
    )
    event = await _next(replay)
    assert (event.previous_status, event.batch.status) == (
        batch_pb2.BATCH_STATUS_VALIDATING,
        batch_pb2.BATCH_STATUS_CANCELLING,
    )
    replay.cancel()
    after = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id, resume_token=event.resume_token), metadata=ALICE)
    assert (await _next(after)).kind == HEARTBEAT  # nothing after it: no revision went back to validating
    after.cancel()


async def _more_than(sim: Sim, op: str, seen: int) -> bool:
    return await sim.requests_seen(op) > seen


@pytest.mark.parametrize(
    ("late", "latest", "is_behind"),
    [
        ((batch_pb2.BATCH_STATUS_VALIDATING, 0), (batch_pb2.BATCH_STATUS_CANCELLING, 0), True),
        ((batch_pb2.BATCH_STATUS_FINALIZING, 3), (batch_pb2.BATCH_STATUS_CANCELLING, 3), True),  # cancelled late
        ((batch_pb2.BATCH_STATUS_CANCELLING, 3), (batch_pb2.BATCH_STATUS_FINALIZING, 3), False),
        ((batch_pb2.BATCH_STATUS_IN_PROGRESS, 5), (batch_pb2.BATCH_STATUS_IN_PROGRESS, 7), True),
        ((batch_pb2.BATCH_STATUS_IN_PROGRESS, 7), (batch_pb2.BATCH_STATUS_IN_PROGRESS, 5), False),
        ((batch_pb2.BATCH_STATUS_IN_PROGRESS, 3), (batch_pb2.BATCH_STATUS_COMPLETED, 3), True),
        ((batch_pb2.BATCH_STATUS_UNSPECIFIED, 0), (batch_pb2.BATCH_STATUS_COMPLETED, 3), False),  # no place in it
    ],
)
def test_a_state_is_behind_another_only_earlier_in_the_lifecycle(
    late: tuple[int, int], latest: tuple[int, int], is_behind: bool
) -> None:
    def state(status: int, done: int) -> batch_pb2.Batch:
        batch = batch_pb2.Batch(id="b", status=status)  # type: ignore[arg-type]
        batch.request_counts.total, batch.request_counts.completed = 3, done
        return batch

    assert behind(state(*late), state(*latest)) is is_behind
