"""Concurrent calls for one key share one run of the work (single-flight)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Concurrent calls for one key share one run of the work: the first starts it, those arriving while it runs
    await the same outcome (its result, or its exception). A call arriving after it ended starts a new run. The run
    is shielded: a caller that leaves (cancelled, past its deadline) does not end it for the others."""

    def __init__(self) -> None:
        self._flying: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        flying = self._flying.get(key)
        if flying is None:
            flying = self._flying[key] = asyncio.ensure_future(work())
            flying.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flying)

    def _landed(self, key: Hashable, done: asyncio.Future[T]) -> None:
        if self._flying.get(key) is done:
            del self._flying[key]
        if not done.cancelled():
            done.exception()  # retrieved: when every caller left, asyncio has nothing to warn of

    def __len__(self) -> int:
        return len(self._flying)
