"""One live batch's poll loop, shared by every subscriber of the batch.

- It polls through the domain core (`poll`), which saves each change as a revision and then publishes it to the
  hub: a subscriber never sees a state the store does not hold.
- It starts with the batch's first subscriber and stops when the last leaves or the batch is terminal. Its interval
  adapts (the minimum right after a change, growing while nothing changes, with jitter); upstream trouble backs it
  off. Trouble that lasts past `failure_limit` is reported to the subscribers (a one-batch stream ends with it; a
  many-batch stream gets an UNAVAILABLE event and the loop goes on).
- Each subscriber's own access is checked with its own key at least every `trust_seconds`: a revoked key stops
  receiving states even while other subscribers' keys work.
- Replicas on one store share it: the one holding the batch's lease polls, the others read what it saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.errors import LIMIT_EXCEEDED, Code, ServiceError
from otari_batch_grpc.server.domain.subscriptions.subscribers import Problem, Subscriber, Watcher, access_lost

if TYPE_CHECKING:
    from otari_batch_grpc.server.domain.subscriptions.hub import Hub

log = logging.getLogger("otari_batch_grpc.watch")

# Fetch a batch with a watcher's key through the domain core (which saves and publishes a change), or raise.
Poll = Callable[[Watcher, str, str], Awaitable[Observation]]


@dataclass(frozen=True, kw_only=True)
class WatchPolicy:
    """The hub's part of the settings (built from `Settings`, which holds every default and says what each is)."""

    poll_min: float
    poll_max: float
    failure_limit: float
    trust_seconds: float
    watched_per_caller: int  # batches one owner watches at once, over all its subscriptions
    lease_seconds: float  # replicas on one store: a poll lease lapses this long after its holder's last turn


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


class PollLoop:
    """One batch's loop; the hub starts it with the first subscriber and forgets it when it ends."""

    def __init__(self, hub: Hub, batch_id: str, provider: str) -> None:
        self._hub = hub
        self._policy: WatchPolicy = hub.policy
        self.batch_id = batch_id
        self.provider = provider
        self.subscribers: set[Subscriber] = set()
        self.latest: Observation | None = None  # the newest state its subscribers were offered
        self.verified: dict[str, float] = {}  # owner -> when its key last showed the batch (monotonic)
        self.task: asyncio.Task[None] | None = None
        self.woken = asyncio.Event()  # another replica saved a revision of it
        self.name = uuid.uuid4().hex[:12]  # this loop among the batch's loops, over time
        self._reported = False  # trouble was reported and the batch has not answered since
        self._interval = self._policy.poll_min
        self._failing_since: float | None = None

    def offer(self, observation: Observation) -> None:
        """A newer state: the loop's latest, offered to each subscriber."""
        self.latest = observation
        for subscriber in self.subscribers:
            subscriber.offer(observation)

    async def run(self) -> None:
        try:
            while self.subscribers and not await self._turn():
                pass
        except Exception:
            log.exception("watch %s: the poll loop failed", self.batch_id)
            self._failed()
        finally:
            self._hub.forget(self)
            await asyncio.shield(self._let_go())

    async def _turn(self) -> bool:
        """One turn of the loop; True once it is over (the batch terminal, no one left)."""
        # Jitter keeps loops from polling in lockstep; it only shortens, so no change waits longer than one interval.
        if await self._rest(self._interval * random.uniform(0.85, 1.0)):
            return self._caught_up(await self._hub.fleet.catch_up(self.batch_id, self._rev()))
        watchers = {s.watcher.owner: s.watcher for s in self.subscribers}
        if not watchers:
            return True
        # Poll with the key checked longest ago; check any other key past the trust window as well.
        order = [watchers[owner] for owner in sorted(watchers, key=lambda owner: self.verified.get(owner, 0.0))]
        if not await self._hub.fleet.hold(self.batch_id, self.name):  # another replica polls it: read its saves
            await self._verify_overdue(order)  # (the keys of its subscribers here, all the same)
            self._interval = self._policy.poll_min
            return self._caught_up(await self._hub.fleet.catch_up(self.batch_id, self._rev()))
        return await self._poll_with(order[0], order[1:])

    async def _poll_with(self, watcher: Watcher, others: list[Watcher]) -> bool:
        before = self.latest
        try:
            observation = await self._hub.poll(watcher, self.batch_id, self.provider)
        except ServiceError as error:
            if access_lost(error):
                self._drop(watcher.owner, error)
            elif error.reason != LIMIT_EXCEEDED:  # (the watcher's own calls fill its gateway slots: poll later)
                self._back_off(error)
            return False
        self.verified[watcher.owner] = time.monotonic()
        await self._verify_overdue(others)
        if self.latest is None or observation.rev > self.latest.rev:  # newer than what its subscribers were offered
            self.offer(observation)
        if self._failing_since is not None:
            log.info("watch %s: the gateway answers again", self.batch_id)
        self._failing_since = None
        if self._reported:  # tell those still here that the batch answers again
            self._reported = False
            for subscriber in self.subscribers:
                subscriber.offer(self.latest or observation)
        if observation.terminal:
            return True
        changed = before is None or observation.rev > before.rev
        self._interval = self._policy.poll_min if changed else min(self._interval * 1.5, self._policy.poll_max)
        return False

    async def _rest(self, seconds: float) -> bool:
        """Wait for the loop's next turn; True when woken before it by another replica's revision."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.woken.wait()
        woken = self.woken.is_set()
        self.woken.clear()
        return woken

    def _rev(self) -> int:
        return self.latest.rev if self.latest is not None else 0

    def _caught_up(self, observations: list[Observation]) -> bool:
        """Offer revisions another replica saved to this replica's subscribers; True once the batch is terminal."""
        for observation in observations:
            if observation.rev > self._rev():
                self.offer(observation)
        return self.latest is not None and self.latest.terminal

    async def _verify_overdue(self, watchers: list[Watcher]) -> None:
        """Check the keys whose trust window ran out (each with a read of its own), so that a subscriber the gateway
        no longer authorizes stops receiving states within the window and one poll interval."""
        now = time.monotonic()
        for watcher in watchers:
            if now - self.verified.get(watcher.owner, 0.0) >= self._policy.trust_seconds:
                await self._verify(watcher)

    async def _verify(self, watcher: Watcher) -> None:
        """Check one more subscriber's access with its own key (its trust window ran out)."""
        try:
            await self._hub.poll(watcher, self.batch_id, self.provider)
        except ServiceError as error:
            if access_lost(error):
                self._drop(watcher.owner, error)
            return  # trouble: the next round checks again
        self.verified[watcher.owner] = time.monotonic()

    def _back_off(self, error: ServiceError) -> None:
        policy, now = self._policy, time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since > policy.failure_limit and not self._reported:
            self._reported = True
            ending = ServiceError(
                Code.UNAVAILABLE,
                "WATCH_UPSTREAM_FAILING",
                f"The gateway has been failing for {now - self._failing_since:.0f} s while watching batch "
                f"{self.batch_id} ({error.message}); resume the watch later with the last resume_token.",
                {"batch_id": self.batch_id, "cause": error.reason},
                retry_after=policy.poll_max,
            )
            problem = Problem(self.batch_id, ending, removed=False, last=self.latest)
            for subscriber in list(self.subscribers):
                subscriber.report(problem)
                if not subscriber.many:
                    self._hub.detach(subscriber, self.batch_id, self)
            self._interval = policy.poll_max
            return
        log.warning("watch %s: gateway trouble (%s), backing off", self.batch_id, error.reason)
        self._interval = min(max(self._interval * 2, error.retry_after or 0.0), policy.poll_max)

    def _drop(self, owner: str, error: ServiceError) -> None:
        """A caller lost access: its subscriptions to this batch end; the loop goes on for the others."""
        problem = Problem(self.batch_id, error, removed=True, last=self.latest)
        for subscriber in [s for s in self.subscribers if s.watcher.owner == owner]:
            subscriber.report(problem)
            self._hub.detach(subscriber, self.batch_id, self)
        self.verified.pop(owner, None)

    def _failed(self) -> None:
        failed = ServiceError(
            Code.UNAVAILABLE,
            "WATCH_FAILED",
            f"Watching batch {self.batch_id} failed on the server (logged); resume with the last resume_token.",
            {"batch_id": self.batch_id},
            retry_after=self._policy.poll_min,
        )
        for subscriber in list(self.subscribers):
            subscriber.report(Problem(self.batch_id, failed, removed=False, last=self.latest))
            self._hub.detach(subscriber, self.batch_id, self)  # not left joined to a loop that is gone: it can rejoin

    async def _let_go(self) -> None:
        try:
            await self._hub.fleet.release(self.batch_id, self.name)
        except Exception:  # the lease lapses by itself
            log.warning("watch %s: could not give up the poll lease", self.batch_id, exc_info=True)
