"""convert: gateway JSON -> proto keeps every field; proto -> gateway JSON sends what the caller meant."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from otari_batch_grpc.server import convert, wire
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1.result_pb2 import BatchResult


def _gateway_batch(**changes: Any) -> dict[str, Any]:
    state = SimState(stage_seconds=0)
    batch = state.create(
        owner="u1", provider="openai", model="gpt-4o-mini",
        requests=[{"custom_id": "a", "body": {}}], metadata={"suite": "proof"}, completion_window="24h",
    )  # fmt: skip
    return {**state.to_json(batch, "openai"), **changes}


def test_every_batch_field_lands_in_a_typed_field() -> None:
    data = _gateway_batch()
    batch = convert.batch_from_json(data)
    assert batch.status == batch_pb2.BATCH_STATUS_COMPLETED
    assert batch.completed_at.seconds == data["completed_at"]
    assert batch.request_counts.completed == 1
    assert batch.usage.total_tokens == data["usage"]["total_tokens"]
    assert not batch.HasField("extra")  # nothing left over: the contract types the whole Batch


def test_an_unknown_status_does_not_break_the_batch() -> None:
    batch = convert.batch_from_json(_gateway_batch(status="paused_for_lunch"))
    assert batch.status == batch_pb2.BATCH_STATUS_UNSPECIFIED
    assert batch.upstream_status == "paused_for_lunch"


def test_fields_the_contract_does_not_know_or_of_another_type_are_kept_in_extra() -> None:
    batch = convert.batch_from_json(_gateway_batch(new_field={"a": 1}, created_at="yesterday"))
    extra = json_format.MessageToDict(batch.extra)
    assert extra == {"new_field": {"a": 1.0}, "created_at": "yesterday"}
    assert not batch.HasField("created_at")


def test_batch_errors_list_is_unwrapped() -> None:
    errors = {"object": "list", "data": [{"code": "invalid_json", "message": "bad line", "param": None, "line": 3}]}
    batch = convert.batch_from_json(_gateway_batch(errors=errors, status="failed"))
    assert [(e.code, e.message, e.line, e.HasField("param")) for e in batch.errors] == [
        ("invalid_json", "bad line", 3, False)
    ]


def test_a_result_with_neither_result_nor_error_is_reported_as_an_error() -> None:
    item = BatchResult.FromString(wire.result({"custom_id": "x", "result": None, "error": None}))
    assert item.WhichOneof("outcome") == "error" and item.error.code == "unknown"


def test_tool_calls_and_null_content_are_typed() -> None:
    completion = {
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}],
        }}],
    }  # fmt: skip
    item = BatchResult.FromString(wire.result({"custom_id": "x", "result": completion, "error": None}))
    message = item.completion.choices[0].message
    assert not message.HasField("content")
    assert message.tool_calls[0].function.arguments == '{"x": 1}'


def test_struct_whole_numbers_go_to_the_gateway_as_integers() -> None:
    struct = struct_pb2.Struct()
    struct.update({"max_tokens": 100, "temperature": 0.5, "nested": {"n": [1, 2.5]}, "flag": True, "none": None})
    assert convert.struct_to_python(struct) == {
        "max_tokens": 100, "temperature": 0.5, "nested": {"n": [1, 2.5]}, "flag": True, "none": None,
    }  # fmt: skip
    assert isinstance(convert.struct_to_python(struct)["max_tokens"], int)


def test_a_struct_value_with_no_kind_set_goes_as_null() -> None:
    struct = struct_pb2.Struct()
    struct.fields["unset"].SetInParent()
    struct.fields["null"].null_value = struct_pb2.NULL_VALUE
    assert convert.struct_to_python(struct) == {"unset": None, "null": None}
