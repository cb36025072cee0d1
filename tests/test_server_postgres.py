"""The real server on a PostgreSQL store (STATE_DB=postgresql://...): every kind of call, the results cache, a
restart on the same database, and a second server on it knowing what the first was shown."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.store.postgres import PostgresStore
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, FAST, Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

REQUEST_ID = "3c0f6a51-8f0e-4d8b-9a57-2f1f9d6c4b20"


async def _results(stub: Stub, batch_id: str) -> list[str]:
    call = stub.StreamResults(pb.StreamResultsRequest(batch_id=batch_id), metadata=ALICE)
    return [item.custom_id async for chunk in call for item in chunk.results]


async def test_every_call_on_a_postgresql_store(sim: Sim, tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(sim.url, tmp_path, state_db=postgres_url, **FAST)
    assert settings.database_url == postgres_url
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        assert isinstance(server.store, PostgresStore)
        batch = (await stub.CreateBatch(create_request(3, request_id=REQUEST_ID), metadata=ALICE)).batch
        again = (await stub.CreateBatch(create_request(3, request_id=REQUEST_ID), metadata=ALICE)).batch
        assert again.id == batch.id and len(sim.state.batches) == 1  # the claim is a row: one batch

        got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch  # no provider
        assert got.id == batch.id and got.provider == "openai"
        listed = await stub.ListBatches(pb.ListBatchesRequest(), metadata=ALICE)
        assert [b.id for b in listed.batches] == [batch.id] and not listed.incomplete_providers
        assert not (await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=BOB)).batches

        watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        first = await watch.read()
        assert isinstance(first, pb.WatchBatchResponse)
        snapshot = first.event
        assert snapshot.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
        assert snapshot.batch.status == batch_pb2.BATCH_STATUS_VALIDATING
        await sim.force(batch.id, "completed")
        events = []
        while isinstance(response := await watch.read(), pb.WatchBatchResponse):
            events.append(response.event)
        assert await watch.code() == grpc.StatusCode.OK  # ends at the terminal status
        assert events[-1].batch.status == batch_pb2.BATCH_STATUS_COMPLETED
        assert events[-1].kind == watch_pb2.BATCH_EVENT_KIND_CHANGE
        resumed = stub.WatchBatch(
            pb.WatchBatchRequest(batch_id=batch.id, resume_token=snapshot.resume_token), metadata=ALICE
        )
        assert [r.event.batch.status async for r in resumed] == [batch_pb2.BATCH_STATUS_COMPLETED]

        assert await _results(stub, batch.id) == ["req-0", "req-1", "req-2"]
        assert await _results(stub, batch.id) == ["req-0", "req-1", "req-2"]
        assert await sim.requests_seen("results") == 1  # the second stream came from the cache
        assert await server.store.result_set(batch.id) == 3
        counts = await server.store.counts()
        assert all(counts[t] > 0 for t in ("batches", "access", "idempotency", "revisions", "result_sets"))

    # A restart on the same database: the registry, the claim and the cache are still there.
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        again = (await stub.CreateBatch(create_request(3, request_id=REQUEST_ID), metadata=ALICE)).batch
        assert again.id == batch.id and again.status == batch_pb2.BATCH_STATUS_COMPLETED
        assert await _results(stub, batch.id) == ["req-0", "req-1", "req-2"]
        assert await sim.requests_seen("results") == 1


async def test_a_second_server_on_the_database_knows_what_the_first_was_shown(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    """Two replicas (each its own directory, so no file is shared): one owner secret, one registry, one claim."""
    first_settings = make_settings(sim.url, tmp_path / "one", state_db=postgres_url)
    second_settings = make_settings(sim.url, tmp_path / "two", state_db=postgres_url)
    async with (
        BatchServer(first_settings, gateway_url=sim.url) as first,
        BatchServer(second_settings, gateway_url=sim.url) as second,
        connect(first.port) as one,
        connect(second.port) as two,
    ):
        batch = (await one.CreateBatch(create_request(2, request_id=REQUEST_ID), metadata=ALICE)).batch
        retried = (await two.CreateBatch(create_request(2, request_id=REQUEST_ID), metadata=ALICE)).batch
        assert retried.id == batch.id and len(sim.state.batches) == 1
        got = (await two.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch  # no provider
        assert got.provider == "openai"
        try:
            await two.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=BOB)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND  # Bob was never shown it: as if it did not exist
        else:
            raise AssertionError("Bob got Alice's batch")
    assert not [path for path in tmp_path.rglob("*.secret")]  # noqa: ASYNC240 (the secret is the database's)


class _Proxy:
    """A TCP proxy in front of PostgreSQL that the test can cut: open connections dropped, new ones refused."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut = False
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut_off(self) -> None:
        self.cut = True
        for writer in self._writers:
            writer.transport.abort()

    async def close(self) -> None:
        self._server.close()
        self.cut_off()


@contextlib.asynccontextmanager
async def _server_behind_a_proxy(sim: Sim, tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[_Proxy, Stub]]:
    """A server whose state database is `postgres_url` reached through a _Proxy the test can cut, and a stub."""
    url = urllib.parse.urlsplit(postgres_url)
    proxy = _Proxy(url.hostname or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    proxied = urllib.parse.urlunsplit(url._replace(netloc=f"{url.username or 'postgres'}@127.0.0.1:{port}"))
    settings = make_settings(sim.url, tmp_path, state_db=proxied, **FAST)
    try:
        async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
            yield proxy, stub
    finally:
        await proxy.close()


async def test_a_state_database_gone_is_unavailable_with_retry_not_internal(
    sim: Sim, tmp_path: Path, postgres_url: str
) -> None:
    """Replicas on PostgreSQL, and PostgreSQL unreachable (or every connection cut): calls that need it answer
    UNAVAILABLE STATE_UNAVAILABLE with RetryInfo, never INTERNAL (#24, the soak's pg_down); then it comes back."""
    async with _server_behind_a_proxy(sim, tmp_path, postgres_url) as (proxy, stub):
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        proxy.cut_off()
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.ListBatches(pb.ListBatchesRequest(), metadata=ALICE, timeout=10)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
            found = details(failed.value)
            assert found.info is not None and found.info.reason == "STATE_UNAVAILABLE"
            assert found.retry is not None
        proxy.cut = False  # back: the pool connects again
        listed = await stub.ListBatches(pb.ListBatchesRequest(), metadata=ALICE, timeout=10)
        assert [b.id for b in listed.batches] == [batch.id]


async def test_a_watch_goes_on_through_a_state_database_outage(sim: Sim, tmp_path: Path, postgres_url: str) -> None:
    """While PostgreSQL does not answer, a replica's poll loop holds no lease and saves nothing, but goes on: its
    watch is still open when the database is back, and delivers the batch's end (#24, the soak's pg_down)."""
    async with _server_behind_a_proxy(sim, tmp_path, postgres_url) as (proxy, stub):
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        first = await asyncio.wait_for(watch.read(), 10)
        assert isinstance(first, pb.WatchBatchResponse)
        assert first.event.batch.status == batch_pb2.BATCH_STATUS_VALIDATING
        proxy.cut_off()
        await asyncio.sleep(1.0)  # many turns of the loop (every 30-100 ms) with no database
        proxy.cut = False
        await sim.force(batch.id, "completed")
        statuses = []
        while isinstance(response := await asyncio.wait_for(watch.read(), 10), pb.WatchBatchResponse):
            statuses.append(response.event.batch.status)
        assert statuses[-1] == batch_pb2.BATCH_STATUS_COMPLETED
        assert await watch.code() == grpc.StatusCode.OK
