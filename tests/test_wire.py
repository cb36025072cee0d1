"""wire: a result straight from JSON to protobuf bytes follows the same rules as `convert.fill` (the descriptor
walk the batches go through): typed where the type fits, null left unset, everything else kept in `extra`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otari_batch_grpc.server import convert, wire, wire_typed
from otari_batch_grpc.server.results_json import ResultsParser
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1.result_pb2 import BatchResult

NEITHER = "The gateway returned neither a result nor an error for this request"


def reference(data: dict[str, Any]) -> BatchResult:
    """The same rules through message objects and `convert.fill`."""
    item = BatchResult(custom_id=str(data.get("custom_id", "")))
    completion, error = data.get("result"), data.get("error")
    if isinstance(error, dict):
        item.error.SetInParent()
        convert.fill(item.error, error)
    elif error is not None:
        item.error.SetInParent()
        item.error.message = str(error)
    elif isinstance(completion, dict):
        item.completion.SetInParent()
        convert.fill(item.completion, completion)
    else:
        item.error.code, item.error.message = "unknown", NEITHER
    return item


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


# A value of the wrong type for a typed field, often.
odd = st.one_of(
    st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.just([]), st.just({}), json_values
)


def json_object(typed: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with some of the typed keys, each of its type or not, and unknown keys."""
    known = st.fixed_dictionaries({}, optional={key: s | odd for key, s in typed.items()})
    unknown = st.dictionaries(st.sampled_from(["logprobs", "audio", "extra", "annotations", "x"]), json_values)
    return st.tuples(known, unknown).map(lambda pair: {**pair[1], **pair[0]})


def optional_text() -> st.SearchStrategy[Any]:
    return st.none() | st.text(max_size=8)


int64s = st.integers(-(2**63), 2**63 - 1) | st.integers(2**63, 2**65)
function = json_object({"name": st.text(max_size=5), "arguments": st.text(max_size=5)})
tool_call = json_object({"id": st.text(max_size=5), "type": st.just("function"), "function": function})
message = json_object(
    {"role": st.just("assistant"), "content": optional_text(), "refusal": optional_text(),
     "tool_calls": st.none() | st.lists(tool_call, max_size=2)}
)  # fmt: skip
choice = json_object({"index": int64s, "message": message, "finish_reason": optional_text()})
details = json_object({"cached_tokens": st.none() | int64s, "audio_tokens": st.none() | int64s})
usage = json_object(
    {"prompt_tokens": int64s, "completion_tokens": int64s, "total_tokens": int64s,
     "prompt_tokens_details": st.none() | details, "completion_tokens_details": st.none() | details}
)  # fmt: skip
completion = json_object(
    {"id": st.text(max_size=8), "object": st.just("chat.completion"), "created": int64s, "model": st.text(max_size=5),
     "choices": st.lists(choice, max_size=2), "usage": usage, "system_fingerprint": optional_text(),
     "service_tier": optional_text()}
)  # fmt: skip
error = json_object({"code": st.text(max_size=5), "message": st.text(max_size=8)})
custom_ids = st.text(max_size=6) | json_values
items = (
    st.fixed_dictionaries({"custom_id": custom_ids, "result": completion, "error": st.none()})
    | st.fixed_dictionaries({"custom_id": custom_ids, "result": st.none(), "error": error})
    | st.fixed_dictionaries({}, optional={"custom_id": custom_ids, "result": json_values, "error": json_values})
)


@settings(max_examples=1000, deadline=None)
@given(items)
def test_any_result_is_written_as_the_descriptor_walk_would_build_it(item: dict[str, Any]) -> None:
    assert BatchResult.FromString(wire.result(item)) == reference(item)


def test_the_simulators_results_round_trip_with_every_field() -> None:
    state = SimState(stage_seconds=0)
    batch = state.create(
        owner="u1", provider="openai", model="gpt-4o-mini", metadata={}, completion_window="24h",
        requests=[{"custom_id": f"r{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}} for i in range(3)],
    )  # fmt: skip
    for data in state.results(batch):
        written = BatchResult.FromString(wire.result(data))
        assert written == reference(data)
        assert written.completion.choices[0].message.content.startswith("Echo:")
        assert not written.completion.HasField("extra")  # the nulls the gateway sends are "not set": no extra


def test_a_lone_surrogate_is_replaced_rather_than_breaking_the_stream() -> None:
    written = BatchResult.FromString(wire.result({"custom_id": "a\ud800", "error": {"message": "b\udfff"}}))
    assert written.custom_id == "a?" and written.error.message == "b?"


def test_a_message_with_field_kinds_the_plan_does_not_cover_is_refused_when_planned() -> None:
    with pytest.raises(NotImplementedError, match="not planned"):
        wire.Plan(batch_pb2.Batch.DESCRIPTOR)


def typed_parse(results: list[Any]) -> list[BatchResult]:
    """The document as the gateway writes it, through the parser the first stream uses (runs decoded typed)."""
    body = json.dumps({"results": results}, separators=(",", ":"), ensure_ascii=False).encode()
    parser: ResultsParser[bytes] = ResultsParser(wire_typed.results, wire.result)
    written = [*parser.feed(body[: len(body) // 2]), *parser.feed(body[len(body) // 2 :]), *parser.end()]
    return [BatchResult.FromString(w) for w in written]


@settings(max_examples=500, deadline=None)
@given(st.lists(items.filter(lambda i: "custom_id" in i), min_size=1, max_size=4))
def test_the_typed_way_writes_what_the_general_rules_would(results: list[dict[str, Any]]) -> None:
    assert typed_parse(results) == [reference(item) for item in results]


def test_the_gateways_usual_results_take_the_typed_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """any-llm's ChatCompletion with every extra the gateway sends, and errors of both kinds: no item falls back
    to the general (slower) way."""
    state = SimState(stage_seconds=0)
    batch = state.create(
        owner="u1", provider="openai", model="gpt-4o-mini", metadata={}, completion_window="24h",
        requests=[{"custom_id": f"r{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}} for i in range(3)],
    )  # fmt: skip
    results = [
        *state.results(batch),
        {"custom_id": "e1", "result": None, "error": {"code": "rate_limit_exceeded", "message": "slow down"}},
        {"custom_id": "e2", "result": None, "error": "Unexpected response format"},
        {"custom_id": "e3", "result": None, "error": None},
    ]
    expected = [reference(item) for item in results]

    def general(_item: Any) -> bytes:
        raise AssertionError("an item took the general way")

    monkeypatch.setattr(wire, "result", general)
    assert typed_parse(results) == expected
    assert expected[0].completion.choices[0].message.content.startswith("Echo:")
    extra = expected[0].completion.choices[0].message.extra.fields
    assert "annotations" in extra and "reasoning" not in extra  # a value is kept, a null is not set


def test_an_unknown_key_or_a_value_of_another_type_takes_the_general_way() -> None:
    usual = {"custom_id": "a", "result": {"id": "c", "created": 1, "choices": []}, "error": None}
    unknown = {"custom_id": "b", "result": {"id": "c", "novel": {"x": [1, None]}}, "error": None}
    odd = {"custom_id": "c", "result": {"id": 7, "created": "soon", "usage": {"total_tokens": 2**64}}, "error": None}
    results: list[dict[str, Any]] = [usual, unknown, odd]
    written = typed_parse(results)
    assert written == [reference(item) for item in results]
    assert written[1].completion.extra.fields["novel"].struct_value.fields["x"].list_value.values[0].number_value == 1
    assert written[2].completion.extra.fields["id"].number_value == 7 and not written[2].completion.id
