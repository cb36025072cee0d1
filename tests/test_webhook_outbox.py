"""The webhook outbox (#32) through the real service: a batch's states, saved as any call or poll saves them, put
the events an endpoint of its owner wants into the outbox in the same transaction (endpoints are kept straight in the
store here: the contract does not register them yet)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.store import EndpointRecord
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, FAST, Sim, connect, create_request, make_settings


def _endpoint(server: BatchServer, endpoint_id: str, key: str, events: str) -> EndpointRecord:
    owner = server.service.owners.owner_of_key(key)
    return EndpointRecord(endpoint_id, owner, "https://h.example/", events, "{}", "", b"", b"", True, "", 1.0, 1.0)


async def test_a_batchs_moves_go_into_its_owners_endpoints_outbox(sim: Sim, tmp_path: Path) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path, **FAST), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        store = server.store
        assert await store.add_endpoint(_endpoint(server, "wh_all", "sim-key-alice", "all"), limit=5)
        assert await store.add_endpoint(_endpoint(server, "wh_end", "sim-key-alice", "terminal"), limit=5)
        assert await store.add_endpoint(_endpoint(server, "wh_bob", "sim-key-bob", "all"), limit=5)
        batch = (await stub.CreateBatch(create_request(2), metadata=ALICE)).batch
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)  # no move: nothing more
        await sim.http.post(f"/_simulator/batches/{batch.id}/status", json={"status": "completed"})
        done = (await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)).batch
        assert done.status == batch_pb2.BATCH_STATUS_COMPLETED
        every = [(d.kind, d.state) for d in await store.deliveries("wh_all", 10)]
        assert every == [("batch.completed", "pending"), ("batch.validating", "superseded")]
        (ended,) = await store.deliveries("wh_end", 10)
        assert (ended.kind, ended.batch_id, ended.terminal) == ("batch.completed", batch.id, True)
        event = watch_pb2.BatchEvent.FromString(ended.event)
        assert event.batch == done and event.previous_status == batch_pb2.BATCH_STATUS_VALIDATING
        assert await store.deliveries("wh_bob", 10) == []  # not bob's batch
        with pytest.raises(grpc.aio.AioRpcError):  # bob is refused it, and told nothing of it
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=BOB)
        assert await store.deliveries("wh_bob", 10) == []
