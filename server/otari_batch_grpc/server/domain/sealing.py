"""What the service keeps of a caller's secrets (a key delegated for a batch's re-runs, a webhook endpoint's signing
secrets), encrypted at rest: AES-GCM under the key-encryption keys (KEY_ENCRYPTION_KEYS, a keyring of generations as
TOKEN_KEYS: the newest seals, every one held opens), each value bound to what it is for (its purpose, and its
subject: the batch, or the endpoint) and whose it is (associated data), so a sealed key copied to another batch's
row, or another caller's, does not open.

Layout: version 1 | generation (2 bytes) | nonce (12) | ciphertext and tag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag

from otari_batch_grpc.server.domain.tokens import ciphers

_VERSION = 1
_HEADER = 3
_NONCE = 12
_PURPOSE = b"otari-batch-grpc keys kept for callers"


class Unsealable(ValueError):
    """A sealed value that does not open here (altered, moved, or sealed under a key no longer held)."""


class Sealer:
    def __init__(self, secrets: Mapping[int, bytes]) -> None:
        self._ciphers = ciphers(secrets, _PURPOSE)
        self._current = max(self._ciphers)

    def seal(self, secret: str, *, purpose: str, subject: str, owner: str) -> bytes:
        header = bytes((_VERSION,)) + self._current.to_bytes(2, "big")
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[self._current].encrypt(nonce, secret.encode(), _bound(header, purpose, subject, owner))
        return header + nonce + sealed

    def open(self, sealed: bytes, *, purpose: str, subject: str, owner: str) -> str:
        header = sealed[:_HEADER]
        cipher = self._ciphers.get(int.from_bytes(header[1:], "big")) if header[:1] == bytes((_VERSION,)) else None
        if cipher is None:
            raise Unsealable("sealed under a key-encryption key this service does not hold")
        try:
            plain = cipher.decrypt(
                sealed[_HEADER : _HEADER + _NONCE], sealed[_HEADER + _NONCE :], _bound(header, purpose, subject, owner)
            )
        except InvalidTag:
            raise Unsealable("altered, or sealed for another subject or caller") from None
        return plain.decode()


def _bound(header: bytes, purpose: str, subject: str, owner: str) -> bytes:
    return b"\0".join((header, purpose.encode(), subject.encode(), owner.encode()))
