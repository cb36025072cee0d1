"""Credentials: read from call metadata, forwarded per call, refused early when absent, never logged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Bearer sim-key-alice"),),
        (("otari-key", "sim-key-alice"),),
        (("otari-key", "Bearer sim-key-alice"),),
        (("x-api-key", "sim-key-alice"),),
    ],
    ids=["authorization", "otari-key", "otari-key-bearer", "x-api-key"],
)
async def test_every_accepted_header_form_works(stub: Stub, metadata: tuple[tuple[str, str], ...]) -> None:
    reply = await stub.CreateBatch(create_request(1), metadata=metadata)
    assert reply.batch.user == "alice"


async def test_no_credential_is_unauthenticated_without_an_upstream_call(stub: Stub, sim: Sim) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = details(caught.value).info
    assert info is not None and info.reason == "MISSING_CREDENTIAL"
    assert "authorization: Bearer" in (caught.value.details() or "")
    assert await sim.requests_seen() == 0


async def test_authorization_without_bearer_is_refused_locally(stub: Stub, sim: Sim) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=(("authorization", "sim-key-alice"),))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = details(caught.value).info
    assert info is not None and info.reason == "MALFORMED_CREDENTIAL"
    assert await sim.requests_seen() == 0


async def test_wrong_key_is_unauthenticated_by_the_gateway(stub: Stub, sim: Sim) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=(("x-api-key", "stolen"),))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Invalid API key" in (caught.value.details() or "")
    assert await sim.requests_seen("list") == 1


async def test_operator_service_key_is_used_only_when_the_call_has_none(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, service_key="sim-key-bob")
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        mine = await stub.CreateBatch(create_request(1))
        assert mine.batch.user == "bob"
        theirs = await stub.CreateBatch(create_request(1), metadata=(("x-api-key", "sim-key-alice"),))
        assert theirs.batch.user == "alice"


async def test_keys_never_reach_a_log_line(stub: Stub, sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await stub.CreateBatch(create_request(1), metadata=(("authorization", "Bearer sim-key-alice"),))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=(("x-api-key", "wrong-key-123"),))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=(("authorization", "sim-key-bob"),))
    text = caplog.text
    assert '"method": "CreateBatch"' in text and '"method": "ListBatches"' in text  # the per-RPC lines are there
    for key in ("sim-key-alice", "wrong-key-123", "sim-key-bob"):
        assert key not in text
