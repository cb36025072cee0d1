"""Opaque tokens handed to callers: list page tokens and watch resume tokens (versioned, base64url JSON)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from otari_batch_grpc.server.errors import FieldViolation, invalid_argument


def encode(**fields: Any) -> str:
    raw = json.dumps({"v": 1, **fields}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, field: str, how: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a token of this version")
    except (ValueError, binascii.Error):
        raise invalid_argument([FieldViolation(field, f"is not a token this service issued; {how}")]) from None
    return data


def list_token(position: tuple[float, float, str], provider: str) -> str:
    """Where the next ListBatches page starts: after this (created_at, first_seen, id), newest first."""
    at, seen, after = position
    return encode(at=at, seen=seen, after=after, provider=provider)


def list_position(token: str, provider: str) -> tuple[float, float, str]:
    """The position a ListBatches page_token continues after, for the same provider (or all)."""
    data = _decode(token, "page_token", "pass next_page_token as given")
    at, seen, after, issued_for = data.get("at"), data.get("seen"), data.get("after"), data.get("provider")
    numbers = (at, seen)
    if any(not isinstance(n, int | float) or isinstance(n, bool) or not math.isfinite(n) for n in numbers) or not (
        isinstance(after, str)
    ):
        raise invalid_argument([FieldViolation("page_token", "is not a token this service issued")])
    if not isinstance(issued_for, str):
        raise invalid_argument([FieldViolation("page_token", "is not a token this service issued")])
    if issued_for.lower() != provider.lower():
        wanted = repr(issued_for) if issued_for else "every provider (empty)"
        raise invalid_argument(
            [FieldViolation("page_token", f"was issued for provider {wanted}; pass the same provider with it")]
        )
    assert isinstance(at, int | float) and isinstance(seen, int | float)
    return float(at), float(seen), after


def resume_token(batch_id: str, rev: int) -> str:
    return encode(batch=batch_id, rev=rev)


def rev_of_resume_token(token: str, batch_id: str) -> int:
    """The revision a WatchBatch resume_token was issued after, for the same batch."""
    data = _decode(token, "resume_token", "pass an event's resume_token as given")
    rev, issued_for = data.get("rev"), data.get("batch")
    if not isinstance(rev, int) or isinstance(rev, bool) or not 0 <= rev < 2**62 or not isinstance(issued_for, str):
        raise invalid_argument([FieldViolation("resume_token", "is not a token this service issued")])
    if issued_for != batch_id:
        raise invalid_argument([FieldViolation("resume_token", f"was issued for batch {issued_for}, not {batch_id}")])
    return rev


def many_resume_token(seq: int, batch_ids: Sequence[str]) -> str:
    """A WatchBatches position: every revision up to `seq` of the watched set was delivered."""
    return encode(seq=seq, set=_set_digest(batch_ids))


def seq_of_many_resume_token(token: str, batch_ids: Sequence[str]) -> int:
    data = _decode(token, "resume_token", "pass an event's resume_token as given")
    seq, digest = data.get("seq"), data.get("set")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**62 or not isinstance(digest, str):
        raise invalid_argument([FieldViolation("resume_token", "is not a WatchBatches token this service issued")])
    if digest != _set_digest(batch_ids):
        raise invalid_argument(
            [FieldViolation("resume_token", "was issued for other batch_ids: resume with the same batch_ids")]
        )
    return seq


def _set_digest(batch_ids: Sequence[str]) -> str:
    if not batch_ids:
        return "all"
    joined = "\n".join(sorted(set(batch_ids))).encode()
    return hashlib.sha256(joined).hexdigest()[:16]
