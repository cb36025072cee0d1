"""Every otari deployment: the API root found at start (or pinned), the SDK's setting names, platform tokens,
and the errors the otari SDK knows (402, budget refusals) with the gateway's Otari-Attempt-ID."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server import config
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, connect, create_request, details, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub


@pytest.mark.parametrize("root", ["/v1", "/api/v1"])
async def test_auto_finds_the_root_the_gateway_serves(root: str, tmp_path: Path) -> None:
    async with running_simulator(SimState(stage_seconds=3600, api_root=root)) as url:
        server = BatchServer(make_settings(url, tmp_path), gateway_url=url)
        async with server, connect(server.port) as stub:
            assert server.gateway.api_root == root
            batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
            got = await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
            assert got.batch.id == batch.id


async def test_a_pinned_root_the_gateway_does_not_serve_is_not_found(tmp_path: Path) -> None:
    async with running_simulator(SimState(stage_seconds=3600, api_root="/api/v1")) as url:
        settings = make_settings(url, tmp_path, gateway_api_root="/v1")
        async with BatchServer(settings, gateway_url=url) as server, connect(server.port) as stub:
            assert server.gateway.api_root == "/v1"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateBatch(create_request(1), metadata=ALICE)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@contextlib.asynccontextmanager
async def _answers_404_to_everything() -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"detail":"Not Found"}'
        writer.write(
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_a_server_that_serves_neither_root_is_a_clear_start_error(tmp_path: Path) -> None:
    async with _answers_404_to_everything() as url:
        server = BatchServer(make_settings(url, tmp_path), gateway_url=url)
        with pytest.raises(OSError, match=r"serves neither /api/v1/batches nor /v1/batches"):
            await server.start()


def test_the_sdks_setting_names_are_read_after_ours() -> None:
    sdk = {
        "GATEWAY_API_BASE": "https://api.otari.ai",
        "GATEWAY_API_KEY": "sdk-key",
        "GATEWAY_PLATFORM_TOKEN": "legacy",
        "OTARI_AI_TOKEN": "token",
    }
    settings = config.load([], sdk)
    assert (settings.gateway_url, settings.service_key, settings.platform_token) == (
        "https://api.otari.ai",
        "sdk-key",
        "token",
    )
    ours = config.load([], {**sdk, "GATEWAY_URL": "http://gw:8000", "SERVICE_KEY": "ours", "PLATFORM_TOKEN": "p"})
    assert (ours.gateway_url, ours.service_key, ours.platform_token) == ("http://gw:8000", "ours", "p")
    with pytest.raises(config.ConfigError, match="GATEWAY_API_ROOT"):
        config.load([], {"GATEWAY_API_ROOT": "/v2"})


async def test_with_a_platform_token_the_callers_key_goes_in_otari_key(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, platform_token="platform-token")
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        assert sim.state.batches[batch.id].owner == "alice"  # the gateway read Alice's key from Otari-Key


@pytest.mark.parametrize(
    ("status", "detail", "code", "reason"),
    [
        (402, None, grpc.StatusCode.FAILED_PRECONDITION, "PAYMENT_REQUIRED"),
        (403, None, grpc.StatusCode.RESOURCE_EXHAUSTED, "BUDGET_EXCEEDED"),
        (403, "User 'alice' is blocked", grpc.StatusCode.PERMISSION_DENIED, "USER_BLOCKED"),
    ],
)
async def test_budget_refusals_have_reasons_of_their_own(
    stub: Stub, sim: Sim, status: int, detail: str | None, code: grpc.StatusCode, reason: str
) -> None:
    await sim.refuse_budget(status, user="alice", detail=detail)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    assert caught.value.code() == code
    info = details(caught.value).info
    assert info is not None and info.reason == reason and info.metadata["http_status"] == str(status)


async def test_the_gateways_attempt_id_is_in_the_error(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="get", status=500, detail="boom", times=1, headers={"otari-attempt-id": "att-123"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    info = details(caught.value).info
    assert info is not None and info.metadata["otari_attempt_id"] == "att-123"
