"""tokens: what the service issues comes back whole; whatever else a caller sends is INVALID_ARGUMENT naming the
field, with a short message (never an exception from a decoder, never a value downstream cannot hold). And
quoting: a caller's value in a message is a short, always-encodable prefix."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otari_batch_grpc.server import tokens
from otari_batch_grpc.server.errors import Code, ServiceError
from otari_batch_grpc.server.quoting import quoted
from otari_batch_grpc.server.validation import MAX_ID_CHARS


def _token(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _fields(**fields: object) -> str:
    return _token(json.dumps({"v": 1, **fields}))


def _nested(depth: int) -> str:
    return _token("[" * depth + "]" * depth)


LIST = "page_token"
RESUME = "resume_token"
# Each decoder, called as ListBatches, WatchBatch and WatchBatches call it.
DECODERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "list": (LIST, lambda t: tokens.list_position(t, "openai")),
    "watch": (RESUME, lambda t: tokens.rev_of_resume_token(t, "batch_1")),
    "many": (RESUME, lambda t: tokens.seq_of_many_resume_token(t, [])),
}


def rejected(kind: str, token: str) -> ServiceError:
    field, decode = DECODERS[kind]
    with pytest.raises(ServiceError) as caught:
        decode(token)
    error = caught.value
    assert error.code == Code.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == [field]
    assert len(error.message) < 300, error.message
    error.to_status().SerializeToString()  # it can be sent: no lone surrogate, nothing unencodable
    return error


# -- what the service issues comes back -------------------------------------------------------------------------
def test_issued_tokens_round_trip() -> None:
    assert tokens.list_position(tokens.list_token((1.7e9, 1.7e9 + 0.5, "batch_1"), "openai"), "OpenAI") == (
        1.7e9,
        1.7e9 + 0.5,
        "batch_1",
    )
    assert tokens.rev_of_resume_token(tokens.resume_token("batch_1", 7), "batch_1") == 7
    assert tokens.seq_of_many_resume_token(tokens.many_resume_token(9, ["b", "a"]), ["a", "b", "a"]) == 9
    assert tokens.seq_of_many_resume_token(tokens.many_resume_token(0, []), []) == 0


def test_the_longest_tokens_issued_fit_the_bound() -> None:
    """An id and a provider of MAX_ID_CHARS characters of four UTF-8 bytes each, quotes and backslashes (escaped in
    JSON) and the widest floats: still under MAX_TOKEN_CHARS, and decoded back."""
    for unit in ("\U0001f600", '"', "\\"):
        longest = unit * MAX_ID_CHARS
        position = (-1.2345678901234567e-300, 1.7976931348623157e308 / 2**1000, longest)
        listed = tokens.list_token((-(2.0**40), -1.2345678901234567e-10, longest), longest)
        assert len(listed) <= tokens.MAX_TOKEN_CHARS
        assert tokens.list_position(listed, longest)[2] == longest
        resume = tokens.resume_token(longest, tokens.MAX_REVISION - 1)
        assert len(resume) <= tokens.MAX_TOKEN_CHARS
        assert tokens.rev_of_resume_token(resume, longest) == tokens.MAX_REVISION - 1
        assert len(tokens.list_token(position, longest)) <= tokens.MAX_TOKEN_CHARS


def test_tokens_issued_before_utf8_encoding_still_decode() -> None:
    """Tokens were once JSON with \\u escapes: the same position comes back from those."""
    old = _token(json.dumps({"v": 1, "at": 1.0, "seen": 2.0, "after": "bätch", "provider": "öpenai"}))
    assert tokens.list_position(old, "öpenai") == (1.0, 2.0, "bätch")


# -- and nothing else --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(DECODERS))
@pytest.mark.parametrize(
    "token",
    [
        _nested(1_000),  # RecursionError in json.loads
        _nested(3_000),
        _token('{"v":1,"a":' * 2_000 + "1" + "}" * 2_000),
        "A" * 100_000,  # past MAX_TOKEN_CHARS before anything is decoded
        "A" * (tokens.MAX_TOKEN_CHARS + 1),
        "x",  # not base64 (one character of a quantum)
        "é",  # not ASCII
        "\x00\x01",
        _token(b"\xff\xfe\x00"),  # not UTF-8
        _token("1" * 5_000),  # an int past Python's digit limit
        _token("[]"),
        _token('"v"'),
        _token("null"),
        _fields(),
        _token('{"v":2}'),
        _token('{"v":true,"batch":"batch_1","rev":1,"seq":1,"set":"all"}'),
        _token('{"v":1.0,"batch":"batch_1","rev":1,"seq":1,"set":"all"}'),
        _token('{"v":"1","batch":"batch_1","rev":1,"seq":1,"set":"all"}'),
    ],
)
def test_malformed_tokens_are_invalid_argument(kind: str, token: str) -> None:
    rejected(kind, token)


@pytest.mark.parametrize(
    "fields",
    [
        {"at": float("inf"), "seen": 0, "after": "x", "provider": "openai"},
        {"at": 0, "seen": float("-inf"), "after": "x", "provider": "openai"},
        {"at": float("nan"), "seen": 0, "after": "x", "provider": "openai"},
        {"at": 10**400 // 10**100, "seen": 0, "after": "x", "provider": "openai"},  # float() of it overflows
        {"at": 2**40 + 1, "seen": 0, "after": "x", "provider": "openai"},
        {"at": -1e300, "seen": 0, "after": "x", "provider": "openai"},
        {"at": True, "seen": 0, "after": "x", "provider": "openai"},
        {"at": "1", "seen": 0, "after": "x", "provider": "openai"},
        {"at": 0, "seen": None, "after": "x", "provider": "openai"},
        {"at": 0, "seen": 0, "after": "x" * 100_000, "provider": "openai"},  # the cursor, bounded as an id
        {"at": 0, "seen": 0, "after": "x" * (MAX_ID_CHARS + 1), "provider": "openai"},
        {"at": 0, "seen": 0, "after": "", "provider": "openai"},
        {"at": 0, "seen": 0, "after": "a b", "provider": "openai"},
        {"at": 0, "seen": 0, "after": "\ud800", "provider": "openai"},  # SQLite cannot bind a lone surrogate
        {"at": 0, "seen": 0, "after": "\x00", "provider": "openai"},
        {"at": 0, "seen": 0, "after": ["x"], "provider": "openai"},
        {"at": 0, "seen": 0, "after": "x", "provider": "o" * 100_000},
        {"at": 0, "seen": 0, "after": "x", "provider": "\ud800"},
        {"at": 0, "seen": 0, "after": "x", "provider": None},
        {"at": 0, "seen": 0, "after": "x"},
    ],
)
def test_list_tokens_out_of_range_are_invalid_argument(fields: dict[str, object]) -> None:
    rejected("list", _fields(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"batch": "batch_1", "rev": -1},
        {"batch": "batch_1", "rev": 2**62},
        {"batch": "batch_1", "rev": 2**63},  # past SQLite's integers
        {"batch": "batch_1", "rev": 10**300},
        {"batch": "batch_1", "rev": 1.0},
        {"batch": "batch_1", "rev": True},
        {"batch": "batch_1", "rev": float("inf")},
        {"batch": "batch_1"},
        {"batch": "\ud800", "rev": 1},  # echoed, it made a status that cannot be encoded
        {"batch": "b" * 100_000, "rev": 1},
        {"batch": 1, "rev": 1},
    ],
)
def test_watch_tokens_out_of_range_are_invalid_argument(fields: dict[str, object]) -> None:
    rejected("watch", _fields(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"seq": -1, "set": "all"},
        {"seq": 2**64, "set": "all"},
        {"seq": 1.5, "set": "all"},
        {"seq": False, "set": "all"},
        {"seq": 1, "set": "x" * 100_000},
        {"seq": 1, "set": "0123456789abcdeg"},
        {"seq": 1, "set": None},
        {"seq": 1},
    ],
)
def test_watch_many_tokens_out_of_range_are_invalid_argument(fields: dict[str, object]) -> None:
    rejected("many", _fields(**fields))


def test_a_token_for_another_batch_or_provider_says_so_briefly() -> None:
    other = "o" * MAX_ID_CHARS
    error = rejected("watch", tokens.resume_token(other, 1))
    assert "was issued for batch 'oooo" in error.message and f"({MAX_ID_CHARS} characters)" in error.message
    error = rejected("list", tokens.list_token((1.0, 1.0, "b"), other))
    assert "was issued for provider 'oooo" in error.message
    error = rejected("list", tokens.list_token((1.0, 1.0, "b"), ""))
    assert "every provider" in error.message
    error = rejected("many", tokens.many_resume_token(1, ["a"]))
    assert "same batch_ids" in error.message


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.one_of(
        st.text(),
        st.binary().map(_token),
        st.recursive(
            st.integers() | st.floats() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
        ).map(lambda v: _token(json.dumps(v))),
    )
)
def test_any_token_is_accepted_or_invalid_argument(token: str) -> None:
    for field, decode in DECODERS.values():
        try:
            decode(token)
        except ServiceError as error:
            assert error.code == Code.INVALID_ARGUMENT
            assert [v.field for v in error.violations] == [field]
            error.to_status().SerializeToString()


# -- quoting -------------------------------------------------------------------------------------------------------
def test_quoted_keeps_a_short_value_whole() -> None:
    assert quoted("gpt-4o") == "'gpt-4o'"
    assert quoted("x" * 40) == repr("x" * 40)
    assert quoted("") == "''"


def test_quoted_cuts_a_long_value_and_says_how_long() -> None:
    assert quoted("m" * 100_000) == f"{'m' * 40!r}… (100,000 characters)"
    assert quoted("abcdef", limit=3) == "'abc'… (6 characters)"
    assert quoted("abc", limit=0) == "''… (3 characters)"


def test_quoted_escapes_what_a_message_cannot_carry() -> None:
    text = quoted("\ud800\x00\n\u202e" * 100)
    text.encode()  # a lone surrogate, escaped, encodes
    assert "\\ud800" in text and "\\x00" in text and "\\n" in text and "\u202e" not in text


@settings(database=None)
@given(st.text(), st.integers(0, 100))
def test_quoted_is_bounded(value: str, limit: int) -> None:
    text = quoted(value, limit)
    assert len(text) <= 10 * limit + 30
    text.encode()


def test_quoted_refuses_a_negative_limit() -> None:
    with pytest.raises(ValueError):
        quoted("x", -1)
