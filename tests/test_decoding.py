"""Requests are decoded by the service, not by grpcio: bytes that are not a valid request get INVALID_ARGUMENT with a
reason and a message (grpcio's own decoding answered UNKNOWN "Unexpected DecodeError" with a traceback), and the
call gets its log line like any other. Raw bytes through a real channel to a real server, for every RPC."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest

from otari_batch_grpc.server.app import SERVICE_NAME
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc
from tests.conftest import ALICE, create_request, details, eventually

METHODS = pb.DESCRIPTOR.services_by_name["BatchService"].methods


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _deep_struct(depth: int) -> bytes:
    """A CreateBatchRequest whose first request's body (a Struct) nests `depth` Structs: {"a": {"a": ...}}."""
    value = _field(3, b"x")  # Value.string_value
    for _ in range(depth):
        value = _field(5, _field(1, _field(1, b"a") + _field(2, value)))  # Value.struct_value{fields{"a": value}}
    body = _field(1, _field(1, b"a") + _field(2, value))  # Struct.fields
    return _field(1, b"openai:gpt-4o-mini") + _field(2, _field(1, b"q1") + _field(2, body))


# Field 99, unknown to every request: groups nested 200 deep (protobuf stops at 100).
_DEEP_GROUPS = _varint(99 << 3 | 3) * 200 + _varint(99 << 3 | 4) * 200

CASES = {
    "garbage": (b"\xff\xff\xff\xff\xff\xff", "not a serialized message"),
    "truncated": (_field(1, b"batch_0123456789")[:-3], "not a serialized message"),
    # field 1 is a string in every request (UploadBatch's is its header, whose field 1 is: see the test)
    "bad-utf8": (_field(1, b"batch_\xff\xfe"), "not valid UTF-8"),
    "deep-groups": (_DEEP_GROUPS, "not a serialized message"),
}


def _unary(channel: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A method called with bytes as they are (no serializer): the server sees exactly these."""
    return channel.unary_unary(f"/{SERVICE_NAME}/{name}")


def _streaming(channel: grpc.aio.Channel, name: str) -> grpc.aio.UnaryStreamMultiCallable[bytes, bytes]:
    return channel.unary_stream(f"/{SERVICE_NAME}/{name}")


async def _call(channel: grpc.aio.Channel, name: str, server_streaming: bool, raw: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if server_streaming:
            async for _ in _streaming(channel, name)(raw, metadata=ALICE, timeout=10):
                pass
        else:
            await _unary(channel, name)(raw, metadata=ALICE, timeout=10)
    return caught.value


def _rpc_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "otari_batch_grpc.rpc"]
    return [line for line in lines if line.get("event") == "rpc"]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", [m.name for m in METHODS])
async def test_bytes_that_are_not_a_request_are_invalid_argument(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture, method: str, case: str
) -> None:
    caplog.set_level(logging.INFO, logger="otari_batch_grpc.rpc")
    raw, why = CASES[case]
    descriptor = pb.DESCRIPTOR.services_by_name["BatchService"].methods_by_name[method]
    if case == "bad-utf8" and descriptor.input_type.fields_by_number[1].message_type is not None:
        raw = _field(1, raw)  # the string one level down
    error = await _call(channel, method, descriptor.server_streaming, raw)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert why in (error.details() or "")
    assert descriptor.input_type.full_name in (error.details() or "")
    found = details(error)
    assert found.info is not None and found.info.reason == "MALFORMED_REQUEST"
    assert found.info.metadata["message_type"] == descriptor.input_type.full_name
    # One log line, like any other call, and no traceback. It is written as the call ends on the server, which may
    # be just after the client has its status.

    async def logged() -> bool:
        return bool(_rpc_lines(caplog))

    await eventually(logged)
    assert [(line["method"], line["code"]) for line in _rpc_lines(caplog)] == [(method, "INVALID_ARGUMENT")]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_struct_nested_past_the_limit_is_invalid_argument(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otari_batch_grpc.rpc")
    error = await _call(channel, "CreateBatch", False, _deep_struct(150))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested deeper than protobuf's limit" in (error.details() or "")

    async def logged() -> bool:
        return bool(_rpc_lines(caplog))

    await eventually(logged)
    assert [line["code"] for line in _rpc_lines(caplog)] == ["INVALID_ARGUMENT"]
    # The same shape, shallow, is a request (it gets past decoding: the simulator creates the batch).
    created = pb.CreateBatchResponse.FromString(
        await _unary(channel, "CreateBatch")(_deep_struct(3), metadata=ALICE, timeout=10)
    )
    assert created.batch.id


async def test_the_server_keeps_serving_after_bad_bytes(channel: grpc.aio.Channel) -> None:
    for method in METHODS:
        for raw, _ in CASES.values():
            assert (await _call(channel, method.name, method.server_streaming, raw)).code() == (
                grpc.StatusCode.INVALID_ARGUMENT
            )
    stub = batch_service_pb2_grpc.BatchServiceStub(channel)
    created = await stub.CreateBatch(create_request(1), metadata=ALICE, timeout=10)
    watch: Any = stub.WatchBatch(pb.WatchBatchRequest(batch_id=created.batch.id), metadata=ALICE, timeout=10)
    snapshot = await watch.read()
    assert snapshot is not grpc.aio.EOF and snapshot.event.batch.id == created.batch.id
    watch.cancel()


async def test_an_empty_request_is_a_request(channel: grpc.aio.Channel) -> None:
    """Zero bytes are a valid message (every field at its default): the handler's own validation answers."""
    error = await _call(channel, "GetBatch", False, b"")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(error)
    assert found.info is not None and found.info.reason != "MALFORMED_REQUEST"
    assert "batch_id" in found.fields
