"""The id of a batch of several parts (this service's own, never the gateway's), and its parts' custom_ids as the
store keeps them."""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from collections.abc import Sequence

# Every id of a batch of several parts starts so; the gateway's ids ("batch_...") never do.
PREFIX = "obatch_"


def is_whole(batch_id: str) -> bool:
    """Whether `batch_id` names a batch of several parts (this service's id)."""
    return batch_id.startswith(PREFIX)


def whole_id(owner: str, request_id: str, claimed_at: float) -> str:
    """The id of the batch a create makes. With a request_id, the same for every attempt of that create (the owner,
    the request_id and when it was first claimed: a request_id used again after it expired makes another), so an
    attempt that takes over from a dead one continues the same batch; without, a new one."""
    if not request_id:
        return PREFIX + uuid.uuid4().hex
    return PREFIX + hashlib.sha256(f"{owner}/{request_id}/{claimed_at!r}".encode()).hexdigest()[:32]


def pack(custom_ids: Sequence[str]) -> bytes:
    """A part's custom_ids, in order, as the store keeps them (compressed: they are many and alike)."""
    return zlib.compress(json.dumps(list(custom_ids), separators=(",", ":")).encode(), 1)


def unpack(packed: bytes) -> list[str]:
    found = json.loads(zlib.decompress(packed))
    assert isinstance(found, list)
    return [str(item) for item in found]
