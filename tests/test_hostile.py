"""Hostile input gets INVALID_ARGUMENT naming the field, never INTERNAL and never a call upstream."""

from __future__ import annotations

import base64
import json
import math
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, Sim, create_request, details

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub


def _token(**fields: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": 1, **fields}).encode()).decode().rstrip("=")


@pytest.mark.parametrize("batch_id", [".", "..", "x/cancel", "a/b/results", "a%2Fb/c"])
async def test_a_dot_id_would_address_another_route(stub: Stub, sim: Sim, batch_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id, provider="openai"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["batch_id"]
    assert await sim.requests_seen() == 0


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
async def test_a_non_finite_number_in_a_body_names_its_path(stub: Stub, sim: Sim, number: float) -> None:
    request = create_request(2)
    nested = struct_pb2.Struct()
    nested.update({"temperature": number})
    request.requests[1].body.fields["options"].list_value.values.add().struct_value.CopyFrom(nested)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["requests[1].body.options[0].temperature"]
    assert await sim.requests_seen() == 0


async def test_a_wait_of_2_to_the_62_seconds_is_capped_not_a_crash(stub: Stub) -> None:
    batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
    request = pb.WaitBatchRequest(batch_id=batch.id, timeout=duration_pb2.Duration(seconds=2**62))
    reply = await stub.WaitBatch(request, metadata=ALICE, timeout=1.0)  # answered before the deadline
    assert reply.batch.id == batch.id and not reply.done


@pytest.mark.parametrize(
    ("method", "token"),
    [
        ("watch", _token(batch="b", rev=2**63)),
        ("many", _token(seq=2**64, set="all")),
        ("list", _token(at=float("inf"), seen=0, after="x", provider="")),
    ],
)
async def test_out_of_range_numbers_in_tokens_are_invalid_argument(stub: Stub, method: str, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if method == "watch":
            call = stub.WatchBatch(
                pb.WatchBatchRequest(batch_id="b", provider="openai", resume_token=token), metadata=ALICE
            )
            await call.read()
        elif method == "many":
            await stub.WatchBatches(pb.WatchBatchesRequest(resume_token=token), metadata=ALICE).read()
        else:
            await stub.ListBatches(pb.ListBatchesRequest(page_token=token), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields[0] in ("resume_token", "page_token")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "m" * 100_000}, "model"),
        ({"request_id": "r" * 100_000}, "request_id"),
        ({"metadata": {"k" * 100_000: "v"}}, "metadata["),
        ({"metadata": {f"{'k' * 70}{i}": "v" * 600 for i in range(2_000)}}, "metadata"),
    ],
    ids=["model", "request_id", "metadata key", "2,000 bad metadata pairs"],
)
async def test_huge_values_get_a_short_invalid_argument(stub: Stub, fields: dict[str, Any], field: str) -> None:
    request = create_request(1)
    for name, value in fields.items():
        if isinstance(value, dict):
            getattr(request, name).update(value)
        else:
            setattr(request, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED "Stream removed"
    found = details(caught.value)
    assert found.fields[0].startswith(field)
    assert len(caught.value.details() or "") <= 400
    status_bytes = sum(len(v) for k, v in caught.value.trailing_metadata() or () if k == "grpc-status-details-bin")
    assert status_bytes < 8_000
