"""The Python client against a real server: safe create retries, and a watch that survives a server restart."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest

from otari_batch_grpc.client import BatchClient, ErrorDetails
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from tests.conftest import Sim, make_settings

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
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.create("gpt-4o-mini", {"a": BODY})
    found = ErrorDetails.of(caught.value)
    assert found.reason == "INVALID_REQUEST" and found.field_violations[0][0] == "model"


async def test_watch_resumes_across_a_server_restart(sim: Sim, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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
    assert rest[-1].batch.status == batch_pb2.BATCH_STATUS_COMPLETED
    assert rest[0].kind == watch_pb2.BATCH_EVENT_KIND_CHANGE  # resumed from its token: no second snapshot
    assert rest[0].previous_status == batch_pb2.BATCH_STATUS_VALIDATING
