"""Secrets the service makes for itself when they are not set: the owner secret (the key of the hash that stands
for a caller) and the token key, each kept in a file beside the SQLite database (mode 0600, its folder 0700 when
made). Replicas on PostgreSQL keep theirs in the database instead (Store.shared_secret)."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path


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
