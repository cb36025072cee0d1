"""The Python client against a real server: typed errors, safe retries, streams that survive a server restart."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import grpc
import pytest

from otari_batch_grpc.client import (
    BatchClient,
    BatchError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    Retry,
    UnauthenticatedError,
    UnavailableError,
    channel_target,
)
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from tests.conftest import Sim, make_settings, port_to_bind_later

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


async def test_create_watch_and_read_results(server: BatchServer, sim: Sim) -> None:
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY, "b": BODY})
        await sim.force(batch.id, "completed")
        events = [event async for event in client.watch(batch.id)]
        assert events[-1].batch.status == batch_pb2.BATCH_STATUS_COMPLETED
        assert [r.custom_id async for r in client.results(batch.id)] == ["a", "b"]
        assert [b.id async for b in client.list("openai", page_size=1)] == [batch.id]
        done, finished = await client.wait(batch.id, seconds=1)
        assert finished and done.id == batch.id


async def test_create_survives_a_lost_reply_without_a_second_batch(server: BatchServer, sim: Sim) -> None:
    await sim.fault(op="create", drop_after_create=True, times=1)
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice", default_retry_seconds=0.01) as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY})
    assert list(sim.state.batches) == [batch.id]


async def test_errors_come_with_their_details(server: BatchServer) -> None:
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client:
        with pytest.raises(BatchError) as caught:
            await client.create("gpt-4o-mini", {"a": BODY})
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.reason == "INVALID_REQUEST"
    assert error.domain == "batch.otari.mozilla.ai" and error.metadata["field"] == "model"
    assert [v.field for v in error.field_violations] == ["model"]
    assert "provider:model" in error.field_violations[0].description and error.message.startswith("model: ")
    assert error.retry_after is None and not error.retryable
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)
    assert str(error).startswith("INVALID_ARGUMENT INVALID_REQUEST: model: ")


async def test_another_users_batch_is_not_found_with_its_id(server: BatchServer) -> None:
    target = f"127.0.0.1:{server.port}"
    async with BatchClient(target, api_key="sim-key-alice") as alice, BatchClient(target, api_key="sim-key-bob") as bob:
        batch = await alice.create("openai:gpt-4o-mini", {"a": BODY})
        with pytest.raises(BatchError) as caught:
            await bob.get(batch.id, provider="openai")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND and caught.value.reason == "BATCH_NOT_FOUND"
    assert caught.value.metadata["batch_id"] == batch.id


async def test_retry_info_is_read_and_only_what_a_retry_can_cure_is_retried(server: BatchServer, sim: Sim) -> None:
    target = f"127.0.0.1:{server.port}"
    async with BatchClient(target, api_key="sim-key-alice", max_attempts=1) as once:
        batch = await once.create("openai:gpt-4o-mini", {"a": BODY})
        await sim.fault(op="get", status=503, retry_after="2", times=1)
        with pytest.raises(BatchError) as caught:
            await once.get(batch.id)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and caught.value.reason == "GATEWAY_UNAVAILABLE"
    assert caught.value.retry_after == 2.0 and caught.value.retryable

    async with BatchClient(target, api_key="sim-key-alice", max_attempts=3, default_retry_seconds=0.01) as client:
        await sim.fault(op="get", status=503, retry_after="0", times=1)
        seen = await sim.requests_seen("get")
        assert (await client.get(batch.id)).id == batch.id  # UNAVAILABLE, then retried
        assert await sim.requests_seen("get") == seen + 2

        await sim.fault(op="get", status=400, times=2)
        seen = await sim.requests_seen("get")
        with pytest.raises(BatchError) as rejected:
            await client.get(batch.id)
        assert rejected.value.code == grpc.StatusCode.INVALID_ARGUMENT and not rejected.value.retryable
        assert await sim.requests_seen("get") == seen + 1  # not retried


async def test_results_count_their_total_resume_by_index_and_report_progress(server: BatchServer, sim: Sim) -> None:
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY, "b": BODY, "c": BODY})
        seen: list[batch_pb2.Batch] = []
        waiting = asyncio.Event()

        def progress(state: batch_pb2.Batch) -> None:
            seen.append(state)
            waiting.set()

        stream = client.results(batch.id, wait=True, on_progress=progress)
        assert stream.total is None
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(waiting.wait(), timeout=10)  # the stream is waiting, and says so
        assert seen[0].id == batch.id and seen[0].status == batch_pb2.BATCH_STATUS_VALIDATING
        assert stream.progress is seen[-1]
        await sim.force(batch.id, "completed")
        assert (await first).custom_id == "a"
        assert [r.custom_id async for r in stream] == ["b", "c"]
        assert stream.total == 3 and stream.next_index == 3

        tail = client.results(batch.id, start_index=2)
        assert [r.custom_id async for r in tail] == ["c"]
        assert tail.total == 3

        with pytest.raises(BatchError) as caught:
            other = await client.create("openai:gpt-4o-mini", {"a": BODY})
            [r async for r in client.results(other.id)]
        assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.reason == "BATCH_NOT_COMPLETED" and caught.value.metadata["status"] == "validating"


async def test_watch_resumes_across_a_server_restart(sim: Sim, tmp_path: Path) -> None:
    port = port_to_bind_later()
    settings = make_settings(
        sim.url, tmp_path, grpc_listen=f"127.0.0.1:{port}", watch_poll_min=0.05, watch_poll_max=0.1
    )
    server = BatchServer(settings, gateway_url=sim.url)
    await server.start()
    async with BatchClient(f"127.0.0.1:{port}", api_key="sim-key-alice") as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY})
        events = client.watch(batch.id)
        first = await anext(events)
        assert first.batch.status == batch_pb2.BATCH_STATUS_VALIDATING
        await server.stop()  # the stream ends UNAVAILABLE with RetryInfo; the client waits, then resumes
        await sim.force(batch.id, "completed")
        server = BatchServer(settings, gateway_url=sim.url)
        await server.start()
        try:
            rest = [event async for event in events]
        finally:
            await server.stop()
    changes = [e for e in rest if e.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT]
    assert changes[-1].batch.status == batch_pb2.BATCH_STATUS_COMPLETED
    assert changes[0].kind == watch_pb2.BATCH_EVENT_KIND_CHANGE  # resumed from its token: no second snapshot
    assert changes[0].previous_status == batch_pb2.BATCH_STATUS_VALIDATING


@pytest.mark.parametrize("listed", [True, False], ids=["listed-ids", "all-of-mine"])
async def test_watch_many_resumes_across_a_server_restart(sim: Sim, tmp_path: Path, listed: bool) -> None:
    port = port_to_bind_later()
    settings = make_settings(
        sim.url,
        tmp_path,
        grpc_listen=f"127.0.0.1:{port}",
        watch_poll_min=0.05,
        watch_poll_max=0.1,
        watch_heartbeat=0.1,
    )
    server = BatchServer(settings, gateway_url=sim.url)
    await server.start()
    async with BatchClient(f"127.0.0.1:{port}", api_key="sim-key-alice") as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY})
        events = client.watch_many([batch.id] if listed else ())
        first = await anext(events)
        assert first.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT and first.batch.id == batch.id
        # A heartbeat carries the stream's position past the snapshots; the client resumes from the last token.
        assert (await anext(events)).kind == watch_pb2.BATCH_EVENT_KIND_HEARTBEAT
        await server.stop()  # the stream ends UNAVAILABLE with RetryInfo; the client waits, then resumes
        await sim.force(batch.id, "completed")
        server = BatchServer(settings, gateway_url=sim.url)
        await server.start()
        try:
            rest: list[watch_pb2.BatchEvent] = []
            async with asyncio.timeout(20):  # WatchBatches never ends on its own: read up to the completion
                async for event in events:
                    rest.append(event)
                    if event.batch.status == batch_pb2.BATCH_STATUS_COMPLETED:
                        break
            await events.aclose()
        finally:
            await server.stop()
    changes = [e for e in rest if e.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT]
    assert [e.batch.id for e in changes] == [batch.id]
    assert changes[0].kind == watch_pb2.BATCH_EVENT_KIND_CHANGE  # resumed from its token: no second snapshot
    assert changes[0].previous_status == batch_pb2.BATCH_STATUS_VALIDATING


async def test_calls_spread_over_several_replicas_with_round_robin(sim: Sim, tmp_path: Path) -> None:
    other_state = SimState(stage_seconds=3600, api_root=sim.state.api_root)
    async with (
        running_simulator(other_state) as other_url,
        BatchServer(make_settings(sim.url, tmp_path / "a"), gateway_url=sim.url) as first,
        BatchServer(make_settings(other_url, tmp_path / "b"), gateway_url=other_url) as second,
        BatchClient([f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"], api_key="sim-key-alice") as client,
    ):
        for _ in range(10):  # each replica proxies its own simulator: which one answered shows in its counts
            with pytest.raises(BatchError):
                await client.get("batch_none", provider="openai")
        assert sim.state.requests_seen["get"] >= 3 and other_state.requests_seen["get"] >= 3
        assert sim.state.requests_seen["get"] + other_state.requests_seen["get"] >= 10


def test_a_target_of_several_addresses() -> None:
    assert channel_target("localhost:50051") == "localhost:50051"
    assert channel_target(["10.0.0.5:50051"]) == "10.0.0.5:50051"
    assert channel_target(["10.0.0.5:50051", "10.0.0.6:50052"]) == "ipv4:10.0.0.5:50051,10.0.0.6:50052"
    assert channel_target(["[::1]:50051", "[::1]:50052"]) == "ipv6:[::1]:50051,[::1]:50052"
    for bad in (["a.internal:1", "b.internal:1"], ["10.0.0.5:1", "[::1]:1"], []):
        with pytest.raises(ValueError):
            channel_target(bad)


def test_a_call_the_other_side_cancelled_is_retried() -> None:
    """CANCELLED reaches the client only from the server or the transport (a replica stopping mid-call): the
    client's own cancel raises asyncio.CancelledError instead. Every call of the client is safe to repeat."""
    cancelled = grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata(), "CANCELLED")
    assert BatchError.of(cancelled).retryable
    refused = grpc.aio.AioRpcError(grpc.StatusCode.PERMISSION_DENIED, grpc.aio.Metadata(), grpc.aio.Metadata(), "no")
    assert not BatchError.of(refused).retryable


async def test_create_takes_pairs_or_the_gateways_items(server: BatchServer, sim: Sim) -> None:
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client:
        paired = await client.create("openai:gpt-4o-mini", [("a", BODY), ("b", '{"messages": []}')])
        items = await client.create("openai:gpt-4o-mini", [{"custom_id": "a", "body": BODY}])
        with pytest.raises(TypeError, match='must have "custom_id" and "body"'):
            await client.create("openai:gpt-4o-mini", [{"id": "a", "messages": []}])
    sent = sim.state.batches
    assert [r["custom_id"] for r in sent[paired.id].requests] == ["a", "b"]
    assert [(r["custom_id"], r["body"]["messages"]) for r in sent[items.id].requests] == [("a", BODY["messages"])]


@pytest.mark.slow
async def test_a_create_past_its_deadline_says_its_request_id_and_a_retry_with_it_makes_one_batch(
    server: BatchServer, sim: Sim
) -> None:
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client:
        # An hour-old batch: the retry's search of the gateway's listing walks past the first attempt's time
        # (with no batch at all, an empty page proves nothing, and the outcome stays unknown).
        old = await client.create("openai:gpt-4o-mini", {"old": BODY})
        sim.state.batches[old.id].created_at -= 3600
        await sim.fault(op="create", delay=2.0, times=1)
        with pytest.raises(BatchError) as caught:
            await client.create("openai:gpt-4o-mini", {"a": BODY}, deadline=0.3)
        assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and caught.value.request_id
        again = await client.create("openai:gpt-4o-mini", {"a": BODY}, request_id=caught.value.request_id)
        assert (
            await client.create("openai:gpt-4o-mini", {"a": BODY}, request_id=caught.value.request_id)
        ).id == again.id
    assert list(sim.state.batches) == [old.id, again.id]


async def test_create_names_the_argument_of_a_mistake(server: BatchServer) -> None:
    async with BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client:
        with pytest.raises(TypeError, match="metadata"):
            await client.create("openai:gpt-4o-mini", {"a": BODY}, metadata={"n": 5})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="requests"):
            await client.create("openai:gpt-4o-mini", ["a", "b"])  # type: ignore[list-item]


async def test_each_code_is_an_error_class_of_its_own_under_batch_error(server: BatchServer) -> None:
    target = f"127.0.0.1:{server.port}"
    async with BatchClient(target, api_key="sim-key-alice") as alice, BatchClient(target, api_key="nope") as stranger:
        batch = await alice.create("openai:gpt-4o-mini", {"a": BODY})
        with pytest.raises(NotFoundError) as missing:
            await alice.get("batch_nosuch", provider="openai")
        with pytest.raises(InvalidArgumentError) as invalid:
            await alice.create("gpt-4o-mini", {"a": BODY})
        with pytest.raises(FailedPreconditionError) as early:
            [r async for r in alice.results(batch.id)]
        with pytest.raises(UnauthenticatedError) as refused:
            await stranger.get(batch.id, provider="openai")
    assert isinstance(missing.value, BatchError) and missing.value.reason == "BATCH_NOT_FOUND"
    assert invalid.value.field_violations[0].field == "model"  # the details are kept
    assert early.value.reason == "BATCH_NOT_COMPLETED"
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert repr(missing.value).startswith("NotFoundError(NOT_FOUND")


async def test_a_target_that_refuses_fails_at_once_naming_it() -> None:
    port = port_to_bind_later()
    retried: list[int] = []
    async with BatchClient(
        f"127.0.0.1:{port}", api_key="k", connect_timeout=30, on_retry=lambda _e, n, _s: retried.append(n)
    ) as client:
        with pytest.raises(UnavailableError) as caught:
            await client.get("batch_1", provider="openai")  # at the refusal, not after 30 s (the test's timeout)
        with pytest.raises(UnavailableError):
            [event async for event in client.watch("batch_1")]
    assert caught.value.reason == "NOT_CONNECTED"
    assert caught.value.message == f"cannot connect to 127.0.0.1:{port} (connection refused, or no such host)"
    assert retried == []  # a target never reached is not retried: it is a wrong address, not a restart


async def test_a_target_where_nothing_answers_fails_after_the_connect_timeout() -> None:
    with socket.socket() as silent:  # takes the connection, never says a word of HTTP/2
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        async with BatchClient(f"127.0.0.1:{port}", api_key="k", connect_timeout=0.3) as client:
            with pytest.raises(UnavailableError) as caught:
                await client.get("batch_1", provider="openai")
    assert caught.value.message == f"nothing answers at 127.0.0.1:{port} (waited 0.3s for a connection)"


async def test_retries_stop_at_the_calls_deadline(server: BatchServer, sim: Sim) -> None:
    retried: list[tuple[int, float]] = []
    async with BatchClient(
        f"127.0.0.1:{server.port}", api_key="sim-key-alice", on_retry=lambda _e, n, s: retried.append((n, s))
    ) as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY})
        await sim.fault(op="get", status=503, retry_after="30", times=1)
        seen = await sim.requests_seen("get")
        with pytest.raises(UnavailableError) as caught:
            await client.get(batch.id, deadline=5)  # the gateway asks for 30 s: past the call's 5
        assert await sim.requests_seen("get") == seen + 1
        assert caught.value.retry_after == 30 and retried == []

        await sim.fault(op="get", status=503, retry_after="0.2", times=1)
        assert (await client.get(batch.id, deadline=5)).id == batch.id
    assert len(retried) == 1 and retried[0][0] == 1 and 0.2 <= retried[0][1] <= 0.22  # RetryInfo, plus jitter


def test_backoff_is_random_up_to_the_doubling_bound_and_honours_retry_info() -> None:
    told: list[tuple[str, int, float]] = []
    retry = Retry(attempts=6, initial=1.0, maximum=5.0, on_retry=lambda e, n, s: told.append((e.reason, n, s)))
    down = UnavailableError(grpc.StatusCode.UNAVAILABLE, "down", reason="GATEWAY_UNAVAILABLE")
    waits = [[retry.pause(down, attempt, until=None) for attempt in range(1, 6)] for _ in range(200)]
    for attempt, bound in zip(range(5), [1.0, 2.0, 4.0, 5.0, 5.0], strict=True):
        column = [w[attempt] for w in waits]
        assert all(w is not None and 0 <= w <= bound for w in column)
        assert len({round(w or 0, 6) for w in column}) > 150  # jittered: callers do not come back together
    assert retry.pause(down, 6, until=None) is None  # the last attempt
    assert retry.pause(down, 1, until=time.monotonic() + 0.0) is None  # no time left
    limited = ResourceExhaustedError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow", retry_after=3.0)
    assert all(3.0 <= (retry.pause(limited, 1, until=None) or 0) <= 3.3 for _ in range(50))
    refused = InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "no")
    assert retry.pause(refused, 1, until=None) is None
    assert told[0][:2] == ("GATEWAY_UNAVAILABLE", 1) and len(told) == 200 * 5 + 50


async def test_a_try_cut_short_by_attempt_timeout_is_tried_again_within_the_deadline(
    server: BatchServer, sim: Sim
) -> None:
    told: list[str] = []
    async with BatchClient(
        f"127.0.0.1:{server.port}",
        api_key="sim-key-alice",
        attempt_timeout=0.5,
        default_retry_seconds=0.01,
        on_retry=lambda error, _n, _s: told.append(error.code.name),
    ) as client:
        batch = await client.create("openai:gpt-4o-mini", {"a": BODY})
        await sim.fault(op="get", delay=3.0, times=1)  # the first try outlasts its 0.5 s
        assert (await client.get(batch.id, deadline=10)).id == batch.id
    # (a second try may join the first one's gateway read, still under way on the server, and be cut short too)
    assert told and set(told) == {"DEADLINE_EXCEEDED"}


async def test_create_takes_any_size_uploading_what_one_message_cannot_hold(
    sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past UPLOAD_ABOVE_BYTES the requests go up in chunks (UploadBatch), progress told; the service splits them
    into parts (PART_MAX_REQUESTS 10 here) and answers one batch; its results come in request order."""
    from otari_batch_grpc import client as module

    monkeypatch.setattr(module, "UPLOAD_ABOVE_BYTES", 1024)
    monkeypatch.setattr(module, "UPLOAD_CHUNK_BYTES", 512)
    settings = make_settings(sim.url, tmp_path, part_max_requests=10)
    async with (
        BatchServer(settings, gateway_url=sim.url) as server,
        BatchClient(f"127.0.0.1:{server.port}", api_key="sim-key-alice") as client,
    ):
        told: list[tuple[int, int]] = []
        requests = {f"r{i}": BODY for i in range(25)}
        batch = await client.create(
            "openai:gpt-4o-mini", requests, on_upload=lambda sent, total: told.append((sent, total))
        )
        assert batch.id.startswith("obatch_") and len(batch.parts) == 3
        assert len(told) > 1 and told[-1] == (25, 25) and [s for s, _ in told] == sorted(s for s, _ in told)
        for part in batch.parts:
            await sim.force(part.id, "completed")
        assert [r.custom_id async for r in client.results(batch.id)] == list(requests)
        small = await client.create("openai:gpt-4o-mini", {"a": BODY}, max_attempts=2)
        assert small.id.startswith("obatch_")  # re-runs asked: a batch of the service's own
