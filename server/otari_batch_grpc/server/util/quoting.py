"""Caller-supplied values quoted into error messages, short whatever the caller sent.

A status travels in HTTP/2 trailers, which grpc-core caps (8 KiB soft, 16 KiB hard by default): a message that
echoes a 100,000-character value whole reaches the caller as RESOURCE_EXHAUSTED "Stream removed" instead of the
error meant for it. `quoted` keeps a short prefix, escaped as `repr` escapes it (so control characters, lone
surrogates and quotes cannot break the message or its UTF-8 encoding), and says how long the value really was.
"""

from __future__ import annotations

QUOTE_LIMIT = 40


def quoted(value: str, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` when it has at most `limit` characters; otherwise the repr of its first `limit` characters,
    an ellipsis and the full length: `'mmmmmmmm'… (100,000 characters)`.

    The result always encodes as UTF-8 (repr escapes lone surrogates and unprintable characters) and has at
    most `10 * limit + 30` characters (repr's longest escape, `\\U0010ffff`, is 10 characters).
    """
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"
