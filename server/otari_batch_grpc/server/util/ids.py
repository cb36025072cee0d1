"""What an id is, wherever one comes from (a request, a token): 1 to MAX_ID_CHARS printable characters, no spaces
(so no lone surrogate either, which neither SQLite nor a status message could encode)."""

from __future__ import annotations

MAX_ID_CHARS = 256


def is_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and all(c.isprintable() and not c.isspace() for c in value)
    )
