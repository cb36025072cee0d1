"""The stamps a batch's metadata carries upstream: which user the gateway made it for, and which create of this
service's made it. Batch.metadata is what the caller set; the stamps are typed fields of their own. The gateway's
JSON is read with them (gateway.convert), the contract keeps callers from setting them (edge.validation), and a
retried create finds its batch by them (domain.idempotency)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GATEWAY_OWNER_KEY = "otari_user_id"  # the gateway's: the user the batch belongs to (Batch.user)
REQUEST_ID_KEY = "otari_request_id"  # this service's: "<request_id>/<request digest>" (Batch.request_id)
LEGACY_DIGEST_KEY = "otari_request_digest"  # this service's digest, stamped apart before it joined the request_id
PART_KEY = "otari_batch_part"  # this service's, on each part of a batch of several: "<batch id>/<part index>"
STAMPED_KEYS = frozenset({GATEWAY_OWNER_KEY, REQUEST_ID_KEY, LEGACY_DIGEST_KEY, PART_KEY})


def request_stamp(request_id: str, digest: str) -> dict[str, str]:
    """The stamp a create with a request_id leaves in the batch's metadata: which request made it."""
    return {REQUEST_ID_KEY: f"{request_id}/{digest}"}


def stamped_request(metadata: Mapping[str, Any]) -> tuple[str, str | None]:
    """The request_id and request digest a batch's metadata was stamped with ("" when none; the digest None for
    a batch stamped before digests were)."""
    stamp = metadata.get(REQUEST_ID_KEY)
    if not isinstance(stamp, str):
        return "", None
    request_id, _, digest = stamp.partition("/")
    legacy = metadata.get(LEGACY_DIGEST_KEY)
    return request_id, digest or (legacy if isinstance(legacy, str) else None)


def part_stamp(batch_id: str, index: int) -> dict[str, str]:
    """The stamp each part of a batch of several carries: whose part it is, and which."""
    return {PART_KEY: f"{batch_id}/{index}"}


def stamped_part(metadata: Mapping[str, Any]) -> tuple[str, int] | None:
    """The batch and part index an upstream batch's metadata says it is a part of; None for a batch of its own."""
    stamp = metadata.get(PART_KEY)
    if not isinstance(stamp, str):
        return None
    batch_id, _, index = stamp.rpartition("/")
    return (batch_id, int(index)) if batch_id and index.isdigit() else None
