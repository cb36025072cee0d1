"""results_json: whatever the chunking, spacing or content, the parser yields exactly the document's items."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otari_batch_grpc.server.gateway.results_document import JSON, ResultsDocumentError, ResultsParser, plain

# Strings that look like the separator, nested objects with a custom_id key, non-ASCII text, big numbers.
tricky_text = st.sampled_from(['},{"custom_id":', '"}', "\\", "é中😀", "]}", ""]) | st.text(max_size=6)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["custom_id", "content", "x"]) | tricky_text, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
item = st.fixed_dictionaries({"custom_id": tricky_text, "result": values, "error": values})
documents = st.lists(item, max_size=12)


def parse(body: bytes, cuts: list[int]) -> list[Any]:
    parser: ResultsParser[JSON] = ResultsParser(plain, lambda item: item)
    items, at = [], 0
    for cut in sorted(c % (len(body) + 1) for c in cuts):
        items += parser.feed(body[at:cut])
        at = cut
    items += parser.feed(body[at:])
    return items + parser.end()


def layout(results: list[Any], style: str) -> bytes:
    if style == "compact":  # how the gateway writes it
        return json.dumps({"results": results}, separators=(",", ":"), ensure_ascii=False).encode()
    if style == "spaced":
        return json.dumps({"results": results}, indent=1).encode()
    if style == "keys first":
        return json.dumps({"object": "list", "results": results}).encode()
    return json.dumps({"results": results}, separators=(",", ":")).encode() + b"  \n"  # trailing space


@settings(max_examples=400, deadline=None)
@given(documents, st.lists(st.integers(0, 10**6), max_size=8), st.sampled_from(["compact", "spaced", "keys", "x"]))
def test_any_document_in_any_chunks_gives_its_items(results: list[Any], cuts: list[int], style: str) -> None:
    assert parse(layout(results, style), cuts) == results


def test_a_large_compact_document_goes_mostly_through_the_fast_path() -> None:
    results = [{"custom_id": f"r{i}", "result": {"text": "x" * 50, "n": i}, "error": None} for i in range(500)]
    body = layout(results, "compact")
    parser: ResultsParser[JSON] = ResultsParser(plain, lambda item: item)
    items = []
    for at in range(0, len(body), 4096):
        items += parser.feed(body[at : at + 4096])
        assert parser._exact is None  # whole runs of items decoded at once, not item by item
    assert items + parser.end() == results


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"results": [{"custom_id": "a"}', "ends early"),
        (b'{"results": [{"custom_id": "a"}, 7]}', "not a list of"),
        (b'{"results": [{"id": "a"}]}', "not a list of"),
        (b'{"data": []}', "not a list of"),
        (b"<html>", "not JSON"),
    ],
)
def test_a_body_that_is_not_a_results_document_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(ResultsDocumentError, match=message):
        parse(body, [len(body) // 2])
