"""The watch hub: one poll loop per live batch, shared by every subscriber, fanned out latest-wins.

- The hub does not decide what a state is: it polls through the domain core (`poll`), which saves each change as a
  revision and then publishes it here (`publish`). So a subscriber never sees a state the store does not hold.
- A loop starts with its first subscriber and stops when the last leaves or the batch is terminal. Its interval
  adapts (the minimum right after a change, growing while nothing changes, with jitter); upstream trouble backs it
  off. Trouble that lasts past `failure_limit` is reported to the subscribers (a one-batch stream ends with it; a
  many-batch stream gets an UNAVAILABLE event and the loop goes on).
- Each subscriber's own access is checked with its own key at least every `trust_seconds`: a revoked key stops
  receiving states even while other subscribers' keys work.
- A subscriber holds at most one pending item per batch, the latest: a slow one never slows the loop or other
  subscribers, nor grows the server's memory (the terminal state is last, so never lost). What the hub skipped,
  the feed sends from the store when the stream catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Protocol

from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.errors import LIMIT_EXCEEDED, Code, ServiceError, refusal, shutting_down
from otari_batch_grpc.server.telemetry import metrics, tracing

log = logging.getLogger("otari_batch_grpc.watch")

# What the gateway answers one caller that may not see a batch (any more): that caller leaves, not the loop.
ACCESS_LOST = frozenset({Code.NOT_FOUND, Code.PERMISSION_DENIED, Code.UNAUTHENTICATED})
_REFUSED_REMEMBERED = 10_000  # per stream: batches already told of as past the limit (each told once)


@dataclass(frozen=True, kw_only=True)
class WatchPolicy:
    """The hub's part of the settings (built from `Settings`, which holds every default and says what each is)."""

    poll_min: float
    poll_max: float
    failure_limit: float
    trust_seconds: float
    watched_per_caller: int  # batches one owner watches at once, over all its subscriptions
    lease_seconds: float  # replicas on one store: a poll lease lapses this long after its holder's last turn


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
# Fetch a batch with a watcher's key through the domain core (which saves and publishes a change), or raise.
Poll = Callable[[Watcher, str, str], Awaitable[Observation]]


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


class Fleet(Protocol):
    """The replicas sharing one store, as the hub sees them: which one polls a batch (a lease), and the
    revisions the others saved. One process alone polls every batch itself and hears of nothing."""

    async def hold(self, batch_id: str, loop: str) -> bool:
        """Take or renew this replica's lease on polling the batch for the loop named `loop`; False while another
        replica holds it."""
        ...

    async def release(self, batch_id: str, loop: str) -> None:
        """Give up the lease that loop holds (the loop ends); a newer loop's lease is not touched."""
        ...

    async def catch_up(self, batch_id: str, after_rev: int) -> list[Observation]:
        """The batch's revisions saved after `after_rev` (by any replica), oldest first."""
        ...


class Alone:
    """The fleet of one: a SQLite store is one process's own."""

    async def hold(self, batch_id: str, loop: str) -> bool:
        return True

    async def release(self, batch_id: str, loop: str) -> None:
        return None

    async def catch_up(self, batch_id: str, after_rev: int) -> list[Observation]:
        return []


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


@dataclass(eq=False)
class _Loop:
    batch_id: str
    provider: str
    subscribers: set[Subscriber] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    verified: dict[str, float] = field(default_factory=dict)  # owner -> when its key last showed the batch
    reported: bool = False  # trouble was reported and the batch has not answered since
    woken: asyncio.Event = field(default_factory=asyncio.Event)  # another replica saved a revision of it
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # this loop among the batch's loops, over time


class Hub:
    def __init__(self, *, poll: Poll, policy: WatchPolicy, fleet: Fleet | None = None) -> None:
        self._poll = metrics.counted_polls(poll)
        self.policy = policy
        self.fleet: Fleet = fleet or Alone()
        self._loops: dict[str, _Loop] = {}
        self._latest: dict[str, Observation] = {}  # for batches with a live loop
        self._owner_streams = _ByOwner()  # streams that follow every batch of their owner's (see `announce`)
        self._streams = _ByOwner()  # every stream (see `refuse`)
        self._watched: Counter[str] = Counter()  # (subscriber, batch) pairs by owner
        self._closed = False

    # -- states in (from the domain core, after they are saved) ---------------------------------------------
    def publish(self, observation: Observation) -> None:
        """A new revision was saved: offer it to the batch's subscribers."""
        loop = self._loops.get(observation.batch_id)
        if loop is None:
            return
        self._latest[observation.batch_id] = observation
        for subscriber in loop.subscribers:
            subscriber.offer(observation)

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
            loop = self._loops[batch_id] = _Loop(batch_id, provider)
            loop.task = asyncio.create_task(self._run(loop), name=f"watch {batch_id}", context=tracing.background())
        loop.subscribers.add(subscriber)
        shown = time.monotonic() - (0.0 if verified_at is None else max(0.0, time.time() - verified_at))
        loop.verified[owner] = max(loop.verified.get(owner, 0.0), shown)
        subscriber.joined.add(batch_id)
        latest = self._latest.get(batch_id)
        if latest is None or latest.rev < current.rev:
            latest = self._latest[batch_id] = current
        subscriber.offer(latest)

    def leave(self, subscriber: Subscriber, batch_ids: Iterable[str] | None = None) -> None:
        """Take the subscriber out of these batches' loops (all of them by default); a loop left empty stops and
        is forgotten at once, so a join right after starts a fresh one."""
        for batch_id in list(subscriber.joined if batch_ids is None else batch_ids):
            loop = self._loops.get(batch_id)
            self._detach(subscriber, batch_id, loop)
            if loop is not None and not loop.subscribers:
                self._forget(loop)
                if loop.task is not None:
                    loop.task.cancel()

    def _detach(self, subscriber: Subscriber, batch_id: str, loop: _Loop | None) -> None:
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
        return self._latest.get(batch_id)

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

    def _forget(self, loop: _Loop) -> None:
        if self._loops.get(loop.batch_id) is loop:
            del self._loops[loop.batch_id]
            self._latest.pop(loop.batch_id, None)

    # -- the poll loop -------------------------------------------------------------------------------------
    async def _run(self, loop: _Loop) -> None:
        policy = self.policy
        interval = policy.poll_min
        failing_since: float | None = None
        try:
            while loop.subscribers:
                # Jitter keeps loops from polling in lockstep; it only shortens, so no change waits longer than
                # one interval to be seen.
                if await self._rest(loop, interval * random.uniform(0.85, 1.0)):
                    if self._caught_up(loop, await self.fleet.catch_up(loop.batch_id, self._rev(loop))):
                        break
                    continue
                watchers = {s.watcher.owner: s.watcher for s in loop.subscribers}
                if not watchers:
                    break
                # Poll with the key checked longest ago; check any other key past the trust window as well.
                order = sorted(watchers, key=lambda owner: loop.verified.get(owner, 0.0))
                if not await self.fleet.hold(loop.batch_id, loop.name):  # another replica polls it: read its saves
                    await self._verify_overdue(loop, [watchers[owner] for owner in order])  # (its keys, still here)
                    if self._caught_up(loop, await self.fleet.catch_up(loop.batch_id, self._rev(loop))):
                        break
                    interval = policy.poll_min
                    continue
                before = self._latest.get(loop.batch_id)
                try:
                    observation = await self._poll(watchers[order[0]], loop.batch_id, loop.provider)
                except ServiceError as error:
                    if error.code in ACCESS_LOST:
                        self._drop(loop, order[0], error)
                        continue
                    if error.reason == LIMIT_EXCEEDED:  # the watcher's own calls fill its gateway slots: poll later
                        continue
                    failing_since, interval = self._back_off(loop, error, failing_since, interval)
                    continue
                loop.verified[order[0]] = time.monotonic()
                await self._verify_overdue(loop, [watchers[owner] for owner in order[1:]])
                latest = self._latest.get(loop.batch_id)
                if latest is None or observation.rev > latest.rev:  # newer than what its subscribers were offered
                    self._latest[loop.batch_id] = observation
                    for subscriber in loop.subscribers:
                        subscriber.offer(observation)
                if failing_since is not None:
                    log.info("watch %s: the gateway answers again", loop.batch_id)
                failing_since = None
                if loop.reported:  # tell those still here that the batch answers again
                    loop.reported = False
                    for subscriber in loop.subscribers:
                        subscriber.offer(self._latest.get(loop.batch_id) or observation)
                if observation.terminal:
                    break
                changed = before is None or observation.rev > before.rev
                interval = policy.poll_min if changed else min(interval * 1.5, policy.poll_max)
        except Exception:
            log.exception("watch %s: the poll loop failed", loop.batch_id)
            failed = ServiceError(
                Code.UNAVAILABLE,
                "WATCH_FAILED",
                f"Watching batch {loop.batch_id} failed on the server (logged); resume with the last resume_token.",
                {"batch_id": loop.batch_id},
                retry_after=policy.poll_min,
            )
            for subscriber in list(loop.subscribers):
                subscriber.report(Problem(loop.batch_id, failed, removed=False, last=self._latest.get(loop.batch_id)))
                self._detach(subscriber, loop.batch_id, loop)  # not left joined to a loop that is gone: it can rejoin
        finally:
            self._forget(loop)
            await asyncio.shield(self._let_go(loop))

    async def _let_go(self, loop: _Loop) -> None:
        batch_id = loop.batch_id
        try:
            await self.fleet.release(batch_id, loop.name)
        except Exception:  # the lease lapses by itself
            log.warning("watch %s: could not give up the poll lease", batch_id, exc_info=True)

    async def _rest(self, loop: _Loop, seconds: float) -> bool:
        """Wait for the loop's next turn; True when woken before it by another replica's revision."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await loop.woken.wait()
        woken = loop.woken.is_set()
        loop.woken.clear()
        return woken

    def _rev(self, loop: _Loop) -> int:
        latest = self._latest.get(loop.batch_id)
        return latest.rev if latest is not None else 0

    def _caught_up(self, loop: _Loop, observations: list[Observation]) -> bool:
        """Offer revisions another replica saved to this replica's subscribers; True once the batch is terminal."""
        for observation in observations:
            if observation.rev > self._rev(loop):
                self.publish(observation)
        latest = self._latest.get(loop.batch_id)
        return latest is not None and latest.terminal

    async def _verify_overdue(self, loop: _Loop, watchers: list[Watcher]) -> None:
        """Check the keys whose trust window ran out (each with a read of its own), so that a subscriber the gateway
        no longer authorizes stops receiving states within the window and one poll interval."""
        now = time.monotonic()
        for watcher in watchers:
            if now - loop.verified.get(watcher.owner, 0.0) >= self.policy.trust_seconds:
                await self._verify(loop, watcher)

    async def _verify(self, loop: _Loop, watcher: Watcher) -> None:
        """Check one more subscriber's access with its own key (its trust window ran out)."""
        try:
            await self._poll(watcher, loop.batch_id, loop.provider)
        except ServiceError as error:
            if error.code in ACCESS_LOST:
                self._drop(loop, watcher.owner, error)
            return  # trouble: the next round checks again
        loop.verified[watcher.owner] = time.monotonic()

    def _back_off(
        self, loop: _Loop, error: ServiceError, failing_since: float | None, interval: float
    ) -> tuple[float | None, float]:
        now = time.monotonic()
        failing_since = failing_since if failing_since is not None else now
        if now - failing_since > self.policy.failure_limit and not loop.reported:
            loop.reported = True
            ending = ServiceError(
                Code.UNAVAILABLE,
                "WATCH_UPSTREAM_FAILING",
                f"The gateway has been failing for {now - failing_since:.0f} s while watching batch "
                f"{loop.batch_id} ({error.message}); resume the watch later with the last resume_token.",
                {"batch_id": loop.batch_id, "cause": error.reason},
                retry_after=self.policy.poll_max,
            )
            problem = Problem(loop.batch_id, ending, removed=False, last=self._latest.get(loop.batch_id))
            for subscriber in list(loop.subscribers):
                subscriber.report(problem)
                if not subscriber.many:
                    self._detach(subscriber, loop.batch_id, loop)
            return failing_since, self.policy.poll_max
        log.warning("watch %s: gateway trouble (%s), backing off", loop.batch_id, error.reason)
        retry_after = error.retry_after or 0.0
        return failing_since, min(max(interval * 2, retry_after), self.policy.poll_max)

    def _drop(self, loop: _Loop, owner: str, error: ServiceError) -> None:
        """A caller lost access: its subscriptions to this batch end; the loop goes on for the others."""
        problem = Problem(loop.batch_id, error, removed=True, last=self._latest.get(loop.batch_id))
        for subscriber in [s for s in loop.subscribers if s.watcher.owner == owner]:
            subscriber.report(problem)
            self._detach(subscriber, loop.batch_id, loop)
        loop.verified.pop(owner, None)
