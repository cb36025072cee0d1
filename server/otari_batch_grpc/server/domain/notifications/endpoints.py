"""A webhook endpoint (#32, under way): which changes of which of its owner's batches it wants, and the secrets that
sign what it is sent, through a rotation.

A change is one where the status moved (a change of counts alone is none); an endpoint of terminal events wants only
the moves to COMPLETED, FAILED, EXPIRED or CANCELLED; a metadata filter keeps the batches that carry each of its
pairs. While a secret is rotated, the new one and the one before it both sign (Standard Webhooks allows several
signatures), until the overlap the rotation asked for ends; the secrets are kept sealed under the key-encryption
keys, bound to the endpoint and its owner.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.gateway.convert import TERMINAL_STATUSES, status_name
from otari_batch_grpc.server.store import EndpointRecord
from otari_batch_grpc.v1 import batch_pb2

SECRETS_PURPOSE = "webhook signing secrets"


class Events(enum.Enum):
    TERMINAL = "terminal"  # the moves to a terminal status
    ALL = "all"  # every move of the status


def event_type(status: int) -> str:
    """A webhook's type for a batch now in `status`: `batch.completed` for BATCH_STATUS_COMPLETED (the gateway's
    spelling of the status)."""
    return "batch." + status_name(status)


@dataclass(frozen=True)
class Endpoint:
    id: str
    owner: str
    url: str
    events: Events
    metadata_filter: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, record: EndpointRecord) -> Endpoint:
        return cls(record.id, record.owner, record.url, Events(record.events), json.loads(record.metadata_filter))

    def wants(self, moved: bool, after: batch_pb2.Batch) -> str | None:
        """The type of the event a change to `after` is for this endpoint (`moved`: its status moved, or it is new),
        or None when it wants none. (A disabled endpoint wants them all the same: they wait, for a while, for it to
        be enabled again; see deliverer.)"""
        if not moved:
            return None
        if self.events is Events.TERMINAL and after.status not in TERMINAL_STATUSES:
            return None
        if any(after.metadata.get(key) != value for key, value in self.metadata_filter.items()):
            return None
        return event_type(after.status)


@dataclass(frozen=True)
class SigningSecrets:
    """The secret that signs an endpoint's webhooks, and during a rotation the one before it, until `previous_until`
    (epoch seconds)."""

    current: str
    previous: str = ""
    previous_until: float = 0.0

    def signing(self, now: float) -> list[str]:
        """The secrets that sign a webhook sent at `now`: the current one first."""
        return [self.current, self.previous] if self.previous and now < self.previous_until else [self.current]

    def rotated(self, new: str, *, now: float, overlap: float) -> SigningSecrets:
        """`new` signs from now on; the current one too, for `overlap` seconds (0: not at all)."""
        if overlap < 0:
            raise ValueError("a rotation's overlap is not negative")
        return SigningSecrets(new, self.current, now + overlap) if overlap else SigningSecrets(new)

    def sealed(self, sealer: Sealer, endpoint: Endpoint) -> bytes:
        plain = json.dumps({"current": self.current, "previous": self.previous, "until": self.previous_until})
        return sealer.seal(plain, purpose=SECRETS_PURPOSE, subject=endpoint.id, owner=endpoint.owner)

    @classmethod
    def opened(cls, sealed: bytes, sealer: Sealer, endpoint: Endpoint) -> SigningSecrets:
        """The secrets `sealed` holds (Unsealable: altered, another endpoint's or owner's, or a key not held)."""
        data = json.loads(sealer.open(sealed, purpose=SECRETS_PURPOSE, subject=endpoint.id, owner=endpoint.owner))
        return cls(str(data["current"]), str(data["previous"]), float(data["until"]))
