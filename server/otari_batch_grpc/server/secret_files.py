"""Secrets the service makes for itself when they are not set: the owner secret (the key of the hash that stands
for a caller), the token key and the key-encryption key, each kept in a file beside the SQLite database (mode 0600,
its folder 0700 when made). Replicas on PostgreSQL keep theirs in the database instead (Store.shared_secret)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.domain.tokens import TokenKeys
from otari_batch_grpc.server.store import Store

log = logging.getLogger("otari_batch_grpc.server")


async def load_owner_secret(configured: str | None, state_db: Path) -> bytes:
    """The configured secret, else the one in a file beside the database (made, mode 0600, on first start)."""
    if configured:
        return configured.encode()
    return await kept_secret(state_db.parent / (state_db.name + ".secret"))


async def token_keys(configured: str | None, state_db: Path, store: Store) -> TokenKeys:
    """TOKEN_KEYS, else one generated key kept where the owner secret is (the PostgreSQL database, or a file beside
    STATE_DB): fine for development, but whoever reads those can make tokens."""
    if configured:
        return TokenKeys.parse(configured)
    kept, where = await _generated(state_db, store, "token_key", ".tokenkey")
    log.info("page and resume tokens sealed with a generated key kept in %s (set TOKEN_KEYS in production)", where)
    return TokenKeys({1: kept})


async def sealer(configured: str | None, state_db: Path, store: Store) -> Sealer:
    """KEY_ENCRYPTION_KEYS, else one generated key kept as the token key is: whoever reads it can open the keys
    delegated for re-runs."""
    if configured:
        return Sealer(TokenKeys.parse(configured).secrets)
    kept, where = await _generated(state_db, store, "key_encryption_key", ".kek")
    log.info("delegated keys sealed with a generated key kept in %s (set KEY_ENCRYPTION_KEYS in production)", where)
    return Sealer({1: kept})


async def _generated(state_db: Path, store: Store, name: str, suffix: str) -> tuple[bytes, str]:
    kept = await store.shared_secret(name)
    if kept is not None:
        return kept, "the state database"
    path = state_db.parent / (state_db.name + suffix)
    return await kept_secret(path), str(path)


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
