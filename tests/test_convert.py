"""convert: gateway JSON -> proto keeps every field (typed where the type fits, null left unset, everything else
in `extra`); proto -> gateway JSON sends what the caller meant."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.simulator.documents import batch_object, results_document
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1.result_pb2 import BatchResult


def _gateway_batch(**changes: Any) -> dict[str, Any]:
    state = SimState(stage_seconds=0)
    batch = state.create(
        owner="u1", provider="openai", model="gpt-4o-mini",
        requests=[{"custom_id": "a", "body": {}}], metadata={"suite": "proof"}, completion_window="24h",
    )  # fmt: skip
    return {**batch_object(state, batch, "openai"), **changes}


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
    item = convert.result_from_json({"custom_id": "x", "result": None, "error": None})
    assert item.WhichOneof("outcome") == "error" and item.error.code == "unknown"
    assert item.error.message == convert.NEITHER


def test_an_error_that_is_not_an_object_is_the_errors_message() -> None:
    item = convert.result_from_json({"custom_id": "x", "result": None, "error": "Unexpected response format"})
    assert item.WhichOneof("outcome") == "error" and item.error.message == "Unexpected response format"
    assert not item.error.code
    empty = convert.result_from_json({"custom_id": "x", "result": None, "error": ""})
    assert empty.WhichOneof("outcome") == "error" and not empty.error.message


def test_tool_calls_and_null_content_are_typed() -> None:
    completion = {
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}],
        }}],
    }  # fmt: skip
    item = BatchResult.FromString(
        convert.result_from_json({"custom_id": "x", "result": completion, "error": None}).SerializeToString()
    )
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


def _simulated_results() -> list[dict[str, Any]]:
    state = SimState(stage_seconds=0)
    batch = state.create(
        owner="u1", provider="openai", model="gpt-4o-mini", metadata={}, completion_window="24h",
        requests=[{"custom_id": f"r{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}} for i in range(3)],
    )  # fmt: skip
    return results_document(batch)


def test_the_simulators_results_are_typed_and_the_nulls_the_gateway_sends_are_not_set() -> None:
    for data in _simulated_results():
        item = convert.result_from_json(data)
        assert_kept(item.completion, data["result"])
        assert item.completion.choices[0].message.content.startswith("Echo:")
        assert not item.completion.HasField("extra")  # moderation, metadata: null
        assert not item.completion.choices[0].message.HasField("extra")  # annotations: [] is typed; reasoning: null


def test_a_cited_url_is_typed() -> None:
    citation = {"start_index": 3, "end_index": 9, "url": "https://example.com/a", "title": "A", "rank": 1}
    message = {"content": "see A", "annotations": [{"type": "url_citation", "url_citation": citation}]}
    item = convert.result_from_json({"custom_id": "a", "result": {"choices": [{"message": message}]}})
    (annotation,) = item.completion.choices[0].message.annotations
    cited = annotation.url_citation
    assert (annotation.type, cited.start_index, cited.end_index, cited.url, cited.title) == (
        "url_citation",
        3,
        9,
        "https://example.com/a",
        "A",
    )
    assert convert.struct_to_python(cited.extra) == {"rank": 1}


def test_a_lone_surrogate_is_replaced_rather_than_breaking_the_stream() -> None:
    item = convert.result_from_json({"custom_id": "a\ud800", "error": {"message": "b\udfff", "x\ud800": "y"}})
    assert item.custom_id == "a?" and item.error.message == "b?"
    assert item.error.extra.fields["x?"].string_value == "y"


def test_an_unknown_key_or_a_value_of_another_type_goes_to_extra() -> None:
    unknown = convert.result_from_json({"custom_id": "b", "result": {"id": "c", "novel": {"x": [1, None]}}})
    assert unknown.completion.extra.fields["novel"].struct_value.fields["x"].list_value.values[0].number_value == 1
    odd = {"id": 7, "created": "soon", "usage": {"total_tokens": 2**64}}
    item = convert.result_from_json({"custom_id": "c", "result": odd, "error": None})
    assert item.completion.extra.fields["id"].number_value == 7 and not item.completion.id
    assert item.completion.extra.fields["created"].string_value == "soon"
    assert item.completion.usage.extra.fields["total_tokens"].number_value == 2**64


# Any result: some of the typed keys, each of its type or often not, and unknown keys (values of any JSON type).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
odd = st.one_of(
    st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.just([]), st.just({}), json_values
)


def json_object(typed: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    known = st.fixed_dictionaries({}, optional={key: s | odd for key, s in typed.items()})
    unknown = st.dictionaries(st.sampled_from(["logprobs", "audio", "extra", "annotations", "x"]), json_values)
    return st.tuples(known, unknown).map(lambda pair: {**pair[1], **pair[0]})


optional_text = st.none() | st.text(max_size=8)
int64s = st.integers(-(2**63), 2**63 - 1) | st.integers(2**63, 2**65)
function = json_object({"name": st.text(max_size=5), "arguments": st.text(max_size=5)})
tool_call = json_object({"id": st.text(max_size=5), "type": st.just("function"), "function": function})
message = json_object(
    {"role": st.just("assistant"), "content": optional_text, "refusal": optional_text,
     "tool_calls": st.none() | st.lists(tool_call, max_size=2)}
)  # fmt: skip
choice = json_object({"index": int64s, "message": message, "finish_reason": optional_text})
details = json_object({"cached_tokens": st.none() | int64s, "audio_tokens": st.none() | int64s})
usage = json_object(
    {"prompt_tokens": int64s, "completion_tokens": int64s, "total_tokens": int64s,
     "prompt_tokens_details": st.none() | details, "completion_tokens_details": st.none() | details}
)  # fmt: skip
completion = json_object(
    {"id": st.text(max_size=8), "object": st.just("chat.completion"), "created": int64s, "model": st.text(max_size=5),
     "choices": st.lists(choice, max_size=2), "usage": usage, "system_fingerprint": optional_text,
     "service_tier": optional_text}
)  # fmt: skip
error = json_object({"code": st.text(max_size=5), "message": st.text(max_size=8)})


def as_double(value: Any) -> Any:
    """A JSON value as a Struct holds it: every number a double."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: as_double(v) for k, v in value.items()}
    return [as_double(v) for v in value]


def assert_kept(message: Message, data: dict[str, Any]) -> None:
    """Every key of `data` is in `message`: null not set, a typed field holding the value, or `extra` holding it."""
    fields = message.DESCRIPTOR.fields_by_name
    extra = convert.struct_to_python(getattr(message, convert.EXTRA)) if convert.EXTRA in fields else {}
    for key, value in data.items():
        if value is None:
            assert key not in extra
            continue
        if key in extra:
            assert extra[key] == as_double(value)
            continue
        field = fields[key]  # not in extra: a typed field took it
        held = getattr(message, key)
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            assert held == value
        elif field.is_repeated:
            assert len(held) == len(value)
            for one, item in zip(held, value, strict=True):
                assert_kept(one, item)
        else:
            assert message.HasField(key)
            assert_kept(held, value)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=6), completion | error)
def test_any_result_keeps_every_key_typed_or_in_extra(custom_id: str, outcome: dict[str, Any]) -> None:
    as_error = "code" in outcome or "message" in outcome
    data = {"custom_id": custom_id, "result": None if as_error else outcome, "error": outcome if as_error else None}
    item = BatchResult.FromString(convert.result_from_json(data).SerializeToString())
    assert item.custom_id == custom_id
    assert item.WhichOneof("outcome") == ("error" if as_error else "completion")
    assert_kept(item.error if as_error else item.completion, outcome)


@functools.cache
def _kinds_message() -> type[Message]:
    """A message with a field of every kind the contract could add, in a package of its own."""
    file = descriptor_pb2.FileDescriptorProto(
        name="tests/kinds.proto", package="otari.test.kinds", syntax="proto3",
        dependency=["google/protobuf/struct.proto", "google/protobuf/timestamp.proto"],
    )  # fmt: skip
    file.enum_type.add(name="Color").value.extend(
        [
            descriptor_pb2.EnumValueDescriptorProto(name=n, number=i)
            for i, n in enumerate(["COLOR_UNSPECIFIED", "COLOR_DEEP_RED"])
        ]
    )
    inner = file.message_type.add(name="Inner")
    inner.field.add(name="n", number=1, type=FieldDescriptor.TYPE_INT64, label=FieldDescriptor.LABEL_OPTIONAL)
    kinds = file.message_type.add(name="Kinds")
    label, repeated = FieldDescriptor.LABEL_OPTIONAL, FieldDescriptor.LABEL_REPEATED
    fields: list[tuple[str, int, int, str]] = [
        ("i32", FieldDescriptor.TYPE_INT32, label, ""), ("u32", FieldDescriptor.TYPE_UINT32, label, ""),
        ("s64", FieldDescriptor.TYPE_SINT64, label, ""), ("u64", FieldDescriptor.TYPE_UINT64, label, ""),
        ("f64", FieldDescriptor.TYPE_FIXED64, label, ""), ("flt", FieldDescriptor.TYPE_FLOAT, label, ""),
        ("dbl", FieldDescriptor.TYPE_DOUBLE, label, ""), ("raw", FieldDescriptor.TYPE_BYTES, label, ""),
        ("color", FieldDescriptor.TYPE_ENUM, label, ".otari.test.kinds.Color"),
        ("colors", FieldDescriptor.TYPE_ENUM, repeated, ".otari.test.kinds.Color"),
        ("tags", FieldDescriptor.TYPE_STRING, repeated, ""), ("counts", FieldDescriptor.TYPE_INT32, repeated, ""),
        ("at", FieldDescriptor.TYPE_MESSAGE, label, ".google.protobuf.Timestamp"),
        ("inner", FieldDescriptor.TYPE_MESSAGE, label, ".otari.test.kinds.Inner"),
        ("inners", FieldDescriptor.TYPE_MESSAGE, repeated, ".otari.test.kinds.Inner"),
        ("by_name", FieldDescriptor.TYPE_MESSAGE, repeated, ".otari.test.kinds.Kinds.ByNameEntry"),
        ("inner_by_name", FieldDescriptor.TYPE_MESSAGE, repeated, ".otari.test.kinds.Kinds.InnerByNameEntry"),
        ("extra", FieldDescriptor.TYPE_MESSAGE, label, ".google.protobuf.Struct"),
    ]  # fmt: skip
    for number, (name, kind, how, type_name) in enumerate(fields, start=1):
        kinds.field.add(
            name=name, number=number, type=kind, label=how, **({"type_name": type_name} if type_name else {})
        )
    for entry_name, value_type, value_type_name in (
        ("ByNameEntry", FieldDescriptor.TYPE_INT64, ""),
        ("InnerByNameEntry", FieldDescriptor.TYPE_MESSAGE, ".otari.test.kinds.Inner"),
    ):
        entry = kinds.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=FieldDescriptor.TYPE_STRING, label=label)
        value = entry.field.add(name="value", number=2, type=value_type, label=label)
        if value_type_name:
            value.type_name = value_type_name
    pool = descriptor_pool.DescriptorPool()
    for known in (struct_pb2, timestamp_pb2):
        pool.AddSerializedFile(known.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("otari.test.kinds.Kinds"))


def test_a_field_of_any_kind_is_filled_without_knowing_the_message() -> None:
    kinds: Any = _kinds_message()()  # a message class made at run time: no stubs
    convert.fill(kinds, {
        "i32": -5, "u32": 7, "s64": -(2**40), "u64": 2**64 - 1, "f64": 3, "flt": 0.5, "dbl": 1, "color": "deep_red",
        "colors": ["deep_red", "unspecified"], "tags": ["a", "b"], "counts": [1, 2], "at": 1.5, "inner": {"n": 3},
        "inners": [{"n": 1}, {"n": 2, "x": True}], "by_name": {"a": 1}, "inner_by_name": {"k": {"n": 4}},
    })  # fmt: skip
    assert (kinds.i32, kinds.u32, kinds.s64, kinds.u64, kinds.f64) == (-5, 7, -(2**40), 2**64 - 1, 3)
    assert (kinds.flt, kinds.dbl, kinds.color, list(kinds.colors)) == (0.5, 1.0, 1, [1, 0])
    assert (list(kinds.tags), list(kinds.counts), kinds.at.ToNanoseconds()) == (["a", "b"], [1, 2], 1_500_000_000)
    assert kinds.inner.n == 3 and [i.n for i in kinds.inners] == [1, 2]
    assert kinds.inners[1].DESCRIPTOR.fields_by_name.get("extra") is None  # no `extra`: the odd key is dropped
    assert dict(kinds.by_name) == {"a": 1} and kinds.inner_by_name["k"].n == 4
    assert not kinds.HasField("extra")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("i32", 2**31), ("u32", -1), ("u64", -1), ("f64", 2**64), ("s64", 2**63), ("dbl", "1"),
        ("raw", "aGk="), ("colors", ["deep_red", "blue"]), ("tags", ["a", 1]), ("counts", [2**31]), ("at", "soon"),
        ("at", 1e30), ("inner", [1]), ("inners", [{"n": 1}, 2]), ("by_name", {"a": "b"}), ("inner_by_name", {"k": 1}),
        ("i32", True), ("dbl", False),
    ],
)  # fmt: skip
def test_a_value_that_does_not_fit_its_field_is_kept_in_extra(key: str, value: Any) -> None:
    kinds: Any = _kinds_message()()  # a message class made at run time: no stubs
    convert.fill(kinds, {key: value})
    assert [field.name for field, _ in kinds.ListFields()] == ["extra"]  # nothing typed set
    assert convert.struct_to_python(kinds.extra)[key] == as_double(value)
