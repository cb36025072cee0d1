"""The simulator's batches kept across restarts: one JSON file, read once at start, rewritten after every change.

Writes are serialized and coalesced: a save whose change a concurrent save already wrote returns at once. The JSON
is encoded and written in a worker thread from a snapshot taken on the event loop, then renamed over the file
(atomic), and the write finishes even if its caller is cancelled, so the file never goes back to an older state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
STATE_FILE_VERSION = 1


class StateFileError(OSError):
    """The state file exists but cannot be read back as simulator state."""


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._generation = 0  # changes made
        self._saved_generation = 0  # changes in the file
        self._lock: asyncio.Lock | None = None

    def load(self) -> JSON | None:
        """The document last saved; None when there is no file yet."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.unusable(exc) from exc
        try:
            document = json.loads(raw)
            if document.get("version") != STATE_FILE_VERSION:
                raise ValueError(f"version {document.get('version')!r}, expected {STATE_FILE_VERSION}")
        except (ValueError, AttributeError) as exc:
            raise self.unusable(exc) from exc
        return dict(document)

    def unusable(self, why: Exception) -> StateFileError:
        return StateFileError(f"gateway simulator state file {self.path} is not usable: {why}")

    async def save(self, snapshot: Callable[[], JSON]) -> None:
        """Make every change made so far durable: `snapshot` is the state as of now."""
        self._generation += 1
        await asyncio.shield(self._flush(self._generation, snapshot))

    async def _flush(self, generation: int, snapshot: Callable[[], JSON]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._saved_generation >= generation:
                return
            target, document = self._generation, {"version": STATE_FILE_VERSION, **snapshot()}
            await asyncio.to_thread(_write_atomically, self.path, document)
            self._saved_generation = target


def _write_atomically(path: Path, data: JSON) -> None:
    """Encode and write `data` beside `path`, then rename it over `path` (in a worker thread: it blocks)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    encoded = json.dumps(data, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encoded)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
