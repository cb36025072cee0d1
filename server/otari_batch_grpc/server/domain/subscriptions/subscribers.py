"""What subscribes to batches and what it is told: a watcher (the key it may be polled with), its inbox (the latest
pending state per batch, and an error that ends the stream) and the problems it hears of.

A subscriber holds at most one pending item per batch, the latest: a slow one never slows a poll loop or other
subscribers, nor grows the server's memory (the terminal state is last, so never lost). What it skipped, the feed
sends from the store when the stream catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.errors import A_PART, Code, ServiceError

# What the gateway answers one caller that may not see a batch (any more): that caller leaves, not the loop.
ACCESS_LOST = frozenset({Code.NOT_FOUND, Code.PERMISSION_DENIED, Code.UNAUTHENTICATED})


def access_lost(error: ServiceError) -> bool:
    """Whether an error says the batch is not (or no longer) the caller's to follow."""
    return error.code in ACCESS_LOST or error.reason == A_PART


@dataclass(frozen=True, slots=True)
class Watcher:
    """Who subscribes: the credential the loop may poll with, and its owner hash."""

    key: str = field(repr=False)
    owner: str


@dataclass(frozen=True)
class Problem:
    """Trouble with one batch of a subscription. `removed`: it left the subscription for good."""

    batch_id: str
    error: ServiceError
    removed: bool
    last: Observation | None = None


Item = Observation | Problem


class Subscriber:
    """One stream's inbox: the latest pending item per batch, and an error that ends the stream.

    A one-batch subscriber (`many=False`) ends with any problem; a many-batch one receives problems as items.
    """

    __slots__ = ("_pending", "_waiter", "error", "joined", "many", "refused", "watcher")

    def __init__(self, watcher: Watcher, *, many: bool = False) -> None:
        self.watcher = watcher
        self.many = many
        self._pending: dict[str, Item] = {}
        self._waiter: asyncio.Future[None] | None = None  # while `next` waits (made then: thousands sit idle)
        self.error: ServiceError | None = None
        self.joined: set[str] = set()  # the batches whose loops it is in
        self.refused: set[str] = set()  # batches it was told it could not follow (past the owner's limit)

    def offer(self, observation: Observation) -> None:
        held = self._pending.get(observation.batch_id)
        if isinstance(held, Problem) and held.removed:
            return
        if held is None or isinstance(held, Problem) or held.rev < observation.rev:
            self._pending[observation.batch_id] = observation
            self._wake()

    def report(self, problem: Problem) -> None:
        if not self.many:
            self.end(problem.error)
            return
        self._pending[problem.batch_id] = problem
        self._wake()

    def end(self, error: ServiceError) -> None:
        self.error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def pending(self) -> int:
        return len(self._pending)

    async def next(self, within: float) -> list[Item]:
        """The pending items, in the order they were saved; [] when `within` seconds pass with none. Raises the
        error that ended the subscription."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as the
        # wait completes, which would leave a cancelled watch running.
        if not self._pending and self.error is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(within):
                        await self._waiter
            finally:
                self._waiter = None
        if self.error is not None:
            raise self.error
        taken = sorted(self._pending.values(), key=_order)
        self._pending.clear()
        return taken


def _order(item: Item) -> tuple[int, float]:
    if isinstance(item, Problem):
        return (1, 0.0)
    return (0, item.seq or item.observed_at)
