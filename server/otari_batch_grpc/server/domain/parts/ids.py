"""The id of a batch of several parts (this service's own, never the gateway's), and what the store keeps of its
parts packed: their custom_ids, a first try's requests (for re-runs), a re-run's indexes."""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from array import array
from collections.abc import Sequence

from otari_batch_grpc.server.util import wire
from otari_batch_grpc.v1 import batch_service_pb2

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


def pack_items(items: Sequence[batch_service_pb2.BatchRequestItem]) -> bytes:
    """A part's requests, kept for its re-runs: each serialized, length first, compressed."""
    out = bytearray()
    for item in items:
        data = item.SerializeToString(deterministic=True)
        out += wire.varint(len(data)) + data
    return zlib.compress(bytes(out), 1)


def unpack_items(packed: bytes) -> list[batch_service_pb2.BatchRequestItem]:
    data, at, items = zlib.decompress(packed), 0, []
    while at < len(data):
        size, at = wire.read_varint(data, at)
        items.append(batch_service_pb2.BatchRequestItem.FromString(data[at : at + size]))
        at += size
    return items


def pack_indices(indices: Sequence[int]) -> bytes:
    """A re-run's requests, as their indexes in the batch."""
    return zlib.compress(array("Q", indices).tobytes(), 1)


def unpack_indices(packed: bytes) -> list[int]:
    return array("Q", zlib.decompress(packed)).tolist()
