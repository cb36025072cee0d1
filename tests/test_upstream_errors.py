"""Every row of the gateway-status mapping (the README's Errors table; errors.HTTP_STATUS_TABLE), by injecting the
gateway's answer into the simulator."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.errors import from_upstream
from otari_batch_grpc.server.edge.rpc import log_level
from otari_batch_grpc.server.gateway.errors import UpstreamTimeout
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, connect, create_request, details, eventually, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
BOTH_API_ROOTS = True

ROWS = [
    # (gateway status, detail, gRPC code, ErrorInfo reason, has RetryInfo). A 404 for a batch is the one answer an
    # unknown id gets too (test_access.py: no existence oracle), so it does not pass the gateway's words on.
    (400, "'nosuch' is not a supported provider.", grpc.StatusCode.INVALID_ARGUMENT, "GATEWAY_REJECTED_REQUEST", False),
    (401, "Invalid API key", grpc.StatusCode.UNAUTHENTICATED, "GATEWAY_UNAUTHENTICATED", False),
    (403, "'user' field does not match", grpc.StatusCode.PERMISSION_DENIED, "GATEWAY_PERMISSION_DENIED", False),
    (500, "boom", grpc.StatusCode.INTERNAL, "GATEWAY_INTERNAL_ERROR", False),
    (502, "LLM provider error", grpc.StatusCode.UNAVAILABLE, "PROVIDER_ERROR", True),
    (503, "down for maintenance", grpc.StatusCode.UNAVAILABLE, "GATEWAY_UNAVAILABLE", True),
    (504, "upstream timed out", grpc.StatusCode.DEADLINE_EXCEEDED, "GATEWAY_TIMEOUT", False),
]


@pytest.mark.parametrize(("status", "detail", "code", "reason", "retry"), ROWS, ids=[str(r[0]) for r in ROWS])
async def test_gateway_status_maps_to_grpc(
    stub: Stub, sim: Sim, status: int, detail: str, code: grpc.StatusCode, reason: str, retry: bool
) -> None:
    # A 502 is checked with one more call (is the provider up?): it fails too when the provider is down.
    await sim.fault(op="*" if status == 502 else "get", status=status, detail=detail, times=2 if status == 502 else 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    error = caught.value
    assert error.code() == code
    assert detail in (error.details() or "")
    found = details(error)
    assert found.info is not None and found.info.reason == reason
    assert found.info.metadata["http_status"] == str(status)
    assert found.info.metadata["operation"] == "get"
    assert (found.retry is not None) == retry


async def test_422_field_list_becomes_bad_request_violations(stub: Stub, sim: Sim) -> None:
    detail = [
        {"type": "missing", "loc": ["query", "provider"], "msg": "Field required"},
        {"type": "too_short", "loc": ["body", "requests", 0, "custom_id"], "msg": "String too short"},
    ]
    await sim.fault(op="create", status=422, detail=detail, times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(caught.value)
    assert found.fields == ["provider", "requests[0].custom_id"]
    assert found.bad_request is not None
    assert found.bad_request.field_violations[1].description == "String too short"


async def test_429_carries_retry_after_as_retry_info(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="get", status=429, detail="Rate limit exceeded", retry_after="7", times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(caught.value)
    assert found.retry is not None and found.retry.retry_delay.seconds == 7
    assert found.count == 2  # exactly one ErrorInfo, plus the RetryInfo


async def test_503_retry_after_is_passed_on(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="cancel", status=503, detail="busy", retry_after="3", times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelBatch(pb.CancelBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    retry = details(caught.value).retry
    assert retry is not None and retry.retry_delay.seconds == 3


@pytest.mark.parametrize("status", [200, 500])
async def test_a_body_that_is_not_json_is_unavailable_and_named(stub: Stub, sim: Sim, status: int) -> None:
    await sim.fault(op="get", malformed=True, status=status, times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    code = caught.value.code()
    info = details(caught.value).info
    assert info is not None
    if status == 200:
        assert code == grpc.StatusCode.UNAVAILABLE and info.reason == "GATEWAY_BAD_RESPONSE"
    else:  # an HTML 500 page: still a 500, its text kept short in the message
        assert code == grpc.StatusCode.INTERNAL and "upstream went sideways" in (caught.value.details() or "")


async def test_a_json_body_of_the_wrong_shape_is_unavailable(stub: Stub, sim: Sim) -> None:
    # The simulator answers every route with a JSON `{"detail": ...}` on a fault; a 200 with that body is no batch.
    await sim.fault(op="get", status=200, detail="not a batch", times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = details(caught.value).info
    assert info is not None and info.reason == "GATEWAY_BAD_RESPONSE"


@pytest.mark.parametrize("status", [200, 429, 502, 503])
async def test_a_list_the_gateway_cannot_answer_still_lists_what_the_service_knows(
    stub: Stub, sim: Sim, status: int
) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.fault(op="list", status=status, detail="not a page" if status == 200 else "trouble", times=1)
    reply = await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert [b.id for b in reply.batches] == [batch.id]
    assert list(reply.incomplete_providers) == ["openai"]
    again = await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert list(again.incomplete_providers) == []


async def test_a_list_with_a_key_the_gateway_refuses_is_refused(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="list", status=401, detail="Invalid API key", times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_upstream_slower_than_the_timeout_is_deadline_exceeded(sim: Sim, tmp_path: Path) -> None:
    await sim.fault(op="get", delay=3.0, times=1)
    settings = make_settings(sim.url, tmp_path, upstream_timeout=0.2)
    async with BatchServer(settings, gateway_url=sim.url) as server, connect(server.port) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    info = details(caught.value).info
    assert info is not None and info.reason == "GATEWAY_TIMEOUT"


async def test_callers_deadline_bounds_the_upstream_request(stub: Stub, sim: Sim) -> None:
    await sim.fault(op="get", delay=5.0, times=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE, timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The service gave up on the gateway too: the simulator saw the connection go.

    async def upstream_request_dropped() -> bool:
        return await sim.disconnects() == 1

    await eventually(upstream_request_dropped)


async def test_unreachable_gateway_is_unavailable_with_retry_info(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with BatchServer(make_settings(url, tmp_path), gateway_url=url) as server, connect(server.port) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id="b", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    found = details(caught.value)
    assert found.info is not None and found.info.reason == "GATEWAY_UNREACHABLE"
    assert found.retry is not None


async def test_an_unexpected_server_bug_is_internal_without_a_stack_trace(
    stub: Stub, sim: Sim, server: BatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_data: object) -> object:
        raise KeyError("secret internals")

    monkeypatch.setattr("otari_batch_grpc.server.gateway.convert.batch_from_json", broken)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internals" not in (caught.value.details() or "")
    assert "Traceback" not in (caught.value.details() or "")


def test_a_wait_the_callers_deadline_ended_is_said_to_be_the_callers() -> None:
    """The gateway's timeout is the service's to worry about (ERROR); a caller's deadline shorter than the gateway
    takes is the caller's (WARNING), and says so."""
    callers = from_upstream(UpstreamTimeout("get", 0.3, limit=30.0))
    gateways = from_upstream(UpstreamTimeout("get", 30.0, limit=30.0))
    assert (callers.reason, gateways.reason) == ("CALL_DEADLINE_PASSED", "GATEWAY_TIMEOUT")
    assert callers.code.name == gateways.code.name == "DEADLINE_EXCEEDED"
    assert "deadline passed" in callers.message
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    assert (log_level(code, callers), log_level(code, gateways)) == (logging.WARNING, logging.ERROR)


async def test_a_provider_down_a_moment_is_not_taken_for_a_batch_that_is_not_there(stub: Stub, sim: Sim) -> None:
    """The gateway answers an unknown id as it answers a provider that is down (502). A provider that comes back
    between the read and the check (its listing answers) shows the batch when it is asked again: UNAVAILABLE, a
    retry gets it, and the caller keeps it; an id still a 502 then is NOT_FOUND."""
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    await sim.fault(op="get", status=502, detail="LLM provider error", times=1)  # down for one read
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    got = await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)  # still the caller's
    assert got.batch.id == batch.id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_nosuch", provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
