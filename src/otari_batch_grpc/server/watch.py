"""The watch hub: one poll loop per live batch, shared by every subscriber, fanned out latest-wins.

- `observe` is the one way a batch state enters: compared with the last revision, a change is stored as the next
  revision in SQLite and offered to every subscriber of that batch.
- A loop starts with its first subscriber and stops when the last leaves or the batch is terminal. Its interval
  adapts (the minimum right after a change, growing while nothing changes, with jitter); upstream trouble backs
  it off, and only a failure that lasts past `failure_limit` ends its subscribers (UNAVAILABLE + RetryInfo).
- A subscriber holds at most one pending state per batch: a slow one gets the latest state when it catches up
  (changes coalesce, the terminal one is last and so never lost) and never slows the loop or other subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from otari_batch_grpc.server import convert
from otari_batch_grpc.server.errors import ServiceError, from_upstream, shutting_down
from otari_batch_grpc.server.gateway import GatewayClient, UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.locks import KeyedLocks
from otari_batch_grpc.server.records import seen
from otari_batch_grpc.server.store import Revision, Store
from otari_batch_grpc.v1 import batch_pb2

log = logging.getLogger("otari_batch_grpc.watch")

# The gateway's answers that mean "this caller may not see this batch": the loop drops that caller, not the loop.
_ACCESS_LOST = (401, 403, 404)


@dataclass(frozen=True, kw_only=True)
class WatchPolicy:
    poll_min: float = 1.0
    poll_max: float = 15.0
    failure_limit: float = 60.0
    revisions_kept: int = 100


@dataclass(frozen=True)
class Observation:
    """A batch state the service saw at the gateway, as revision `rev`."""

    batch: batch_pb2.Batch
    rev: int
    observed_at: float

    @property
    def terminal(self) -> bool:
        return self.batch.status in convert.TERMINAL_STATUSES

    @classmethod
    def of(cls, revision: Revision) -> Observation:
        return cls(batch_pb2.Batch.FromString(revision.snapshot), revision.rev, revision.observed_at)


@dataclass(frozen=True)
class Watcher:
    """Who subscribes: the credential the loop may poll with, and its owner hash (for the registry)."""

    key: str = field(repr=False)
    owner: str


class Subscriber:
    """One stream's inbox: the latest pending observation per batch, and an error that ends the stream."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self._pending: dict[str, Observation] = {}
        self._wake = asyncio.Event()
        self.error: ServiceError | None = None
        self.joined: set[str] = set()  # the batches whose loops it is in

    def offer(self, observation: Observation) -> None:
        held = self._pending.get(observation.batch.id)
        if held is None or held.rev < observation.rev:
            self._pending[observation.batch.id] = observation
            self._wake.set()

    def end(self, error: ServiceError) -> None:
        self.error = error
        self._wake.set()

    def pending(self) -> int:
        return len(self._pending)

    async def next(self, within: float) -> list[Observation]:
        """The pending observations, oldest first; [] when `within` seconds pass with none. Raises the error that
        ended the subscription."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as the
        # wait completes, which would leave a cancelled watch running.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._wake.wait()
        self._wake.clear()
        if self.error is not None:
            raise self.error
        taken = sorted(self._pending.values(), key=lambda o: o.observed_at)
        self._pending.clear()
        return taken


@dataclass
class _Loop:
    batch_id: str
    provider: str
    subscribers: set[Subscriber] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Hub:
    def __init__(self, *, gateway: GatewayClient, store: Store, policy: WatchPolicy) -> None:
        self._gateway = gateway
        self._store = store
        self.policy = policy
        self._loops: dict[str, _Loop] = {}
        self._latest: dict[str, Observation] = {}  # for batches with a live loop
        self._observing = KeyedLocks()
        self._owner_streams: dict[str, set[Subscriber]] = {}
        self._closed = False

    # -- state in ------------------------------------------------------------------------------------------
    async def observe(self, batch: batch_pb2.Batch) -> tuple[Observation, bool]:
        """Record a state the gateway returned; returns its observation and whether it is a new revision."""
        batch_id = batch.id
        async with self._observing.hold(batch_id):
            last = self._latest.get(batch_id)
            if last is None:
                stored = await self._store.latest_revision(batch_id)
                last = Observation.of(stored) if stored else None
            if last is not None and _same_state(last.batch, batch):
                return Observation(batch, last.rev, last.observed_at), False  # as this caller was shown it
            revision = await self._store.add_revision(
                batch_id, batch.SerializeToString(deterministic=True), time.time(), keep=self.policy.revisions_kept
            )
            observation = Observation(batch, revision.rev, revision.observed_at)
            loop = self._loops.get(batch_id)
            if loop is not None:
                self._latest[batch_id] = observation
                for subscriber in loop.subscribers:
                    subscriber.offer(observation)
            return observation, True

    def latest(self, batch_id: str) -> Observation | None:
        return self._latest.get(batch_id)

    async def replay(self, batch_id: str, rev: int) -> list[Observation] | None:
        """Revision `rev` (what the caller last saw) and every one after it; None when `rev` is no longer kept."""
        revisions = await self._store.revisions_after(batch_id, rev - 1)
        if not revisions or revisions[0].rev != rev:
            return None
        return [Observation.of(r) for r in revisions]

    # -- subscriptions -------------------------------------------------------------------------------------
    async def join(self, subscriber: Subscriber, batch_id: str, provider: str) -> None:
        """Add an (already authorized) subscriber to the batch's loop, starting the loop if it is the first. The
        subscriber is offered the latest revision at once, so nothing observed before it joined is missed."""
        if self._closed:
            raise shutting_down()
        loop = self._loops.get(batch_id)
        if loop is None:
            loop = self._loops[batch_id] = _Loop(batch_id, provider)
            loop.task = asyncio.create_task(self._run(loop), name=f"watch {batch_id}")
        loop.subscribers.add(subscriber)
        subscriber.joined.add(batch_id)
        latest = self._latest.get(batch_id)
        if latest is None:
            stored = await self._store.latest_revision(batch_id)
            if stored is not None and self._loops.get(batch_id) is loop:
                latest = self._latest.setdefault(batch_id, Observation.of(stored))
        if latest is not None:
            subscriber.offer(latest)

    def leave(self, subscriber: Subscriber, batch_ids: Iterable[str] | None = None) -> None:
        """Take the subscriber out of these batches' loops (all of them by default); a loop left empty stops."""
        for batch_id in list(subscriber.joined if batch_ids is None else batch_ids):
            subscriber.joined.discard(batch_id)
            loop = self._loops.get(batch_id)
            if loop is None:
                continue
            loop.subscribers.discard(subscriber)
            if not loop.subscribers and loop.task is not None:
                loop.task.cancel()

    def follow_owner(self, subscriber: Subscriber) -> None:
        """Tell `subscriber` of every batch its owner is shown from now on (see `announce`)."""
        self._owner_streams.setdefault(subscriber.watcher.owner, set()).add(subscriber)

    def unfollow_owner(self, subscriber: Subscriber) -> None:
        streams = self._owner_streams.get(subscriber.watcher.owner)
        if streams is not None:
            streams.discard(subscriber)
            if not streams:
                del self._owner_streams[subscriber.watcher.owner]

    async def announce(self, observation: Observation, provider: str, owner: str) -> None:
        """The gateway just showed `owner` this batch: owner-wide streams of that owner start following it."""
        streams = self._owner_streams.get(owner)
        if not streams or observation.terminal:
            return
        for subscriber in list(streams):
            subscriber.offer(observation)
            await self.join(subscriber, observation.batch.id, provider)

    def interested(self, batch_id: str, owner: str) -> bool:
        """Whether a state of this batch, shown to `owner`, would reach anyone now."""
        return batch_id in self._loops or owner in self._owner_streams

    def loops(self) -> int:
        return len(self._loops)

    def pending(self) -> int:
        """Observations waiting in subscribers' inboxes: at most one per subscriber and batch."""
        subscribers = {s for loop in self._loops.values() for s in loop.subscribers}
        return sum(s.pending() for s in subscribers)

    async def close(self) -> None:
        """Stop every loop and end every subscription (the server is shutting down)."""
        self._closed = True
        tasks = [loop.task for loop in self._loops.values() if loop.task is not None]
        for loop in list(self._loops.values()):
            for subscriber in loop.subscribers:
                subscriber.end(shutting_down())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the poll loop -------------------------------------------------------------------------------------
    async def _run(self, loop: _Loop) -> None:
        policy = self.policy
        interval = policy.poll_min
        failing_since: float | None = None
        try:
            while loop.subscribers:
                # Jitter keeps loops from polling in lockstep; it only shortens, so no change waits longer than
                # one interval to be seen.
                await asyncio.sleep(interval * random.uniform(0.85, 1.0))
                subscriber = next(iter(loop.subscribers), None)
                if subscriber is None:
                    break
                watcher = subscriber.watcher
                try:
                    data = await self._gateway.get_batch(
                        watcher.key, loop.batch_id, loop.provider, time_left=policy.poll_max
                    )
                except UpstreamHTTPError as exc:
                    if exc.status in _ACCESS_LOST:
                        self._drop(loop, watcher, from_upstream(exc))
                        continue
                    failing_since, interval = self._back_off(loop, exc, failing_since, interval)
                    continue
                except UpstreamError as exc:
                    failing_since, interval = self._back_off(loop, exc, failing_since, interval)
                    continue
                if failing_since is not None:
                    log.info("watch %s: the gateway answers again", loop.batch_id)
                failing_since = None
                batch = convert.batch_from_json(data)
                observation, changed = await self.observe(batch)
                if changed:  # the registry follows changes; an unchanged poll costs no write
                    await self._store.record([seen(batch, loop.provider)], owner=watcher.owner)
                if observation.terminal:
                    break
                interval = policy.poll_min if changed else min(interval * 1.5, policy.poll_max)
        except Exception:
            log.exception("watch %s: the poll loop failed", loop.batch_id)
            failed = ServiceError(
                grpc.StatusCode.UNAVAILABLE,
                "WATCH_FAILED",
                f"Watching batch {loop.batch_id} failed on the server (logged); resume with the last resume_token.",
                {"batch_id": loop.batch_id},
                retry_after=policy.poll_min,
            )
            for subscriber in list(loop.subscribers):
                subscriber.end(failed)
        finally:
            if self._loops.get(loop.batch_id) is loop:
                del self._loops[loop.batch_id]
                self._latest.pop(loop.batch_id, None)

    def _back_off(
        self, loop: _Loop, exc: UpstreamError, failing_since: float | None, interval: float
    ) -> tuple[float | None, float]:
        now = time.monotonic()
        failing_since = failing_since if failing_since is not None else now
        if now - failing_since > self.policy.failure_limit:
            error = from_upstream(exc)
            ending = ServiceError(
                grpc.StatusCode.UNAVAILABLE,
                "WATCH_UPSTREAM_FAILING",
                f"The gateway has been failing for {now - failing_since:.0f} s while watching batch "
                f"{loop.batch_id} ({error.message}); resume the watch later with the last resume_token.",
                {"batch_id": loop.batch_id, "cause": error.reason},
                retry_after=self.policy.poll_max,
            )
            for subscriber in list(loop.subscribers):
                subscriber.end(ending)
            loop.subscribers.clear()
            return failing_since, interval
        log.warning("watch %s: gateway trouble (%s), backing off", loop.batch_id, exc)
        retry_after = getattr(exc, "retry_after", None) or 0.0
        return failing_since, min(max(interval * 2, retry_after), self.policy.poll_max)

    def _drop(self, loop: _Loop, watcher: Watcher, error: ServiceError) -> None:
        """A caller lost access: end its subscriptions to this batch; the loop goes on for the others."""
        for subscriber in [s for s in loop.subscribers if s.watcher.owner == watcher.owner]:
            subscriber.end(error)
            loop.subscribers.discard(subscriber)


def _same_state(a: batch_pb2.Batch, b: batch_pb2.Batch) -> bool:
    """Equal but for `provider`, which the gateway echoes as each caller spelled it."""
    return a.SerializeToString(deterministic=True) == _with_provider(b, a.provider).SerializeToString(
        deterministic=True
    )


def _with_provider(batch: batch_pb2.Batch, provider: str) -> batch_pb2.Batch:
    if batch.provider == provider:
        return batch
    copy = batch_pb2.Batch()
    copy.CopyFrom(batch)
    copy.provider = provider
    return copy
