"""Status subscriptions through real channels: WatchBatch, WatchBatches, WaitBatch, StreamResults(wait), fed by
one shared poller per live batch against the simulator (whose clock moves batches along)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import duration_pb2

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.tokens import CallerTokens, TokenKeys
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2_grpc, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import (
    ALICE,
    BOB,
    FAST,
    Sim,
    connect,
    create_request,
    details,
    eventually,
    http_client,
    make_settings,
    peek,
)

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

SNAPSHOT, CHANGE, HEARTBEAT = (
    watch_pb2.BATCH_EVENT_KIND_SNAPSHOT,
    watch_pb2.BATCH_EVENT_KIND_CHANGE,
    watch_pb2.BATCH_EVENT_KIND_HEARTBEAT,
)
COMPLETED = batch_pb2.BATCH_STATUS_COMPLETED


async def _create(stub: Stub, n: int = 20, who: Any = ALICE) -> batch_pb2.Batch:
    return (await stub.CreateBatch(create_request(n), metadata=who)).batch


def _watch(stub: Stub, batch_id: str, token: str = "", who: Any = ALICE) -> Any:
    return stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id, resume_token=token), metadata=who)


async def _next(call: Any) -> watch_pb2.BatchEvent:
    response = await call.read()
    assert response is not grpc.aio.EOF, "the stream ended"
    event: watch_pb2.BatchEvent = response.event
    return event


async def _rest(call: Any) -> list[watch_pb2.BatchEvent]:
    """Read a stream to its end, which must be OK."""
    events = []
    while (response := await call.read()) is not grpc.aio.EOF:
        events.append(response.event)
    assert await call.code() == grpc.StatusCode.OK
    return events


def _rev(server: BatchServer, event: watch_pb2.BatchEvent) -> int:
    """The revision behind a resume token (tests may peek; callers treat tokens as opaque)."""
    return peek(server).resume_rev(event.resume_token, event.batch.id)


async def test_snapshot_then_every_change_then_ok_at_terminal(wstub: Stub, fast: BatchServer, sim: Sim) -> None:
    batch = await _create(wstub)
    call = _watch(wstub, batch.id)
    first = await _next(call)
    assert first.kind == SNAPSHOT and first.batch.status == batch_pb2.BATCH_STATUS_VALIDATING
    assert first.previous_status == batch_pb2.BATCH_STATUS_UNSPECIFIED
    sim.state.batches[batch.id].created_at = sim.state.clock()  # restart its clock, now with short stages
    await sim.set_stage_seconds(0.3)
    events = [first, *await _rest(call)]
    assert [e.kind for e in events[1:]] == [CHANGE] * (len(events) - 1), [
        (e.kind, e.batch.upstream_status, e.batch.request_counts.completed) for e in events
    ]
    statuses = [e.batch.status for e in events]
    assert statuses[-1] == COMPLETED
    assert batch_pb2.BATCH_STATUS_IN_PROGRESS in statuses
    for before, after in itertools.pairwise(events):
        assert after.previous_status == before.batch.status
        assert _rev(fast, after) > _rev(fast, before)
        assert after.observed_at.ToNanoseconds() >= before.observed_at.ToNanoseconds()
    counts = [e.batch.request_counts.completed for e in events]
    assert counts == sorted(counts) and counts[-1] == 20


async def test_200_subscribers_on_10_batches_poll_once_per_batch(sim: Sim, tmp_path: Path) -> None:
    interval = 0.2
    settings = make_settings(sim.url, tmp_path, watch_poll_min=interval, watch_poll_max=interval, watch_heartbeat=30.0)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batches = [await _create(stub, 1) for _ in range(10)]
        calls = [_watch(stub, batches[i % 10].id) for i in range(200)]
        for call in calls:
            assert (await _next(call)).kind == SNAPSHOT
        assert server.service.hub.loops() == 10
        before = await sim.requests_seen("get")
        await asyncio.sleep(1.0)
        polls = await sim.requests_seen("get") - before
        rounds = 1.0 / interval
        # About 10 polls a round (jitter is ±10%); without sharing it would be 200 a round.
        assert 10 * (rounds - 2) <= polls <= 10 * (rounds + 2)
        for call in calls:
            call.cancel()


async def test_resume_after_a_dropped_stream_misses_nothing(wstub: Stub, fast: BatchServer, sim: Sim) -> None:
    batch = await _create(wstub)
    call = _watch(wstub, batch.id)
    snapshot = await _next(call)
    call.cancel()
    await wstub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)  # a change while away
    resumed = _watch(wstub, batch.id, snapshot.resume_token)
    replayed = await _next(resumed)
    assert replayed.kind == CHANGE and replayed.batch.status == batch_pb2.BATCH_STATUS_CANCELLING
    assert replayed.previous_status == batch_pb2.BATCH_STATUS_VALIDATING
    assert _rev(fast, replayed) == _rev(fast, snapshot) + 1
    await sim.set_stage_seconds(0)
    rest = await _rest(resumed)
    assert [e.batch.status for e in rest] == [batch_pb2.BATCH_STATUS_CANCELLED]
    assert _rev(fast, rest[0]) == _rev(fast, replayed) + 1


async def test_resume_after_a_server_restart(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        call = _watch(stub, batch.id)
        snapshot = await _next(call)
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
        assert (await _next(call)).batch.status == batch_pb2.BATCH_STATUS_CANCELLING
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        resumed = _watch(stub, batch.id, snapshot.resume_token)
        event = await _next(resumed)
        assert event.batch.status == batch_pb2.BATCH_STATUS_CANCELLING
        assert _rev(server, event) == _rev(server, snapshot) + 1
        resumed.cancel()


async def test_a_token_older_than_the_kept_revisions_must_start_over(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, watch_revisions_kept=1, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        call = _watch(stub, batch.id)
        old = await _next(call)
        call.cancel()
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
        await sim.set_stage_seconds(0)
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)  # observed: cancelled
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _watch(stub, batch.id, old.resume_token).read()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = details(caught.value).info
        assert info is not None and info.reason == "RESUME_TOKEN_EXPIRED" and info.metadata["batch_id"] == batch.id


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxLCJiYXRjaCI6Im90aGVyIiwicmV2IjoxfQ"])
async def test_a_foreign_resume_token_is_invalid_argument(wstub: Stub, token: str) -> None:
    batch = await _create(wstub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _watch(wstub, batch.id, token).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["resume_token"]


async def test_a_slow_subscriber_stays_bounded_and_slows_nobody(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, watch_poll_min=0.01, watch_poll_max=0.02, watch_heartbeat=30.0)
    # A client that reads nothing, with a tiny flow-control window: the server's writes to it block at once.
    slow_options = [("grpc.http2.lookahead_bytes", 256), ("grpc.http2.bdp_probe", 0)]
    async with (
        BatchServer(settings, gateway_url=sim.url) as server,
        connect(server.port) as stub,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=slow_options) as slow_channel,
    ):
        batch = await _create(stub, 200)
        slow = batch_service_pb2_grpc.BatchServiceStub(slow_channel)
        slow_call = _watch(slow, batch.id)
        fast_call = _watch(stub, batch.id)
        sim.state.batches[batch.id].created_at = sim.state.clock()
        await sim.set_stage_seconds(0.6)
        fast_events: list[watch_pb2.BatchEvent] = []
        most_pending = 0
        async for response in fast_call:
            fast_events.append(response.event)
            most_pending = max(most_pending, server.service.hub.pending())
        assert fast_events[-1].batch.status == COMPLETED
        revs = [_rev(server, e) for e in fast_events]
        assert revs == list(range(revs[0], revs[0] + len(revs)))  # every change, none skipped
        assert len(revs) > 10
        assert most_pending <= 2  # one pending state per subscriber, at most
        # Catching up: the hub held only its latest state meanwhile; the revisions between come from the store.
        slow_events = [r.event async for r in slow_call]
        assert slow_events[-1].batch.status == COMPLETED
        assert [_rev(server, e) for e in slow_events][-len(revs) :] == revs  # every change, none skipped, none twice


async def test_cancelling_a_watch_stops_the_loop(wstub: Stub, fast: BatchServer) -> None:
    batch = await _create(wstub)
    call = _watch(wstub, batch.id)
    await call.read()

    await eventually(_loops_are(fast, 1))
    call.cancel()
    await eventually(_loops_are(fast, 0))


async def test_an_unauthorized_caller_cannot_join(wstub: Stub, fast: BatchServer, sim: Sim) -> None:
    batch = await _create(wstub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wstub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id, provider="openai"), metadata=BOB).read()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert fast.service.hub.loops() == 0


async def test_heartbeats_keep_a_quiet_stream_alive(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, **{**FAST, "watch_heartbeat": 0.1})
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        call = _watch(stub, batch.id)
        snapshot = await _next(call)
        beats = [await _next(call) for _ in range(3)]
        assert [b.kind for b in beats] == [HEARTBEAT] * 3
        assert {b.resume_token for b in beats} == {snapshot.resume_token}
        assert not beats[0].HasField("batch")  # one shape on every watch stream: no batch on a heartbeat
        call.cancel()


async def test_brief_upstream_trouble_is_ridden_out(wstub: Stub, sim: Sim) -> None:
    batch = await _create(wstub)
    call = _watch(wstub, batch.id)
    await call.read()
    await sim.fault(op="get", status=503, detail="blip", times=3)
    await sim.force(batch.id, "completed")
    rest = await _rest(call)
    assert rest[-1].batch.status == COMPLETED


async def test_persistent_upstream_failure_ends_streams_with_unavailable(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, watch_failure_limit=0.3, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        call = _watch(stub, batch.id)
        await call.read()
        await sim.fault(op="*", status=502, detail="LLM provider error")  # the provider is down: get and list fail
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        found = details(caught.value)
        assert found.info is not None and found.info.reason == "WATCH_UPSTREAM_FAILING"
        assert found.retry is not None
        await eventually(_loops_are(server, 0))


def _loops_are(server: BatchServer, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return server.service.hub.loops() == n

    return check


async def test_shutdown_ends_watches_with_unavailable(sim: Sim, tmp_path: Path) -> None:
    server = BatchServer(make_settings(sim.url, tmp_path, **FAST), gateway_url=sim.url)
    await server.start()
    async with connect(server.port) as stub:
        batch = await _create(stub)
        call = _watch(stub, batch.id)
        await call.read()
        stopping = asyncio.ensure_future(server.stop())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        info = details(caught.value).info
        assert info is not None and info.reason == "SERVER_SHUTTING_DOWN"
        await stopping


async def test_wait_batch_returns_at_terminal(wstub: Stub, sim: Sim) -> None:
    batch = await _create(wstub)
    sim.state.batches[batch.id].created_at = sim.state.clock()
    await sim.set_stage_seconds(0.1)
    reply = await wstub.WaitBatch(
        pb.WaitBatchRequest(batch_id=batch.id, timeout=duration_pb2.Duration(seconds=30)), metadata=ALICE
    )
    assert reply.done and reply.batch.status == COMPLETED


async def test_wait_batch_returns_the_latest_state_at_its_timeout(wstub: Stub) -> None:
    batch = await _create(wstub)
    timeout = duration_pb2.Duration()
    timeout.FromTimedelta(timedelta(milliseconds=300))
    reply = await wstub.WaitBatch(pb.WaitBatchRequest(batch_id=batch.id, timeout=timeout), metadata=ALICE)
    assert not reply.done and reply.batch.status == batch_pb2.BATCH_STATUS_VALIDATING


async def test_wait_batch_answers_before_the_callers_deadline(wstub: Stub) -> None:
    batch = await _create(wstub)
    reply = await wstub.WaitBatch(pb.WaitBatchRequest(batch_id=batch.id), metadata=ALICE, timeout=0.5)
    assert not reply.done and reply.batch.id == batch.id


async def test_wait_batch_rejects_a_negative_timeout(wstub: Stub) -> None:
    batch = await _create(wstub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wstub.WaitBatch(
            pb.WaitBatchRequest(batch_id=batch.id, timeout=duration_pb2.Duration(seconds=-1)), metadata=ALICE
        )
    assert details(caught.value).fields == ["timeout"]


async def test_stream_results_with_wait(wstub: Stub, sim: Sim) -> None:
    batch = await _create(wstub, 3)
    sim.state.batches[batch.id].created_at = sim.state.clock()
    await sim.set_stage_seconds(0.1)
    request = pb.StreamResultsRequest(batch_id=batch.id, wait=True)
    messages = [m async for m in wstub.StreamResults(request, metadata=ALICE, timeout=30)]
    progress = [m.progress for m in messages if m.HasField("progress")]
    assert progress and progress[0].status == batch_pb2.BATCH_STATUS_VALIDATING  # progress while it waits
    # Each state once (the stages here are far shorter than the quiet-while repeat): no repeated first state.
    assert all(a != b for a, b in itertools.pairwise(progress)), [p.status for p in progress]
    assert all(not m.results for m in messages if m.HasField("progress"))
    assert all(m.total_count == 3 for m in messages if m.results)
    items = [r.custom_id for m in messages for r in m.results]
    assert items == ["req-0", "req-1", "req-2"]


async def test_watch_batches_follows_the_listed_ones(wstub: Stub, sim: Sim) -> None:
    a, b = await _create(wstub), await _create(wstub)
    call = wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[a.id, b.id]), metadata=ALICE)
    first = [await _next(call) for _ in range(2)]
    assert {(e.kind, e.batch.id) for e in first} == {(SNAPSHOT, a.id), (SNAPSHOT, b.id)}
    await sim.force(a.id, "completed")
    await sim.force(b.id, "expired")
    seen: dict[str, int] = {}
    while len(seen) < 2:
        event = await _next(call)
        if event.kind == CHANGE:
            seen[event.batch.id] = event.batch.status
    assert seen == {a.id: COMPLETED, b.id: batch_pb2.BATCH_STATUS_EXPIRED}
    call.cancel()


async def test_watch_batches_of_everything_includes_batches_created_later(wstub: Stub, sim: Sim) -> None:
    old = await _create(wstub)
    await _create(wstub, who=BOB)
    call = wstub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
    assert (await _next(call)).batch.id == old.id
    new = await _create(wstub)
    event = await _next(call)
    assert (event.kind, event.batch.id) == (SNAPSHOT, new.id)
    await sim.force(new.id, "completed")
    while True:
        event = await _next(call)
        if event.batch.id == new.id and event.batch.status == COMPLETED:
            break
        assert event.batch.id in (old.id, new.id)  # never Bob's
    call.cancel()


async def test_watch_batches_needs_known_ids(wstub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=["batch_unknown"]), metadata=ALICE).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The violation names the field of this request (it has no `provider`).
    assert details(caught.value).fields == ["batch_ids[0]"]


async def test_a_failing_poll_loop_ends_its_streams_with_a_retryable_error(
    wstub: Stub, sim: Sim, fast: BatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = await _create(wstub)
    call = _watch(wstub, batch.id)
    await _next(call)

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fast.store, "enter", broken)
    await sim.force(batch.id, "completed")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _next(call)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = details(caught.value).info
    assert info is not None and info.reason == "WATCH_FAILED"
    assert "disk on fire" not in (caught.value.details() or "")


def test_a_revision_repeating_the_state_last_sent_is_no_event() -> None:
    """Two replicas that both saw a state save it twice (rev 2 and 3): a stream sends it once, and keeps the
    newer revision as its base (so the next change's previous_status is right)."""
    from otari_batch_grpc.server.domain.core.observations import Observation
    from otari_batch_grpc.server.domain.subscriptions.trails import Trail

    running = batch_pb2.Batch(id="b", status=batch_pb2.BATCH_STATUS_IN_PROGRESS, provider="openai")
    tokens = CallerTokens(TokenKeys({1: b"k" * 32}), "owner")
    trail = Trail(tokens)
    trail.event(Observation(running, 2, 1.0))
    again = batch_pb2.Batch()
    again.CopyFrom(running)
    again.provider = "OpenAI"  # as another caller spelled it: the same state
    assert trail.repeats(Observation(again, 3, 2.0)) and trail.rev == 3
    assert tokens.resume_rev(trail.token, "b") == 3  # heartbeats resume from the newer revision
    done = batch_pb2.Batch(id="b", status=batch_pb2.BATCH_STATUS_COMPLETED, provider="openai")
    assert not trail.repeats(Observation(done, 4, 3.0))
    assert trail.event(Observation(done, 4, 3.0)).previous_status == batch_pb2.BATCH_STATUS_IN_PROGRESS


async def _save_again(server: BatchServer, batch_id: str) -> None:
    """Save the batch's latest state once more, as a second replica that saw it too would."""
    from otari_batch_grpc.server.domain.core.replicas import Notices
    from otari_batch_grpc.server.store.base import RevisionNotice, SeenBatch

    latest = await server.store.latest_revision(batch_id)
    assert latest is not None
    batch = batch_pb2.Batch.FromString(latest.snapshot)
    again = SeenBatch(batch.id, batch.provider, batch.upstream_status, False, latest.snapshot)
    (saved,) = await server.store.enter([again], [], owner="elsewhere", keep=10, observed_at=latest.observed_at + 1)
    # What this replica hears of it (from PostgreSQL's NOTIFY when there are several).
    core = server.service.core
    notices = Notices(store=server.store, states=core.states, hub=core.hub, trust=core.trust)
    notices.heard(RevisionNotice(batch_id, saved.rev, "elsewhere", batch.provider, "another-replica"))


async def test_a_resume_across_a_repeated_revision_repeats_no_change(wstub: Stub, fast: BatchServer) -> None:
    """The state the caller last saw, saved again by a second replica, is not sent again, as a change or as a
    snapshot (seen once in CI: a subscriber resumed on another replica was told of IN_PROGRESS twice); the
    stream's token moves on to the newer revision all the same."""
    batch = await _create(wstub)
    call = _watch(wstub, batch.id)
    snapshot = await _next(call)
    call.cancel()
    await _save_again(fast, batch.id)
    resumed = _watch(wstub, batch.id, snapshot.resume_token)
    event = await _next(resumed)
    assert event.kind == HEARTBEAT and not event.batch.id  # nothing new: the caller has this state
    assert peek(fast).resume_rev(event.resume_token, batch.id) == _rev(fast, snapshot) + 1  # the newer one is the base
    await wstub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
    change = await _next(resumed)
    assert (change.kind, change.batch.status) == (CHANGE, batch_pb2.BATCH_STATUS_CANCELLING)
    assert change.previous_status == snapshot.batch.status
    resumed.cancel()


async def test_a_many_resume_across_a_repeated_revision_repeats_no_change(wstub: Stub, fast: BatchServer) -> None:
    batch = await _create(wstub)
    call = wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[batch.id]), metadata=ALICE)
    snapshot = await _next(call)
    call.cancel()
    await _save_again(fast, batch.id)
    resumed = wstub.WatchBatches(
        pb.WatchBatchesRequest(batch_ids=[batch.id], resume_token=snapshot.resume_token), metadata=ALICE
    )
    event = await _next(resumed)
    assert event.kind == HEARTBEAT  # the caller has this state: not sent again
    await wstub.CancelBatch(pb.CancelBatchRequest(batch_id=batch.id), metadata=ALICE)
    while (change := await _next(resumed)).kind == watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
        pass
    assert (change.kind, change.batch.status) == (CHANGE, batch_pb2.BATCH_STATUS_CANCELLING)
    assert change.previous_status == snapshot.batch.status
    resumed.cancel()


async def test_watch_batches_of_everything_follows_every_batch_a_list_shows(wstub: Stub, sim: Sim) -> None:
    """Batches made at the gateway itself, then shown to the caller by one ListBatches page: each is followed."""

    made = []
    async with http_client(base_url=sim.url, headers={"authorization": "Bearer sim-key-alice"}) as http:
        for _ in range(3):
            body = {"model": "openai:gpt-4o-mini", "requests": [{"custom_id": "a", "body": {"messages": []}}]}
            made.append((await http.post("/v1/batches", json=body)).raise_for_status().json()["id"])
    call = wstub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
    await asyncio.sleep(0.2)  # the stream is open (it follows nothing yet: the service has seen none of them)
    listed = await wstub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert set(made) <= {b.id for b in listed.batches}
    followed: set[str] = set()

    async def follow() -> None:
        while len(followed) < len(made):
            event = await _next(call)
            if event.kind == SNAPSHOT:
                followed.add(event.batch.id)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(follow(), 10)
    assert followed == set(made)
    call.cancel()


async def test_a_batch_made_while_a_follow_all_stream_was_away_comes_as_a_snapshot(wstub: Stub) -> None:
    old = await _create(wstub)
    call = wstub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
    first = await _next(call)
    assert first.batch.id == old.id
    call.cancel()
    new = await _create(wstub)
    resumed = wstub.WatchBatches(pb.WatchBatchesRequest(resume_token=first.resume_token), metadata=ALICE)
    events: dict[str, watch_pb2.BatchEvent] = {}
    while new.id not in events:
        event = await _next(resumed)
        if event.batch.id:
            events[event.batch.id] = event
    assert events[new.id].kind == SNAPSHOT  # new to the caller: no change from a state they never had
    assert events[new.id].previous_status == batch_pb2.BATCH_STATUS_UNSPECIFIED
    assert old.id not in events  # as they last saw it: they have it, nothing is sent again
    resumed.cancel()


async def test_a_token_for_a_revision_never_saved_must_start_over_too(wstub: Stub, fast: BatchServer) -> None:
    """As after the service's state was reset: the token's revision is not one this service holds."""
    batch = await _create(wstub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _watch(wstub, batch.id, peek(fast).resume(batch.id, 9999)).read()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(caught.value).info
    assert info is not None and info.reason == "RESUME_TOKEN_EXPIRED"
    assert "does not hold" in (caught.value.details() or "")


async def test_a_follow_all_stream_opened_while_the_gateway_is_away_follows_its_batches_once_back(
    sim: Sim, tmp_path: Path
) -> None:
    """A batch the stream could not read as it opened is told UNAVAILABLE once, then read again until it can be:
    its later states reach the stream (they once never did: the batch was never joined)."""
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=0, **FAST)  # every open reads the gateway
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = await _create(stub)
        await sim.fault(op="get", status=503, detail="the gateway is away")
        call = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
        first = await _next(call)
        assert (first.kind, first.batch.id) == (watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE, batch.id)
        await sim.force(batch.id, "completed")
        (await sim.http.delete("/_simulator/faults")).raise_for_status()
        event = await asyncio.wait_for(_next(call), timeout=10)
        assert (event.batch.id, event.batch.status) == (batch.id, COMPLETED)
        assert event.kind in (SNAPSHOT, CHANGE)
        call.cancel()
