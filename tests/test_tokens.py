"""tokens: what the service issues comes back whole to the caller it was issued to; it tells nothing and cannot be
forged; whatever else a caller sends is INVALID_ARGUMENT naming the field, with a short message (never an exception
from a decoder, never a value downstream cannot hold), and a token of a retired key FAILED_PRECONDITION. And
quoting: a caller's value in a message is a short, always-encodable prefix."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otari_batch_grpc.server.domain import tokens
from otari_batch_grpc.server.domain.errors import Code, ServiceError
from otari_batch_grpc.server.domain.tokens import CallerTokens, ManyPosition, TokenKeys, TokenKeysError
from otari_batch_grpc.server.util.ids import MAX_ID_CHARS
from otari_batch_grpc.server.util.quoting import quoted

SECRET = "s" * 32
KEYS = TokenKeys.parse(f"1:{SECRET}")
OWNER = "a" * 64  # a caller, as the service knows it (the keyed hash of its key)
ALICE = CallerTokens(KEYS, OWNER)


def _token(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _sealed(kind: str, **fields: object) -> str:
    """A token sealed with the service's own key for alice: what only a leaked key could make say this."""
    return KEYS.seal(kind, OWNER, fields)


def _nested(depth: int) -> str:
    return _token("[" * depth + "]" * depth)


LIST = "page_token"
RESUME = "resume_token"
# Each decoder, called as ListBatches, WatchBatch and WatchBatches call it, for alice.
DECODERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "list": (LIST, lambda t: ALICE.page_position(t, "openai")),
    "watch": (RESUME, lambda t: ALICE.resume_rev(t, "batch_1")),
    "many": (RESUME, lambda t: ALICE.many_position(t, [])),
}
ISSUED = {
    "list": lambda tokens: tokens.page((1.0, 2.0, "batch_1"), "openai"),
    "watch": lambda tokens: tokens.resume("batch_1", 7),
    "many": lambda tokens: tokens.many(ManyPosition(9, 1.7e9, "ab12"), []),
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
    assert ALICE.page_position(ALICE.page((1.7e9, 1.7e9 + 0.5, "batch_1"), "openai"), "OpenAI") == (
        1.7e9,
        1.7e9 + 0.5,
        "batch_1",
    )
    assert ALICE.resume_rev(ALICE.resume("batch_1", 7), "batch_1") == 7
    here = ManyPosition(9, 1.7e9 + 0.25, "0123456789abcdef0123456789abcdef")
    assert ALICE.many_position(ALICE.many(here, ["b", "a"]), ["a", "b", "a"]) == here
    assert ALICE.many_position(ALICE.many(ManyPosition(0), []), []) == ManyPosition(0, 0.0, "")
    assert ALICE.many_position(_sealed("many", seq=4, set="all"), []) == ManyPosition(4)  # sealed before at and by


def test_the_longest_tokens_issued_fit_the_bound() -> None:
    """An id and a provider of MAX_ID_CHARS characters of four UTF-8 bytes each, quotes and backslashes (escaped in
    JSON) and the widest floats: still under MAX_TOKEN_CHARS, and opened back."""
    for unit in ("\U0001f600", '"', "\\"):
        longest = unit * MAX_ID_CHARS
        position = (-1.2345678901234567e-300, 1.7976931348623157e308 / 2**1000, longest)
        listed = ALICE.page((-(2.0**40), -1.2345678901234567e-10, longest), longest)
        assert len(listed) <= tokens.MAX_TOKEN_CHARS
        assert ALICE.page_position(listed, longest)[2] == longest
        resume = ALICE.resume(longest, tokens.MAX_REVISION - 1)
        assert len(resume) <= tokens.MAX_TOKEN_CHARS
        assert ALICE.resume_rev(resume, longest) == tokens.MAX_REVISION - 1
        assert len(ALICE.page(position, longest)) <= tokens.MAX_TOKEN_CHARS


# -- they tell nothing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_a_token_reads_as_noise_and_never_twice_alike(kind: str) -> None:
    """Nothing of what a token holds shows in it (no id, no number, no JSON); two tokens of one position, and two
    callers' tokens of one position, differ (no comparing them to learn whether anything moved)."""
    first, again = ISSUED[kind](ALICE), ISSUED[kind](ALICE)
    bob = ISSUED[kind](CallerTokens(KEYS, "b" * 64))
    assert len({first, again, bob}) == 3
    for token in (first, again, bob):
        raw = _raw(token)
        assert b"batch_1" not in raw and b"openai" not in raw and b'":' not in raw


# -- and cannot be forged ---------------------------------------------------------------------------------------
def test_the_forged_token_of_the_issue_is_invalid_argument() -> None:
    """#29: base64url JSON choosing its own position was taken as a page token."""
    forged = _token(json.dumps({"v": 1, "at": 2**39, "seen": 2**39, "after": "zzzz", "provider": ""}))
    rejected("list", forged)


@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_any_byte_altered_is_invalid_argument(kind: str) -> None:
    raw = bytearray(_raw(ISSUED[kind](ALICE)))
    for index in range(3, len(raw)):  # every byte past the version and generation (those are tested below)
        altered = bytearray(raw)
        altered[index] ^= 0x01
        rejected(kind, _token(bytes(altered)))
    rejected(kind, _token(bytes(raw[:-1])))  # cut short
    rejected(kind, _token(bytes(raw) + b"\0"))  # one byte more


@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_another_callers_token_is_invalid_argument_and_says_so(kind: str) -> None:
    error = rejected(kind, ISSUED[kind](CallerTokens(KEYS, "b" * 64)))
    assert "another caller's" in error.message


@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_a_token_of_another_kind_is_invalid_argument(kind: str) -> None:
    for other in sorted(set(ISSUED) - {kind}):
        rejected(kind, ISSUED[other](ALICE))


@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_a_token_sealed_with_another_key_is_invalid_argument(kind: str) -> None:
    """Reading the state database gives no token key: one made up, even of the right generation, is refused."""
    elsewhere = CallerTokens(TokenKeys.parse(f"1:{'x' * 32}"), OWNER)
    rejected(kind, ISSUED[kind](elsewhere))
    newer = CallerTokens(TokenKeys.parse(f"9:{'x' * 32}"), OWNER)  # a generation the service does not hold
    rejected(kind, ISSUED[kind](newer))


# -- keys rotate ------------------------------------------------------------------------------------------------
OPENERS: dict[str, Callable[[str, CallerTokens], object]] = {
    "list": lambda token, tokens: tokens.page_position(token, "openai"),
    "watch": lambda token, tokens: tokens.resume_rev(token, "batch_1"),
    "many": lambda token, tokens: tokens.many_position(token, []),
}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("list", "PAGE_TOKEN_EXPIRED"), ("watch", "RESUME_TOKEN_EXPIRED"), ("many", "RESUME_TOKEN_EXPIRED")],
)
def test_a_rotation_opens_both_generations_then_retires_the_old_one(kind: str, reason: str) -> None:
    old = ISSUED[kind](ALICE)  # generation 1
    rotated = CallerTokens(TokenKeys.parse(f"2:{'n' * 32},1:{SECRET}"), OWNER)
    new = ISSUED[kind](rotated)
    assert _raw(new)[1:3] == (2).to_bytes(2, "big") and _raw(old)[1:3] == (1).to_bytes(2, "big")
    opener = OPENERS[kind]
    opener(old, rotated)
    opener(new, rotated)
    retired = CallerTokens(TokenKeys.parse(f"2:{'n' * 32}"), OWNER)
    opener(new, retired)
    with pytest.raises(ServiceError) as caught:
        opener(old, retired)
    assert caught.value.code == Code.FAILED_PRECONDITION and caught.value.reason == reason
    assert "start over" in caught.value.message or "first page" in caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "<generation>:<secret>"),
        ("secret-without-generation-xxxxxxxxxxxx", "<generation>:<secret>"),
        ("x:" + "s" * 32, "<generation>:<secret>"),
        ("1:" + "s" * 31, "shorter than 32"),
        ("0:" + "s" * 32, "not within"),
        ("65536:" + "s" * 32, "not within"),
        (f"1:{'s' * 32},1:{'t' * 32}", "given twice"),
    ],
)
def test_a_keyring_that_cannot_be_read_is_refused_and_said_why(text: str, message: str) -> None:
    with pytest.raises(TokenKeysError, match=message):
        TokenKeys.parse(text)


# -- and nothing else --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(DECODERS))
@pytest.mark.parametrize(
    "token",
    [
        _nested(1_000),
        _token('{"v":1,"a":' * 2_000 + "1" + "}" * 2_000),
        "A" * 100_000,  # past MAX_TOKEN_CHARS before anything is decoded
        "A" * (tokens.MAX_TOKEN_CHARS + 1),
        "x",  # not base64 (one character of a quantum)
        "é",  # not ASCII
        "\x00\x01",
        _token(b"\xff\xfe\x00"),
        _token(b"\x02\x00\x01"),  # a header and nothing sealed
        _token(b"\x02\x00\x00" + b"\x00" * 40),  # generation 0: never issued
        _token(b"\x01\x00\x01" + b"\x00" * 40),  # another version
        _token("[]"),
        _token('{"v":1,"batch":"batch_1","rev":1,"seq":1,"set":"all","at":1,"seen":1,"after":"b","provider":""}'),
    ],
)
def test_malformed_tokens_are_invalid_argument(kind: str, token: str) -> None:
    rejected(kind, token)


# What only a leaked key could seal: still checked field by field, never a value downstream cannot hold.
@pytest.mark.parametrize(
    "fields",
    [
        {"at": float("inf"), "seen": 0, "after": "x", "provider": "openai"},
        {"at": 0, "seen": float("-inf"), "after": "x", "provider": "openai"},
        {"at": 10**400 // 10**100, "seen": 0, "after": "x", "provider": "openai"},  # float() of it overflows
        {"at": 2**40 + 1, "seen": 0, "after": "x", "provider": "openai"},
        {"at": -1e300, "seen": 0, "after": "x", "provider": "openai"},
        {"at": True, "seen": 0, "after": "x", "provider": "openai"},
        {"at": "1", "seen": 0, "after": "x", "provider": "openai"},
        {"at": 0, "seen": None, "after": "x", "provider": "openai"},
        {"at": 0, "seen": 0, "after": "x" * (MAX_ID_CHARS + 1), "provider": "openai"},
        {"at": 0, "seen": 0, "after": "", "provider": "openai"},
        {"at": 0, "seen": 0, "after": "a b", "provider": "openai"},
        {"at": 0, "seen": 0, "after": "\ud800", "provider": "openai"},  # SQLite cannot bind a lone surrogate
        {"at": 0, "seen": 0, "after": "\x00", "provider": "openai"},
        {"at": 0, "seen": 0, "after": ["x"], "provider": "openai"},
        {"at": 0, "seen": 0, "after": "x", "provider": "\ud800"},
        {"at": 0, "seen": 0, "after": "x", "provider": None},
        {"at": 0, "seen": 0, "after": "x"},
    ],
)
def test_list_tokens_out_of_range_are_invalid_argument(fields: dict[str, object]) -> None:
    rejected("list", _sealed("page", **fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"batch": "batch_1", "rev": -1},
        {"batch": "batch_1", "rev": 2**62},
        {"batch": "batch_1", "rev": 2**63},  # past SQLite's integers
        {"batch": "batch_1", "rev": 1.0},
        {"batch": "batch_1", "rev": True},
        {"batch": "batch_1"},
        {"batch": "\ud800", "rev": 1},  # echoed, it made a status that cannot be encoded
        {"batch": 1, "rev": 1},
    ],
)
def test_watch_tokens_out_of_range_are_invalid_argument(fields: dict[str, object]) -> None:
    rejected("watch", _sealed("watch", **fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"seq": -1, "set": "all"},
        {"seq": 2**64, "set": "all"},
        {"seq": 1.5, "set": "all"},
        {"seq": False, "set": "all"},
        {"seq": 1, "set": "0123456789abcdeg"},
        {"seq": 1, "set": None},
        {"seq": 1},
        {"seq": 1, "set": "all", "at": "soon"},
        {"seq": 1, "set": "all", "at": float("nan")},
        {"seq": 1, "set": "all", "by": "Replica"},
        {"seq": 1, "set": "all", "by": 7},
    ],
)
def test_watch_many_tokens_out_of_range_are_invalid_argument(fields: dict[str, object]) -> None:
    rejected("many", _sealed("many", **fields))


def test_a_token_for_another_batch_or_provider_says_so_briefly() -> None:
    other = "o" * MAX_ID_CHARS
    error = rejected("watch", ALICE.resume(other, 1))
    assert "was issued for batch 'oooo" in error.message and f"({MAX_ID_CHARS} characters)" in error.message
    error = rejected("list", ALICE.page((1.0, 1.0, "b"), other))
    assert "was issued for provider 'oooo" in error.message
    error = rejected("list", ALICE.page((1.0, 1.0, "b"), ""))
    assert "every provider" in error.message
    error = rejected("many", ALICE.many(ManyPosition(1), ["a"]))
    assert "same batch_ids" in error.message


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.one_of(
        st.text(),
        st.binary().map(_token),
        st.binary().map(lambda b: _token(b"\x02\x00\x01" + b)),
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
