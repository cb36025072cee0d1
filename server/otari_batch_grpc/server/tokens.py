"""Opaque tokens handed to callers: list page tokens and watch resume tokens (versioned, base64url JSON).

A token comes back from the caller, so it is input like any other: bounded before it is decoded (a few KiB; the
longest token this service issues is under 3,000 characters), and every field checked for its type and range
before anything downstream sees it (ids as ids, epoch seconds and revisions within what SQLite and a float hold).
Whatever a token holds, a bad one is INVALID_ARGUMENT naming the field, never an exception from the decoder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from otari_batch_grpc.server.errors import FieldViolation, invalid_argument
from otari_batch_grpc.server.quoting import quoted
from otari_batch_grpc.server.validation import MAX_ID_CHARS

# The longest token issued: a list token for an id and a provider of MAX_ID_CHARS four-byte characters each
# (2 x 1,024 bytes of UTF-8, plus ~100 of JSON) is 2,850 characters of base64.
MAX_TOKEN_CHARS = 4096
# Epoch seconds in a list position: a batch's created_at comes from a Timestamp (int64 nanoseconds, so within
# +-9.3e9 s) and first_seen from the clock. 2**40 s (~35,000 years) is past both, and exact as a float.
MAX_EPOCH_SECONDS = 2**40
# Revisions and WatchBatches positions are SQLite integers (int64): well inside it, with room to add one.
MAX_REVISION = 2**62
_SET_DIGEST = re.compile(r"all|[0-9a-f]{16}")


def encode(**fields: Any) -> str:
    # UTF-8, not \u escapes: an id of non-ASCII characters stays within MAX_TOKEN_CHARS (an astral character
    # escaped is 12 bytes, in UTF-8 it is 4).
    raw = json.dumps({"v": 1, **fields}, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, field: str, how: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS:
        _reject(field, f"is not a token this service issued (those are at most {MAX_TOKEN_CHARS:,} characters); {how}")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except Exception:  # whatever the decoders make of the caller's bytes (ValueError, RecursionError, ...)
        data = None
    if not isinstance(data, dict) or type(data.get("v")) is not int or data["v"] != 1:
        _reject(field, f"is not a token this service issued; {how}")
    return data


def _reject(field: str, description: str) -> NoReturn:
    raise invalid_argument([FieldViolation(field, description)])


def _is_seconds(value: object) -> bool:
    """A JSON number (not a bool) of epoch seconds: NaN fails the comparison, a huge int compares exactly (no
    float conversion to overflow)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -MAX_EPOCH_SECONDS <= value <= MAX_EPOCH_SECONDS
    )


def _is_revision(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_REVISION


def _is_id(value: object) -> bool:
    """An id as validation takes one: 1 to MAX_ID_CHARS printable characters, no spaces (so no lone surrogate
    either, which neither SQLite nor a status message could encode)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and all(c.isprintable() and not c.isspace() for c in value)
    )


def list_token(position: tuple[float, float, str], provider: str) -> str:
    """Where the next ListBatches page starts: after this (created_at, first_seen, id), newest first."""
    at, seen, after = position
    return encode(at=at, seen=seen, after=after, provider=provider)


def list_position(token: str, provider: str) -> tuple[float, float, str]:
    """The position a ListBatches page_token continues after, for the same provider (or all)."""
    how = "pass next_page_token as given"
    data = _decode(token, "page_token", how)
    at, seen, after, issued_for = data.get("at"), data.get("seen"), data.get("after"), data.get("provider")
    if not (_is_seconds(at) and _is_seconds(seen) and _is_id(after) and (issued_for == "" or _is_id(issued_for))):
        _reject("page_token", f"is not a token this service issued; {how}")
    assert isinstance(at, int | float) and isinstance(seen, int | float) and isinstance(after, str)
    assert isinstance(issued_for, str)
    if issued_for.lower() != provider.lower():
        wanted = f"provider {quoted(issued_for)}" if issued_for else "every provider (empty provider)"
        _reject("page_token", f"was issued for {wanted}; pass the same provider with it")
    return float(at), float(seen), after


def resume_token(batch_id: str, rev: int) -> str:
    return encode(batch=batch_id, rev=rev)


def rev_of_resume_token(token: str, batch_id: str) -> int:
    """The revision a WatchBatch resume_token was issued after, for the same batch."""
    how = "pass an event's resume_token as given"
    data = _decode(token, "resume_token", how)
    rev, issued_for = data.get("rev"), data.get("batch")
    if not (_is_revision(rev) and _is_id(issued_for)):
        _reject("resume_token", f"is not a token this service issued; {how}")
    assert isinstance(rev, int) and isinstance(issued_for, str)
    if issued_for != batch_id:
        _reject("resume_token", f"was issued for batch {quoted(issued_for)}, not {quoted(batch_id)}")
    return rev


def many_resume_token(seq: int, batch_ids: Sequence[str]) -> str:
    """A WatchBatches position: every revision up to `seq` of the watched set was delivered."""
    return encode(seq=seq, set=_set_digest(batch_ids))


def seq_of_many_resume_token(token: str, batch_ids: Sequence[str]) -> int:
    how = "pass an event's resume_token as given"
    data = _decode(token, "resume_token", how)
    seq, digest = data.get("seq"), data.get("set")
    if not (_is_revision(seq) and isinstance(digest, str) and _SET_DIGEST.fullmatch(digest)):
        _reject("resume_token", f"is not a WatchBatches token this service issued; {how}")
    assert isinstance(seq, int)
    if digest != _set_digest(batch_ids):
        _reject("resume_token", "was issued for other batch_ids: resume with the same batch_ids")
    return seq


def _set_digest(batch_ids: Sequence[str]) -> str:
    if not batch_ids:
        return "all"
    joined = "\n".join(sorted(set(batch_ids))).encode()
    return hashlib.sha256(joined).hexdigest()[:16]
