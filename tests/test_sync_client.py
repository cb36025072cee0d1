"""The synchronous Python client against a real server: the async client's methods without await, its errors, its
streams as iterators. The blocking calls run in a worker thread (asyncio.to_thread) while the test's event loop
serves the server and the simulator."""

from __future__ import annotations

import asyncio
import inspect

import grpc
import pytest

from otari_batch_grpc.client import BatchClient, NotFoundError, UnavailableError
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.sync_client import SyncBatchClient
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from tests.conftest import Sim, port_to_bind_later

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def test_it_has_every_method_of_the_async_client_with_the_same_parameters() -> None:
    public = {name for name, _ in inspect.getmembers(BatchClient, inspect.isfunction) if not name.startswith("_")}
    assert public <= set(dir(SyncBatchClient)), public - set(dir(SyncBatchClient))
    for name in public:
        asynchronous = inspect.signature(getattr(BatchClient, name)).parameters
        synchronous = inspect.signature(getattr(SyncBatchClient, name)).parameters
        assert list(synchronous) == list(asynchronous), name
        for parameter in asynchronous.values():
            assert synchronous[parameter.name].default == parameter.default, (name, parameter.name)


async def test_create_follow_and_read_without_an_event_loop(server: BatchServer, sim: Sim) -> None:
    target = f"127.0.0.1:{server.port}"

    def create() -> str:
        with SyncBatchClient(target, api_key="sim-key-alice") as client:
            batch = client.create("openai:gpt-4o-mini", {"a": BODY, "b": BODY}, metadata={"team": "search"})
            assert client.get(batch.id).metadata["team"] == "search"
            assert [b.id for b in client.list("openai", page_size=1)] == [batch.id]
            state, done = client.wait(batch.id, seconds=0.2)
            assert not done and state.status == batch_pb2.BATCH_STATUS_VALIDATING
            return batch.id

    batch_id = await asyncio.to_thread(create)
    await sim.force(batch_id, "completed")

    def follow() -> None:
        with SyncBatchClient(target, api_key="sim-key-alice") as client:
            events = list(client.watch(batch_id))
            assert events[-1].batch.status == batch_pb2.BATCH_STATUS_COMPLETED
            assert events[0].kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
            results = client.results(batch_id)
            assert results.total is None
            assert [r.custom_id for r in results] == ["a", "b"]
            assert results.total == 2 and results.next_index == 2
            tail = client.results(batch_id, start_index=1)
            assert next(tail).custom_id == "b"
            tail.close()
            many = client.watch_many([batch_id])
            assert next(many).batch.id == batch_id  # a stream that never ends by itself: closed here
            many.close()
            with pytest.raises(NotFoundError) as caught:
                client.get("batch_nosuch", provider="openai")
            assert caught.value.reason == "BATCH_NOT_FOUND"
            cancelled = client.create("openai:gpt-4o-mini", {"c": BODY})
            assert client.cancel(cancelled.id).status == batch_pb2.BATCH_STATUS_CANCELLING
            rerun = client.create("openai:gpt-4o-mini", {"d": BODY}, max_attempts=2)  # the async twin's options
            assert rerun.id.startswith("obatch_") and rerun.parts[0].attempt == 1

    await asyncio.to_thread(follow)


def test_a_dead_target_fails_fast_and_the_client_closes_twice() -> None:
    port = port_to_bind_later()
    client = SyncBatchClient(f"127.0.0.1:{port}", api_key="k", connect_timeout=0.2)
    with pytest.raises(UnavailableError) as caught:
        client.get("batch_1", provider="openai")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE and f"127.0.0.1:{port}" in caught.value.message
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="the client is closed"):
        client.get("batch_1", provider="openai")
