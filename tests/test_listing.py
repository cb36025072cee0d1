"""ListBatches against a gateway that filters each page by owner after the provider call and gives no cursor.

The service lists from its registry (every batch it showed the caller), newest first with a keyset token, after
entering the gateway's newest page of each provider (which discovers batches made elsewhere). These interleavings
dropped batches when the service took an empty upstream page for the end.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, BOB, Sim, connect, create_request, http_client, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

Who = tuple[tuple[str, str], ...]


async def _list_all(stub: Stub, who: Who, provider: str = "", page_size: int = 3) -> list[str]:
    ids: list[str] = []
    token = ""
    for _ in range(50):
        reply = await stub.ListBatches(
            pb.ListBatchesRequest(provider=provider, page_size=page_size, page_token=token), metadata=who
        )
        assert len(reply.batches) <= page_size
        ids.extend(b.id for b in reply.batches)
        token = reply.next_page_token
        if not token:
            return ids
    raise AssertionError("the listing never ended")


async def _direct_create(sim: Sim, key: str, model: str = "openai:gpt-4o-mini", **extra: Any) -> str:
    """A batch made at the gateway itself, not through this service."""
    body = {
        "model": model,
        "requests": [{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
        **extra,
    }
    async with http_client(base_url=sim.url) as http:
        response = await http.post("/v1/batches", json=body, headers={"authorization": f"Bearer {key}"})
    response.raise_for_status()
    return str(response.json()["id"])


async def test_a_page_of_other_users_batches_does_not_hide_mine(stub: Stub) -> None:
    mine = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
    for _ in range(3):
        await stub.CreateBatch(create_request(1), metadata=BOB)
    # The gateway's newest 3 are Bob's: its page for Alice is [], and no cursor says where to go on.
    assert await _list_all(stub, ALICE, "openai", page_size=3) == [mine]


async def test_batches_made_at_the_gateway_are_discovered_beside_mine(stub: Stub, sim: Sim) -> None:
    made_here = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
    made_there = await _direct_create(sim, "sim-key-alice")
    await _direct_create(sim, "sim-key-bob")
    assert await _list_all(stub, ALICE, "openai", page_size=1) == [made_there, made_here]
    # Discovered means known: the provider may now be left out for it.
    got = await stub.GetBatch(pb.GetBatchRequest(batch_id=made_there), metadata=ALICE)
    assert got.batch.id == made_there


async def test_interleaved_owners_page_by_page_newest_first_each_once(stub: Stub) -> None:
    mine: list[str] = []
    for n in range(7):
        mine.append((await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id)
        for _ in range(n % 3):
            await stub.CreateBatch(create_request(1), metadata=BOB)
    assert await _list_all(stub, ALICE, "openai", page_size=2) == list(reversed(mine))
    assert len(await _list_all(stub, BOB, "openai", page_size=2)) == sum(n % 3 for n in range(7))


async def test_without_a_provider_every_provider_i_have_batches_with(stub: Stub) -> None:
    a = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
    b = (await stub.CreateBatch(create_request(1, model="anthropic:claude-3-5-haiku"), metadata=ALICE)).batch.id
    assert await _list_all(stub, ALICE) == [b, a]
    assert await _list_all(stub, ALICE, "anthropic") == [b]


async def test_a_token_is_bound_to_all_providers_or_one(stub: Stub) -> None:
    for _ in range(2):
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    first = await stub.ListBatches(pb.ListBatchesRequest(page_size=1), metadata=ALICE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(
            pb.ListBatchesRequest(provider="openai", page_token=first.next_page_token), metadata=ALICE
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_lost_reply_search_never_makes_a_second_batch_behind_other_users_pages(stub: Stub, sim: Sim) -> None:
    request = create_request(1, request_id=str(uuid.uuid4()))
    await sim.fault(op="create", drop_after_create=True, times=1)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.CreateBatch(request, metadata=ALICE)  # made, but the reply was lost
    for _ in range(101):  # then the provider's newest page is all someone else's
        await _direct_create(sim, "sim-key-bob")
    before = len(sim.state.batches)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # unknown: retry later, not a second batch
    assert len(sim.state.batches) == before


async def test_a_later_page_rechecks_a_key_past_its_trust(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, owner_trust_seconds=0)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        for _ in range(2):
            await stub.CreateBatch(create_request(1), metadata=ALICE)
        first = await stub.ListBatches(pb.ListBatchesRequest(page_size=1), metadata=ALICE)
        assert first.next_page_token
        await sim.set_key_active("key-alice", False)  # revoked at the gateway
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListBatches(pb.ListBatchesRequest(page_size=1, page_token=first.next_page_token), metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # never the registry's rows to a dead key
