"""Who calls: the caller's key, forwarded to the gateway on each call and never kept, and the keyed hash the
service knows the caller by (in the registry, in its limits, in the tokens it seals for it)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from otari_batch_grpc.server.domain.subscriptions.subscribers import Watcher


@dataclass(frozen=True, slots=True)
class Caller:
    """The credential forwarded to the gateway, and its keyed hash (what the store knows the caller by)."""

    key: str
    owner: str

    def __repr__(self) -> str:
        return f"Caller(owner={self.owner[:8]}…)"

    @property
    def watcher(self) -> Watcher:
        return Watcher(self.key, self.owner)


class OwnerHasher:
    """Stands a caller's key in for an owner id: HMAC-SHA256 with a server secret, never the key itself."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def owner_of_key(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def caller(self, key: str) -> Caller:
        return Caller(key, self.owner_of_key(key))
