"""Opaque tokens handed to callers: list page tokens and watch resume tokens (versioned, base64url JSON)."""

from __future__ import annotations

import base64
import binascii
import json
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


def page_token(after: str, provider: str) -> str:
    return encode(after=after, provider=provider)


def after_of_page_token(token: str, provider: str) -> str | None:
    """The id to list after, from a ListBatches page_token issued for the same provider."""
    if not token:
        return None
    data = _decode(token, "page_token", "pass next_page_token as given")
    after, issued_for = data.get("after"), data.get("provider")
    if not isinstance(after, str) or not isinstance(issued_for, str):
        raise invalid_argument([FieldViolation("page_token", "is not a token this service issued")])
    if issued_for != provider:
        raise invalid_argument(
            [FieldViolation("page_token", f"was issued for provider {issued_for!r}, not {provider!r}")]
        )
    return after


def resume_token(batch_id: str, rev: int) -> str:
    return encode(batch=batch_id, rev=rev)


def rev_of_resume_token(token: str, batch_id: str) -> int:
    """The revision a WatchBatch resume_token was issued after, for the same batch."""
    data = _decode(token, "resume_token", "pass an event's resume_token as given")
    rev, issued_for = data.get("rev"), data.get("batch")
    if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0 or not isinstance(issued_for, str):
        raise invalid_argument([FieldViolation("resume_token", "is not a token this service issued")])
    if issued_for != batch_id:
        raise invalid_argument([FieldViolation("resume_token", f"was issued for batch {issued_for}, not {batch_id}")])
    return rev
