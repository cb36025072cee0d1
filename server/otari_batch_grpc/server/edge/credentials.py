"""The caller's otari key, read from gRPC call metadata. It is forwarded per call and never logged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from otari_batch_grpc.server.domain.errors import Code, ServiceError

_BEARER = "bearer "


@dataclass(frozen=True)
class Credential:
    """An otari API key. Its repr hides the key, so it cannot leak through a log or a traceback."""

    key: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"Credential(from {self.source})"


def credential_from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None, *, service_key: str | None
) -> Credential:
    """The key the call carries, or the operator's service key, or UNAUTHENTICATED.

    Accepted, as the gateway accepts them: `authorization: Bearer <key>`, `otari-key: <key>` (a `Bearer ` prefix
    is accepted there too) and `x-api-key: <key>`.
    """
    headers: dict[str, str] = {}
    for name, value in metadata or ():
        if isinstance(value, str):
            headers.setdefault(name.lower(), value.strip())
    if "authorization" in headers:
        value = headers["authorization"]
        if not value.lower().startswith(_BEARER) or not value[len(_BEARER) :].strip():
            raise _unauthenticated("The 'authorization' metadata must be 'Bearer <otari key>'.", "MALFORMED_CREDENTIAL")
        return Credential(value[len(_BEARER) :].strip(), "authorization")
    if "otari-key" in headers:
        value = headers["otari-key"]
        if value.lower().startswith(_BEARER):
            value = value[len(_BEARER) :].strip()
        if not value:
            raise _unauthenticated("The 'otari-key' metadata is empty.", "MALFORMED_CREDENTIAL")
        return Credential(value, "otari-key")
    if headers.get("x-api-key"):
        return Credential(headers["x-api-key"], "x-api-key")
    if service_key:
        return Credential(service_key, "service-key")
    raise _unauthenticated(
        "No otari key: send it as call metadata 'authorization: Bearer <key>', 'otari-key: <key>' "
        "or 'x-api-key: <key>'.",
        "MISSING_CREDENTIAL",
    )


def _unauthenticated(message: str, reason: str) -> ServiceError:
    return ServiceError(Code.UNAUTHENTICATED, reason, message)


class OwnerHasher:
    """Stands a caller's credential in for an owner id: HMAC-SHA256 with a server secret, never the key itself."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def owner_of(self, credential: Credential) -> str:
        return self.owner_of_key(credential.key)

    def owner_of_key(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()


async def load_owner_secret(configured: str | None, state_db: Path) -> bytes:
    """The configured secret, else the one in a file beside the database (made, mode 0600, on first start)."""
    if configured:
        return configured.encode()
    return await kept_secret(state_db.parent / (state_db.name + ".secret"))


async def kept_secret(path: Path) -> bytes:
    """A random secret kept in the file at `path`: read, or made (mode 0600, its folder 0700 when made) on first
    use."""
    return await asyncio.to_thread(_secret_file, path)


def _secret_file(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes().strip()
        if len(secret) < 32:
            raise RuntimeError(f"the secret file {path} is damaged (too short)") from None
        return secret
    secret = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
        out.flush()
        os.fsync(out.fileno())
    return secret
