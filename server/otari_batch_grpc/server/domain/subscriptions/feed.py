"""Subscriptions: what a stream that follows batches is owed, below the service.

WatchBatch, WaitBatch and StreamResults(wait) are adapters over the Feed, WatchBatches over the ManyFeed (many.py)
beside it; a Subscription is what each holds. They own:
- the state a subscription starts from: the latest the service knows (the hub's, or the store's last revision)
  when the gateway showed this caller the batch within the trust window, at no gateway call; else a gateway read
  (concurrent identical ones share a call, in the core). The hub's next poll refreshes it either way.
- replay and dedupe: a resume token names the last revision the caller saw; what was saved after it comes from the
  store (on any replica, after a restart), and a revision repeating the state last sent (two replicas saw it) is
  no news: its token is taken, nothing is sent.
- heartbeats: a quiet stream gets one every `heartbeat_seconds`, with the last token.
- who may be sent what: a state from the service's own (a snapshot, a replay, a problem event's last state) only to
  a caller the gateway authorized for the batch lately (core.current, core.trusted); a stream of no live batch
  checks the caller's key once the trust window runs out (every `recheck_seconds` at most), so a key the gateway
  refuses ends it too.
- the hub membership and the per-caller count of batches watched: a Subscription takes them as it follows batches
  and gives all of them back in one place, `close`, whatever ends the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.subscriptions.hub import Hub
from otari_batch_grpc.server.domain.subscriptions.subscribers import Subscriber
from otari_batch_grpc.server.domain.subscriptions.trails import SNAPSHOT, Trail, heartbeat, newer, through
from otari_batch_grpc.server.domain.tokens import resume_expired
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.v1 import watch_pb2


class Subscription:
    """One stream's hold on the hub: its inbox, the batches it follows (each counted against its owner) and, for a
    stream that follows all of them, its owner's new batches. `close` gives all of it back; it is called by
    whichever comes first, the call's end or the stream's, and does its work once."""

    __slots__ = ("_closed", "_hub", "caller", "subscriber", "tokens")

    def __init__(self, feed: Feed, caller: Caller, *, many: bool) -> None:
        self.caller = caller
        self.tokens = feed.core.tokens_for(caller)
        self.subscriber = Subscriber(caller.watcher, many=many)
        self._hub = feed.hub
        self._hub.track(self.subscriber)
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.untrack(self.subscriber)
        self._hub.unfollow_owner(self.subscriber)
        self._hub.leave(self.subscriber)


class FeedBase:
    """What a feed serves from (the core, the hub, the store) and how often a quiet stream speaks: shared by the
    one-batch feed (Feed) and the many-batch one (many.ManyFeed)."""

    def __init__(
        self, core: Batches, *, hub: Hub, store: Store, heartbeat_seconds: float, recheck_seconds: float
    ) -> None:
        self.core = core
        self.hub = hub
        self.store = store
        self.heartbeat_seconds = heartbeat_seconds
        self.recheck_seconds = recheck_seconds  # a stream of no live batch looks at its key this often, at most


class Feed(FeedBase):
    def subscription(self, caller: Caller, *, many: bool = False) -> Subscription:
        return Subscription(self, caller, many=many)

    # -- one batch ---------------------------------------------------------------------------------------------
    async def watch(
        self, subscription: Subscription, batch_id: str, provider: str, resume_token: str
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """A snapshot (or what was missed since `resume_token`), then each change; ends at a terminal state."""
        after = subscription.tokens.resume_rev(resume_token, batch_id) if resume_token else None
        caller, subscriber = subscription.caller, subscription.subscriber
        self.hub.make_room(caller.owner, 1)
        try:
            current, verified = await self.core.current(caller, batch_id, provider)
            missed = [] if after is None else await self._missed(batch_id, after, current)
            trail = Trail(subscription.tokens)
            if not current.terminal:  # joined before anything is sent: nothing is missed while a send waits
                self.hub.join(subscriber, batch_id, provider, current, verified_at=verified)
            replayed = False
            if missed:
                trail.seed(missed[0])  # what the caller saw last: the base for previous_status, and its token
                trail.token = resume_token
                for observation in missed[1:]:
                    if not trail.repeats(observation):  # two replicas saved the same state: the caller has it
                        replayed = True
                        yield trail.event(observation)
            if not replayed and (trail.last is None or current.rev > trail.rev):  # the state now, unless the caller
                yield trail.event(newer(current, trail.last), SNAPSHOT)  # resumed at it (then it has it already)
            elif not replayed:
                yield heartbeat(trail.token)  # resumed, and nothing is new: said at once, with the token
            del missed  # a stream that goes on holds none of what it replayed
            while not trail.finished:
                news = await subscriber.next(self.heartbeat_seconds)
                if not news:
                    yield heartbeat(trail.token)
                for item in news:
                    if isinstance(item, Observation) and item.rev > trail.rev:
                        for observation in await through(self.store, trail, item):
                            if not trail.repeats(observation):
                                yield trail.event(observation)
        finally:
            subscription.close()

    # -- waiting -----------------------------------------------------------------------------------------------
    async def wait(
        self, subscription: Subscription, batch_id: str, provider: str, *, limit: float | None
    ) -> Observation:
        """The batch once terminal, or its latest state when `limit` seconds (counted from now) pass."""
        deadline = None if limit is None else time.monotonic() + limit  # before the first read: it spends the limit too
        caller, subscriber = subscription.caller, subscription.subscriber
        try:
            latest, verified = await self.core.current(caller, batch_id, provider)
            if latest.terminal:
                return latest
            self.hub.join(subscriber, batch_id, provider, latest, verified_at=verified)
            while not latest.terminal:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                for item in await subscriber.next(min(left or 3600.0, 3600.0)):
                    if isinstance(item, Observation) and item.rev > latest.rev:
                        latest = item
            return latest
        finally:
            subscription.close()

    async def follow(
        self, subscription: Subscription, latest: Observation, provider: str, *, every: float
    ) -> AsyncGenerator[Observation, None]:
        """From `latest` on: the batch's state at once, then on each change and after each quiet `every` seconds;
        ends with its terminal state."""
        subscriber = subscription.subscriber
        try:
            self.hub.join(subscriber, latest.batch_id, provider, latest)
            yield latest
            while not latest.terminal:
                news = await subscriber.next(every)
                newer = [i for i in news if isinstance(i, Observation) and i.rev > latest.rev]
                if newer:
                    latest = newer[-1]
                if newer or not news:  # a change, or a quiet while: not a repeat
                    yield latest
        finally:
            subscription.close()

    # -- what a subscription resumes from ----------------------------------------------------------------------
    async def _missed(self, batch_id: str, rev: int, current: Observation) -> list[Observation]:
        """Revision `rev` (what the caller last saw) and every one after it: the store's, unless `rev` is the
        latest (a resume with nothing new, as after a restart: no read)."""
        if rev == current.rev:
            return [current]
        revisions = await self.store.revisions_after(batch_id, rev - 1)
        if not revisions or revisions[0].rev != rev:
            raise resume_expired(batch_id)
        return [Observation.of(r) for r in revisions]
