"""Access ends when the gateway says so (#29), beside the matrix (test_access_matrix.py): the bound of the trust
window with nothing polling, the existence answers, tokens at the edge, the files, remembered refusals, the unknown
user, problem events, replays after a reactivation, and replicas told of a refusal."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.core import trust
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import (
    ALICE,
    BOB,
    FAST,
    MASTER,
    Sim,
    connect,
    create_request,
    details,
    eventually,
    make_settings,
    peek,
)

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

REMOVED = watch_pb2.BATCH_EVENT_KIND_REMOVED


def _md(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


async def _code(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _read(call: Any) -> Any:
    """The next response of a stream (typed as the tests read it)."""
    return await asyncio.wait_for(call.read(), 10)


async def _results(stub: Stub, batch_id: str, md: Any) -> int:
    count = 0
    async for response in stub.StreamResults(pb.StreamResultsRequest(batch_id=batch_id), metadata=md):
        count += len(response.results)
    return count


# -- the bound, with nothing polling -----------------------------------------------------------------------------
@pytest.mark.parametrize("trust_seconds", [2.0, 0.0])
async def test_what_the_service_keeps_is_served_within_the_trust_window_and_not_after(
    sim: Sim, tmp_path: Path, trust_seconds: float
) -> None:
    """A completed batch and its results, served from state: until the window from the gateway's last word on the
    caller runs out (none with 0), then the gateway is asked, and refuses. No poll, no other call, finds out first."""
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=trust_seconds, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        key_id, key = await sim.new_key("carol")
        batch = (await stub.CreateBatch(create_request(2), metadata=_md(key))).batch
        await sim.force(batch.id, "completed")
        assert await _results(stub, batch.id, _md(key)) == 2
        await sim.set_key_active(key_id, False)
        get = pb.GetBatchRequest(batch_id=batch.id)
        if trust_seconds:  # within the window: the service's own state, as documented
            assert (await stub.GetBatch(get, metadata=_md(key))).batch.id == batch.id
            await asyncio.sleep(trust_seconds + 0.1)
        assert await _code(stub.GetBatch(get, metadata=_md(key))) == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(_results(stub, batch.id, _md(key))) == grpc.StatusCode.UNAUTHENTICATED


async def test_a_refusal_heard_anywhere_ends_at_once_what_is_served_from_state(stub: Stub, sim: Sim) -> None:
    """Within the default window (300 s), one call that reaches the gateway and hears 401 is enough: the kept state
    of every batch, and the replay of a create, stop at once; another key of the same user goes on."""
    key_id, key = await sim.new_key("carol")
    _, other = await sim.new_key("carol")
    request = create_request(1, request_id=str(uuid.uuid4()))
    made = (await stub.CreateBatch(request, metadata=_md(key))).batch
    done = (await stub.CreateBatch(create_request(1), metadata=_md(key))).batch
    await sim.force(done.id, "completed")
    await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=_md(key))
    await sim.set_key_active(key_id, False)
    assert (await stub.CreateBatch(request, metadata=_md(key))).batch.id == made.id  # the window: still served
    assert await _code(stub.GetBatch(pb.GetBatchRequest(batch_id=made.id), metadata=_md(key))) == (
        grpc.StatusCode.UNAUTHENTICATED  # a live batch: the gateway is asked, and refuses
    )
    for call in (
        stub.CreateBatch(request, metadata=_md(key)),
        stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=_md(key)),
        _results(stub, done.id, _md(key)),
    ):
        assert await _code(call) == grpc.StatusCode.UNAUTHENTICATED
    got = await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id, provider="openai"), metadata=_md(other))
    assert got.batch.status == batch_pb2.BATCH_STATUS_COMPLETED


async def test_an_answer_sent_before_a_revocation_proves_nothing_after_it(stub: Stub, sim: Sim) -> None:
    """A read sent before the key was revoked, answered after another call heard the 401: its access counts from
    when it was sent, before the refusal, so the batch it showed is not served from state afterwards."""
    key_id, key = await sim.new_key("carol")
    batch = (await stub.CreateBatch(create_request(1), metadata=_md(key))).batch
    await sim.force(batch.id, "completed")
    await sim.fault(op="get", answer_delay=1.0, times=1)
    reads = await sim.requests_seen("get")
    late = asyncio.ensure_future(stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=_md(key)))
    await eventually(lambda: _more_than(sim, "get", reads))  # read (completed), its answer on its way
    await sim.set_key_active(key_id, False)
    assert await _code(stub.ListBatches(pb.ListBatchesRequest(), metadata=_md(key))) == grpc.StatusCode.UNAUTHENTICATED
    assert (await late).batch.status == batch_pb2.BATCH_STATUS_COMPLETED  # (its answer, as it was read)
    get = stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=_md(key))
    assert await _code(get) == grpc.StatusCode.UNAUTHENTICATED


async def _more_than(sim: Sim, op: str, count: int) -> bool:
    return await sim.requests_seen(op) > count


async def test_a_key_reactivated_gets_its_first_batch_again_never_a_second(
    sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim of a request_id stays through the refusal; and the refusal is remembered for seconds, not the
    trust window."""
    monkeypatch.setattr(trust, "REFUSAL_SECONDS", 0.3)
    settings = make_settings(sim.url, tmp_path)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        key_id, key = await sim.new_key("carol")
        request = create_request(1, request_id=str(uuid.uuid4()))
        made = (await stub.CreateBatch(request, metadata=_md(key))).batch
        await sim.set_key_active(key_id, False)
        assert await _code(stub.ListBatches(pb.ListBatchesRequest(), metadata=_md(key))) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert await _code(stub.CreateBatch(request, metadata=_md(key))) == grpc.StatusCode.UNAUTHENTICATED
        await sim.set_key_active(key_id, True)
        await asyncio.sleep(0.35)
        assert (await stub.CreateBatch(request, metadata=_md(key))).batch.id == made.id
        assert (await stub.ListBatches(pb.ListBatchesRequest(), metadata=_md(key))).batches
    assert len([b for b in sim.state.batches.values() if b.owner == "carol"]) == 1


# -- blocked users, as the gateway treats them ---------------------------------------------------------------------
async def test_a_blocked_users_create_is_refused_and_its_reads_go_on_from_state(stub: Stub, sim: Sim) -> None:
    done = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.force(done.id, "completed")
    await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=ALICE)
    await sim.block_user("alice")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = details(caught.value).info
    assert info is not None and info.reason == "USER_BLOCKED"
    reads = await sim.requests_seen("get")
    got = await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=ALICE)
    assert got.batch.status == batch_pb2.BATCH_STATUS_COMPLETED
    assert await sim.requests_seen("get") == reads  # the 403 ended nothing: still served from state


async def test_a_master_key_create_for_a_user_the_gateway_does_not_know_names_the_field(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, user="nobody"), metadata=MASTER)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(caught.value)
    assert found.info is not None and found.info.reason == "USER_NOT_FOUND"
    assert found.fields == ["user"]


# -- no existence oracle ------------------------------------------------------------------------------------------
def _answer(error: grpc.aio.AioRpcError, batch_id: str) -> tuple[Any, ...]:
    info = details(error).info
    assert info is not None
    metadata = {k: v.replace(batch_id, "<id>") for k, v in info.metadata.items()}
    return error.code(), info.reason, (error.details() or "").replace(batch_id, "<id>"), metadata


@pytest.mark.parametrize("provider", ["", "openai"])
async def test_another_users_batch_and_a_made_up_id_get_one_answer(stub: Stub, provider: str) -> None:
    alices = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
    await stub.CreateBatch(create_request(1), metadata=BOB)  # bob has a provider to ask
    made_up = "batch_" + "0" * 24
    answers = []
    for batch_id in (alices, made_up):
        for call in (
            stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id, provider=provider), metadata=BOB),
            stub.CancelBatch(pb.CancelBatchRequest(batch_id=batch_id, provider=provider), metadata=BOB),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            answers.append(_answer(caught.value, batch_id))
    assert answers[0] == answers[2] and answers[1] == answers[3], answers
    assert answers[0][:2] == (grpc.StatusCode.NOT_FOUND, "BATCH_NOT_FOUND")
    assert "http_status" not in answers[0][3] and "404" not in answers[0][2]


# -- tokens at the edge -------------------------------------------------------------------------------------------
async def test_a_forged_page_token_is_refused_and_never_skips_the_gateway(stub: Stub, sim: Sim) -> None:
    """#29: base64url JSON choosing its own position once kept listing for a revoked key without the gateway."""
    import base64
    import json

    forged = base64.urlsafe_b64encode(
        json.dumps({"v": 1, "at": 2**39, "seen": 2**39, "after": "zzzz", "provider": ""}).encode()
    ).decode()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(page_token=forged.rstrip("=")), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["page_token"]


async def test_another_callers_tokens_are_refused(stub: Stub) -> None:
    for _ in range(2):
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    page = await stub.ListBatches(pb.ListBatchesRequest(page_size=1), metadata=ALICE)
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
    token = (await _read(watch)).event.resume_token
    watch.cancel()
    listed = pb.ListBatchesRequest(page_size=1, page_token=page.next_page_token)
    resumed = pb.WatchBatchRequest(batch_id=batch.id, resume_token=token, provider="openai")
    for call in (stub.ListBatches(listed, metadata=BOB), stub.WatchBatch(resumed, metadata=BOB).read()):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "another caller's" in (caught.value.details() or "")


async def test_two_callers_tokens_taken_together_differ_and_say_nothing(stub: Stub, server: BatchServer) -> None:
    await stub.CreateBatch(create_request(1), metadata=ALICE)
    await stub.CreateBatch(create_request(1), metadata=BOB)
    alice = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
    bob = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=BOB)
    tokens = [(await _read(alice)).event.resume_token, (await _read(bob)).event.resume_token]
    alice.cancel()
    bob.cancel()
    assert tokens[0] != tokens[1]
    assert peek(server).many_position(tokens[0], []).seq >= 1  # (what is inside: for the service alone)


async def test_a_token_of_a_retired_key_says_start_over(sim: Sim, tmp_path: Path) -> None:
    old, new = "1:" + "o" * 32, "2:" + "n" * 32
    settings = make_settings(sim.url, tmp_path, token_keys=old)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        token = (await _read(watch)).event.resume_token
        watch.cancel()
    for keys, code in ((f"{new},{old}", grpc.StatusCode.OK), (new, grpc.StatusCode.FAILED_PRECONDITION)):
        settings = make_settings(sim.url, tmp_path, token_keys=keys)
        async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
            resumed = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id, resume_token=token), metadata=ALICE)
            if code == grpc.StatusCode.OK:
                assert (await _read(resumed)).event.batch.id in ("", batch.id)  # a heartbeat: nothing missed
                resumed.cancel()
                continue
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await resumed.read()
            assert caught.value.code() == code
            info = details(caught.value).info
            assert info is not None and info.reason == "RESUME_TOKEN_EXPIRED"


# -- problem events carry a batch only to a caller still authorized -------------------------------------------------
async def test_a_batch_no_longer_the_callers_is_removed_without_its_state(wstub: Stub, sim: Sim) -> None:
    batch = (await wstub.CreateBatch(create_request(1, metadata={"secret": "shh"}), metadata=ALICE)).batch
    stream = wstub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[batch.id]), metadata=ALICE)
    assert (await _read(stream)).event.batch.metadata["secret"] == "shh"
    await sim.fault(op="get", status=404, detail=f"Batch '{batch.id}' not found")
    while (event := (await _read(stream)).event).kind != REMOVED:
        pass
    stream.cancel()
    assert event.batch.id == batch.id and event.batch == batch_pb2.Batch(id=batch.id)  # the id, and nothing else


async def test_a_watch_of_batches_of_a_revoked_key_ends_and_carries_nothing(sim: Sim, tmp_path: Path) -> None:
    """#29: WatchBatches listing the batch sent a REMOVED event with the whole stored snapshot, days later."""
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=0.5, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        key_id, key = await sim.new_key("carol")
        done = (await stub.CreateBatch(create_request(1), metadata=_md(key))).batch
        await sim.force(done.id, "completed")
        await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=_md(key))
        await sim.set_key_active(key_id, False)
        await asyncio.sleep(0.6)
        stream = stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[done.id]), metadata=_md(key))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while (response := await _read(stream)) is not grpc.aio.EOF:
                assert not response.event.HasField("batch") or not response.event.batch.status, response
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(("trust_seconds", "carries"), [(300.0, True), (0.0, False)])
async def test_an_unavailable_event_carries_the_batch_only_to_a_caller_still_authorized(
    sim: Sim, tmp_path: Path, trust_seconds: float, carries: bool
) -> None:
    """#29: the hub's problem events after a failed poll carried the last stored state whoever asked. With the
    gateway failing, nothing authorizes anyone anew: within the window the caller still may see the batch (its
    state comes along); with none, it may not (its id alone)."""
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=trust_seconds, watch_failure_limit=0.3, **FAST)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(1, metadata={"secret": "shh"}), metadata=ALICE)).batch
        stream = stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[batch.id]), metadata=ALICE)
        assert (await _read(stream)).event.batch.id == batch.id
        await sim.fault(op="get", status=503, detail="down")
        while (event := (await _read(stream)).event).kind != watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE:
            pass
        stream.cancel()
        assert event.batch.id == batch.id
        assert (event.batch.metadata.get("secret") == "shh") is carries


async def test_a_reused_request_id_is_said_only_to_a_caller_the_gateway_still_takes(sim: Sim, tmp_path: Path) -> None:
    """#29: a reused request_id with another request answered REQUEST_ID_REUSED, naming the batch, before any
    gateway call: to a revoked key too."""
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=0.0)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        key_id, key = await sim.new_key("carol")
        request_id = str(uuid.uuid4())
        await stub.CreateBatch(create_request(1, request_id=request_id), metadata=_md(key))
        other = create_request(2, request_id=request_id)
        assert await _code(stub.CreateBatch(other, metadata=_md(key))) == grpc.StatusCode.ALREADY_EXISTS
        await sim.set_key_active(key_id, False)
        assert await _code(stub.CreateBatch(other, metadata=_md(key))) == grpc.StatusCode.UNAUTHENTICATED


# -- files only the service can read --------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_state_files_are_the_services_alone(sim: Sim, tmp_path: Path) -> None:
    state = tmp_path / "made-here" / "state.db"
    settings = make_settings(sim.url, tmp_path, state_db=state)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        await sim.force(batch.id, "completed")
        await _results(stub, batch.id, ALICE)  # result text kept in the database
        files = sorted(p.name for p in state.parent.iterdir())
        assert files == [
            "state.db",
            "state.db-shm",
            "state.db-wal",
            "state.db.kek",
            "state.db.secret",
            "state.db.tokenkey",
        ]
        for name in files:
            assert _mode(state.parent / name) == 0o600, name
        assert _mode(state.parent) == 0o700


async def test_state_files_made_readable_before_are_narrowed(sim: Sim, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    async with BatchServer(make_settings(sim.url, tmp_path, state_db=state), gateway_url=sim.url):
        pass
    os.chmod(state, 0o644)  # as versions before #29 made it
    async with BatchServer(make_settings(sim.url, tmp_path, state_db=state), gateway_url=sim.url):
        assert _mode(state) == 0o600 and _mode(state.with_name("state.db-wal")) == 0o600


# -- replicas hear of a refusal -------------------------------------------------------------------------------------
async def test_a_refusal_heard_by_one_replica_ends_what_the_others_serve(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    servers = [
        BatchServer(make_settings(sim.url, tmp_path / str(i), database_url=postgres_url), gateway_url=sim.url)
        for i in range(2)
    ]
    for server in servers:
        await server.start()
    try:
        async with connect(servers[0].port) as first, connect(servers[1].port) as second:
            key_id, key = await sim.new_key("carol")
            live = (await first.CreateBatch(create_request(1), metadata=_md(key))).batch
            done = (await first.CreateBatch(create_request(1), metadata=_md(key))).batch
            await sim.force(done.id, "completed")
            for stub in (first, second):
                await stub.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=_md(key))
            await sim.set_key_active(key_id, False)
            assert await _code(first.GetBatch(pb.GetBatchRequest(batch_id=live.id), metadata=_md(key))) == (
                grpc.StatusCode.UNAUTHENTICATED
            )

            async def refused_on_the_other() -> bool:
                call = second.GetBatch(pb.GetBatchRequest(batch_id=done.id), metadata=_md(key))
                return await _code(call) == grpc.StatusCode.UNAUTHENTICATED

            await eventually(refused_on_the_other)
    finally:
        for server in servers:
            await server.stop()
