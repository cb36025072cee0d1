"""WatchBatches: one stream that follows many batches, the listed ones or every live one of the caller's.

Trouble with one batch is an event of its own (UNAVAILABLE, or REMOVED when the batch is no longer the caller's),
never the stream's end; only the caller's key refused ends it. The stream's resume token is a position in the
store's revision sequence: every revision up to it was delivered, so a resume on any replica sends each batch that
moved on since (its change), and the ones new to the caller (a snapshot).

Revisions are numbered in the order they commit, but a replica hands its own to its streams at once and hears of
another's a moment later (NOTIFY, then a read). So a stream may be sent batch B's revision 101, saved here, before
batch A's 100, saved by another replica just before; broken in between, its position says 101 and A's 100 was
never sent. A token also says when and where its position was reached, and a resume sends again, as a snapshot,
each batch with a revision within the position that another replica saved up to RESUME_LOOKBACK_SECONDS before
then: at worst a state the caller has, never one lost. (A store of one process's own has no other replica.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, invalid_argument
from otari_batch_grpc.server.domain.subscriptions.feed import FeedBase, Subscription
from otari_batch_grpc.server.domain.subscriptions.subscribers import Problem, access_lost
from otari_batch_grpc.server.domain.subscriptions.trails import CHANGE, SNAPSHOT, ManyTrail, heartbeat, through
from otari_batch_grpc.server.domain.tokens import ManyPosition
from otari_batch_grpc.v1 import watch_pb2

# Batches one WatchBatches stream follows at most (listed, or every live one of the caller's).
WATCH_MAX_BATCHES = 1000
# How long before a resume position was reached another replica's revision may still have been on its way here: a
# notice's lag, a slow save, the replicas' clocks apart (the window compares one replica's clock with another's).
RESUME_LOOKBACK_SECONDS = 120.0


class ManyFeed(FeedBase):
    async def watch(
        self, subscription: Subscription, batch_ids: Sequence[str], resume_token: str
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """The listed batches (each must be one this caller was shown) or, with none listed, every live batch of
        the caller's and each new one; trouble with one batch is an event of its own, never the stream's end."""
        ids = list(dict.fromkeys(batch_ids))
        position = subscription.tokens.many_position(resume_token, ids) if resume_token else None
        after = position.seq if position else None
        opened = time.time()
        try:
            unsure = await self._unsure(subscription, ids, position)
            targets = await self._targets(subscription, ids, after, unsure)
            self.hub.make_room(subscription.caller.owner, len(targets))  # all of them at once, or none
            # Every event sent while the batches are first read carries the position before them: a resume from
            # it sends each batch again (a snapshot, or its change), so none is lost however early the stream breaks.
            seq = max(after or 0, await self.store.last_seq())
            stream = ManyTrail(subscription.tokens, ids, seq, origin=self.store.origin)
            shown = False
            unread: dict[str, str] = {}  # batches whose first read failed (the gateway away): tried again
            for batch_id, provider in targets:
                event = await self._opening(
                    subscription, stream, batch_id, provider, after=after, unsure=unsure, unread=unread
                )
                if event is not None:
                    yield event
                    shown = True
            if not shown:
                yield heartbeat(stream.token)  # open, with nothing yet to show
            async for event in self._following(subscription, stream, opened, unread, after, unsure):
                yield event
        finally:
            subscription.close()

    async def _unsure(
        self, subscription: Subscription, ids: list[str], position: ManyPosition | None
    ) -> dict[str, str]:
        """The batches (id: provider) a resume at `position` sends again though numbered within it: another replica
        saved a revision of theirs just before it was reached (see above)."""
        if position is None or not position.at:
            return {}
        since = position.at - RESUME_LOOKBACK_SECONDS
        owner = subscription.caller.owner
        among = ids or None
        return dict(
            await self.store.saved_elsewhere(owner, position.seq, since, position.by, WATCH_MAX_BATCHES, among=among)
        )

    async def _targets(
        self, subscription: Subscription, ids: list[str], after: int | None, unsure: dict[str, str]
    ) -> list[tuple[str, str]]:
        """(id, provider) of what a many-batch stream follows: the listed batches, or every live batch of the
        caller's (and, on a resume, those that changed while it was away), the stream then told of new ones."""
        caller = subscription.caller
        if ids:
            return await self._known(caller, ids)
        await self.core.vouch(caller, time_left=None)  # a wrong key follows nothing: say so, not silence
        self.hub.follow_owner(subscription.subscriber)
        targets = await self.store.live_batches(caller.owner, WATCH_MAX_BATCHES)
        if after is not None:  # and those that changed (finished, say) while the caller was away
            changed = await self.store.changed_since(caller.owner, after, WATCH_MAX_BATCHES)
            targets = list(dict.fromkeys([*changed, *unsure.items(), *targets]))[:WATCH_MAX_BATCHES]
        return targets

    async def _opening(
        self,
        subscription: Subscription,
        stream: ManyTrail,
        batch_id: str,
        provider: str,
        *,
        after: int | None,
        unsure: dict[str, str],
        unread: dict[str, str],
        again: bool = False,
    ) -> watch_pb2.BatchEvent | None:
        """A batch's first event on a many-batch stream: a snapshot (new to the caller), its change (it moved on
        while the caller was away), its trouble, or none (the caller has this state; or, following every live
        batch, it had finished before the stream opened).

        A batch that could not be read (the gateway did not answer) is not joined: the caller is told once
        (UNAVAILABLE) and it waits in `unread` to be read `again`, quietly until it can be, so a stream opened
        during an outage still sees each batch's later states."""
        caller = subscription.caller
        try:
            current, verified = await self.core.current(caller, batch_id, provider)
        except ServiceError as error:
            if error.code == Code.UNAUTHENTICATED:
                raise  # the key, not the batch: the stream ends
            removed = access_lost(error)
            if removed:
                unread.pop(batch_id, None)
            else:
                unread[batch_id] = provider
                if again:
                    return None  # (it was told already)
            return await self._problem(caller, stream, Problem(batch_id, error, removed=removed))
        unread.pop(batch_id, None)
        if batch_id in unsure:  # saved elsewhere just now: what this replica remembers may be older than the store
            stored = await self.store.latest_revision(batch_id)
            if stored is not None and stored.rev > current.rev:
                current = Observation.of(stored)
        trail = stream.trail(batch_id)
        if not current.terminal:  # joined first: nothing is missed while the event below waits to be sent
            self.hub.join(subscription.subscriber, batch_id, provider, current, verified_at=verified)
        kind = SNAPSHOT  # new to the caller, or as they last saw it
        # The caller has this state (the one it resumed at); unless another replica saved it just before the
        # position was reached, and it may never have been sent (see above): then a snapshot, to be sure.
        if after is not None and 0 < current.seq <= after and batch_id not in unsure:
            trail.seed(current)
            return None
        if after is not None and current.seq > after:  # it moved on while the caller was away
            before = await self.store.revision_at_or_before(batch_id, after)
            if before is not None:  # (else it is new to them: made, or first shown, since)
                trail.seed(Observation.of(before))
                if trail.repeats(current):  # two replicas saved the same state: they have it
                    return None
                kind = CHANGE
        if kind == SNAPSHOT and current.terminal and stream.follows_all and after is None and not again:
            return None  # finished before the stream opened (the registry had not seen it end): not live
        return trail.event(current, kind, stream.token)

    async def _following(
        self,
        subscription: Subscription,
        stream: ManyTrail,
        opened: float,
        unread: dict[str, str],
        after: int | None,
        unsure: dict[str, str],
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """What the hub offers a many-batch stream from now on, with a heartbeat each quiet while; a stream of no
        live batch checks its key once the trust window ran out; the batches not yet read are tried again as
        often."""
        caller, subscriber = subscription.caller, subscription.subscriber
        quiet = tried = time.monotonic()
        while True:
            news = await subscriber.next(min(self.heartbeat_seconds, self.recheck_seconds))
            if unread and time.monotonic() - tried >= self.recheck_seconds:
                tried = time.monotonic()
                for batch_id, provider in list(unread.items()):
                    event = await self._opening(
                        subscription, stream, batch_id, provider, after=after, unsure=unsure, unread=unread, again=True
                    )
                    if event is not None:
                        quiet = time.monotonic()
                        yield event
            if not subscriber.joined:  # no poll loop checks this caller's key: ask, once the trust window ran out
                await self._still_taken(caller)
            if news:
                quiet = time.monotonic()
            elif time.monotonic() - quiet >= self.heartbeat_seconds:
                quiet = time.monotonic()
                yield heartbeat(stream.token)
            for item in news:
                async for event in self._offered(subscription, stream, item, opened):
                    yield event

    async def _offered(
        self, subscription: Subscription, stream: ManyTrail, item: Observation | Problem, opened: float
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """The events of one item the hub offered a many-batch stream."""
        subscriber = subscription.subscriber
        if isinstance(item, Problem):
            yield await self._problem(subscription.caller, stream, item)
            if item.removed:
                self.hub.leave(subscriber, [item.batch_id])
            return
        trail = stream.trail(item.batch_id)
        if item.rev <= trail.rev:
            return
        if trail.last is None:  # new to this stream
            stream.advance(item.seq)
            if item.terminal and item.batch.created_at.seconds < opened - 1:
                return  # a batch that existed, finished, when the stream opened (a listing showed it)
            yield trail.event(item, SNAPSHOT, stream.token)
        else:
            for observation in await through(self.store, trail, item):
                stream.advance(observation.seq)
                if not trail.repeats(observation):  # (a repeat: two replicas saved the same state)
                    yield trail.event(observation, CHANGE, stream.token)
        if trail.finished:
            self.hub.leave(subscriber, [item.batch_id])

    async def _still_taken(self, caller: Caller) -> None:
        """Raise UNAUTHENTICATED once the gateway refuses the caller's key (asked when the trust window ran out). A
        gateway that does not answer ends nothing: the stream serves nothing new meanwhile, and asks again."""
        try:
            await self.core.vouch(caller, time_left=None)
        except ServiceError as error:
            if error.code == Code.UNAUTHENTICATED:
                raise

    async def _known(self, caller: Caller, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(id, provider) of each batch asked for; all of them must be batches this caller was shown."""
        found: list[tuple[str, str]] = []
        unknown: list[FieldViolation] = []
        for index, batch_id in enumerate(ids):
            provider = await self.core.shown_provider(caller, batch_id)
            if provider is None:
                unknown.append(
                    FieldViolation(
                        f"batch_ids[{index}]",
                        f"batch {batch_id} has not been shown to you through this service: get, list or create it "
                        "here first (WatchBatches has no provider to ask the gateway with)",
                    )
                )
            else:
                found.append((batch_id, provider))
        if unknown:
            raise invalid_argument(unknown)
        return found

    async def _problem(self, caller: Caller, stream: ManyTrail, problem: Problem) -> watch_pb2.BatchEvent:
        """Trouble with one batch of a many-batch stream, as its event. It carries the batch's last state only to a
        caller the gateway still authorizes for it (never after REMOVED: the batch is no longer the caller's), else
        the batch id alone."""
        last = problem.last
        if last is None and not problem.removed:
            last = self.hub.latest(problem.batch_id) or await self.core.latest(problem.batch_id)
        if problem.removed or last is None or not await self.core.trusted(caller, problem.batch_id):
            last = None
        return stream.problem(problem, last)
