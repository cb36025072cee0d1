"""The watch hub: one poll loop per live batch (poll_loop), shared by every subscriber (subscribers), fanned out
latest-wins; and who follows what: each subscription's batches, counted against its owner's limit, the streams that
follow every batch of their owner's, and every stream by owner, so that a key the gateway refuses ends them all.

The hub does not decide what a state is: its loops poll through the domain core, which saves each change as a
revision and then publishes it here (`publish`). So a subscriber never sees a state the store does not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.errors import ServiceError, refusal, shutting_down
from otari_batch_grpc.server.domain.subscriptions.poll_loop import Alone, Fleet, Poll, PollLoop, WatchPolicy
from otari_batch_grpc.server.domain.subscriptions.subscribers import Problem, Subscriber
from otari_batch_grpc.server.telemetry import metrics, tracing

_REFUSED_REMEMBERED = 10_000  # per stream: batches already told of as past the limit (each told once)


_NONE: frozenset[Subscriber] = frozenset()


class _ByOwner:
    """Subscribers grouped by their owner; an owner with none is forgotten."""

    __slots__ = ("_by",)

    def __init__(self) -> None:
        self._by: dict[str, set[Subscriber]] = {}

    def add(self, subscriber: Subscriber) -> None:
        self._by.setdefault(subscriber.watcher.owner, set()).add(subscriber)

    def discard(self, subscriber: Subscriber) -> None:
        owner = subscriber.watcher.owner
        group = self._by.get(owner)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self._by[owner]

    def get(self, owner: str) -> AbstractSet[Subscriber]:
        return self._by.get(owner, _NONE)

    def all(self) -> list[set[Subscriber]]:
        return list(self._by.values())


class Hub:
    def __init__(self, *, poll: Poll, policy: WatchPolicy, fleet: Fleet | None = None) -> None:
        self.poll = metrics.counted_polls(poll)
        self.policy = policy
        self.fleet: Fleet = fleet or Alone()
        self._loops: dict[str, PollLoop] = {}
        self._owner_streams = _ByOwner()  # streams that follow every batch of their owner's (see `announce`)
        self._streams = _ByOwner()  # every stream (see `refuse`)
        self._watched: Counter[str] = Counter()  # (subscriber, batch) pairs by owner
        self._closed = False

    # -- states in (from the domain core, after they are saved) ---------------------------------------------
    def publish(self, observation: Observation) -> None:
        """A new revision was saved: offer it to the batch's subscribers."""
        loop = self._loops.get(observation.batch_id)
        if loop is not None:
            loop.offer(observation)

    def announce(self, observation: Observation, provider: str, owner: str) -> None:
        """The gateway just showed `owner` this batch: that owner's many-batch streams start following it."""
        streams = self._owner_streams.get(owner)
        if not streams or observation.terminal:
            return
        batch_id = observation.batch_id
        for subscriber in list(streams):
            if batch_id not in subscriber.joined:
                try:
                    self.join(subscriber, batch_id, provider, observation)
                    subscriber.refused.discard(batch_id)
                except ServiceError as error:  # past the owner's limit: not followed, and they are told (once)
                    if batch_id not in subscriber.refused:
                        if len(subscriber.refused) < _REFUSED_REMEMBERED:
                            subscriber.refused.add(batch_id)
                        subscriber.report(Problem(batch_id, error, removed=False, last=observation))

    # -- subscriptions -------------------------------------------------------------------------------------
    def join(
        self,
        subscriber: Subscriber,
        batch_id: str,
        provider: str,
        current: Observation,
        *,
        verified_at: float | None = None,
    ) -> None:
        """Add a subscriber to the batch's loop, starting the loop if it is the first. The gateway showed the
        subscriber's owner the batch at `verified_at` (epoch seconds; default: just now, by the read that gave
        `current`); the loop checks that owner's key again once the trust window from then runs out. It is offered
        the newest state at once, so nothing is missed."""
        if self._closed:
            raise shutting_down()
        owner = subscriber.watcher.owner
        if batch_id not in subscriber.joined:
            self.make_room(owner, 1)
            self._watched[owner] += 1
        loop = self._loops.get(batch_id)
        if loop is None:
            loop = self._loops[batch_id] = PollLoop(self, batch_id, provider)
            loop.task = asyncio.create_task(loop.run(), name=f"watch {batch_id}", context=tracing.background())
        loop.subscribers.add(subscriber)
        shown = time.monotonic() - (0.0 if verified_at is None else max(0.0, time.time() - verified_at))
        loop.verified[owner] = max(loop.verified.get(owner, 0.0), shown)
        subscriber.joined.add(batch_id)
        if loop.latest is None or loop.latest.rev < current.rev:
            loop.latest = current
        subscriber.offer(loop.latest)

    def leave(self, subscriber: Subscriber, batch_ids: Iterable[str] | None = None) -> None:
        """Take the subscriber out of these batches' loops (all of them by default); a loop left empty stops and
        is forgotten at once, so a join right after starts a fresh one."""
        for batch_id in list(subscriber.joined if batch_ids is None else batch_ids):
            loop = self._loops.get(batch_id)
            self.detach(subscriber, batch_id, loop)
            if loop is not None and not loop.subscribers:
                self.forget(loop)
                if loop.task is not None:
                    loop.task.cancel()

    def detach(self, subscriber: Subscriber, batch_id: str, loop: PollLoop | None) -> None:
        """The one way a subscriber stops following a batch: out of its loop, and out of its owner's count of
        batches watched (whatever ends it: the stream, a lost access, a gateway failing past the limit)."""
        if loop is not None:
            loop.subscribers.discard(subscriber)
        if batch_id in subscriber.joined:
            subscriber.joined.discard(batch_id)
            owner = subscriber.watcher.owner
            self._watched[owner] -= 1
            if self._watched[owner] <= 0:
                del self._watched[owner]

    def latest(self, batch_id: str) -> Observation | None:
        """The newest state a live loop has of the batch (None without one)."""
        loop = self._loops.get(batch_id)
        return loop.latest if loop is not None else None

    def polling(self, batch_id: str) -> bool:
        """Whether a loop here polls the batch."""
        return batch_id in self._loops

    def wake(self, batch_id: str) -> None:
        """Another replica saved a revision of the batch: its loop here reads it now, not at its next turn."""
        loop = self._loops.get(batch_id)
        if loop is not None:
            loop.woken.set()

    def follows(self, owner: str) -> bool:
        """Whether some stream here follows every batch of `owner` (see `announce`)."""
        return bool(self._owner_streams.get(owner))

    def make_room(self, owner: str, batches: int) -> None:
        """Raise RESOURCE_EXHAUSTED unless `owner` may watch `batches` more batches (WatchPolicy.watched_per_caller)."""
        limit = self.policy.watched_per_caller
        if self._watched[owner] + batches > limit:
            metrics.limit_refused("watched_per_caller")
            raise refusal(
                "watched_per_caller",
                f"You watch {self._watched[owner]:,} batches; {batches:,} more would pass the limit of {limit:,} per "
                "caller: stop watching some first.",
            )

    def track(self, subscriber: Subscriber) -> None:
        """Count a stream among its owner's, until `untrack`: a key the gateway refuses ends them all."""
        self._streams.add(subscriber)

    def untrack(self, subscriber: Subscriber) -> None:
        self._streams.discard(subscriber)

    def refuse(self, owner: str, error: ServiceError) -> None:
        """The gateway refused the owner's key: each of its streams ends with `error`, whatever it follows (a
        batch, every batch of the owner's, or nothing yet)."""
        for subscriber in list(self._streams.get(owner)):
            subscriber.end(error)

    def follow_owner(self, subscriber: Subscriber) -> None:
        """Tell `subscriber` of every batch its owner is shown from now on (see `announce`)."""
        self._owner_streams.add(subscriber)

    def unfollow_owner(self, subscriber: Subscriber) -> None:
        self._owner_streams.discard(subscriber)

    def subscriptions(self) -> int:
        """(subscriber, batch) pairs: how many batch watches the hub serves."""
        return sum(len(loop.subscribers) for loop in list(self._loops.values()))

    def loops(self) -> int:
        return len(self._loops)

    def pending(self) -> int:
        """Items waiting in subscribers' inboxes: at most one per subscriber and batch."""
        subscribers = {s for loop in self._loops.values() for s in loop.subscribers}
        return sum(s.pending() for s in subscribers)

    async def close(self) -> None:
        """Stop every loop and end every subscription (the server is shutting down)."""
        self._closed = True
        loops = list(self._loops.values())
        for loop in loops:
            for subscriber in loop.subscribers:
                subscriber.end(shutting_down())
        for streams in self._owner_streams.all():
            for subscriber in streams:
                subscriber.end(shutting_down())
        tasks = [loop.task for loop in loops if loop.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def forget(self, loop: PollLoop) -> None:
        """The loop ended (or is ending): a join from now on starts a fresh one."""
        if self._loops.get(loop.batch_id) is loop:
            del self._loops[loop.batch_id]
