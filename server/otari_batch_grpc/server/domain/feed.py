"""Subscriptions: what a stream that follows batches is owed, below the service.

WatchBatch, WatchBatches, WaitBatch and StreamResults(wait) are adapters over the one Feed. It owns:
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
from collections.abc import AsyncGenerator, Sequence

from google.protobuf import timestamp_pb2

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.core.observations import Observation, same_state
from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, invalid_argument
from otari_batch_grpc.server.domain.hub import Hub
from otari_batch_grpc.server.domain.subscribers import ACCESS_LOST, Problem, Subscriber
from otari_batch_grpc.server.domain.tokens import CallerTokens, resume_expired
from otari_batch_grpc.server.store import Store, StoreUnavailable
from otari_batch_grpc.v1 import batch_pb2, watch_pb2

SNAPSHOT = watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
CHANGE = watch_pb2.BATCH_EVENT_KIND_CHANGE
HEARTBEAT = watch_pb2.BATCH_EVENT_KIND_HEARTBEAT
UNAVAILABLE = watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE
REMOVED = watch_pb2.BATCH_EVENT_KIND_REMOVED
# Batches one WatchBatches stream follows at most (listed, or every live one of the caller's).
WATCH_MAX_BATCHES = 1000


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


class Feed:
    def __init__(
        self, core: Batches, *, hub: Hub, store: Store, heartbeat_seconds: float, recheck_seconds: float
    ) -> None:
        self.core = core
        self.hub = hub
        self.store = store
        self.heartbeat_seconds = heartbeat_seconds
        self.recheck_seconds = recheck_seconds  # a stream of no live batch looks at its key this often, at most

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
                yield trail.event(_newer(current, trail.last), SNAPSHOT)  # resumed at it (then it has it already)
            elif not replayed:
                yield heartbeat(trail.token)  # resumed, and nothing is new: said at once, with the token
            del missed  # a stream that goes on holds none of what it replayed
            while not trail.finished:
                news = await subscriber.next(self.heartbeat_seconds)
                if not news:
                    yield heartbeat(trail.token)
                for item in news:
                    if isinstance(item, Observation) and item.rev > trail.rev:
                        for observation in await self._through(trail, item):
                            if not trail.repeats(observation):
                                yield trail.event(observation)
        finally:
            subscription.close()

    # -- many batches ------------------------------------------------------------------------------------------
    async def watch_many(
        self, subscription: Subscription, batch_ids: Sequence[str], resume_token: str
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """The listed batches (each must be one this caller was shown) or, with none listed, every live batch of
        the caller's and each new one; trouble with one batch is an event of its own, never the stream's end."""
        ids = list(dict.fromkeys(batch_ids))
        after = subscription.tokens.many_seq(resume_token, ids) if resume_token else None
        opened = time.time()
        try:
            targets = await self._targets(subscription, ids, after)
            self.hub.make_room(subscription.caller.owner, len(targets))  # all of them at once, or none
            # Every event sent while the batches are first read carries the position before them: a resume from
            # it sends each batch again (a snapshot, or its change), so none is lost however early the stream breaks.
            stream = ManyTrail(subscription.tokens, ids, max(after or 0, await self.store.last_seq()))
            shown = False
            for batch_id, provider in targets:
                event = await self._opening(subscription, stream, batch_id, provider, after=after)
                if event is not None:
                    yield event
                    shown = True
            if not shown:
                yield heartbeat(stream.token)  # open, with nothing yet to show
            async for event in self._following(subscription, stream, opened):
                yield event
        finally:
            subscription.close()

    async def _targets(self, subscription: Subscription, ids: list[str], after: int | None) -> list[tuple[str, str]]:
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
            targets = list(dict.fromkeys([*changed, *targets]))[:WATCH_MAX_BATCHES]
        return targets

    async def _opening(
        self, subscription: Subscription, stream: ManyTrail, batch_id: str, provider: str, *, after: int | None
    ) -> watch_pb2.BatchEvent | None:
        """A batch's first event on a many-batch stream: a snapshot (new to the caller), its change (it moved on
        while the caller was away), its trouble, or none (the caller has this state; or, following every live
        batch, it had finished before the stream opened)."""
        caller = subscription.caller
        try:
            current, verified = await self.core.current(caller, batch_id, provider)
        except ServiceError as error:
            if error.code == Code.UNAUTHENTICATED:
                raise  # the key, not the batch: the stream ends
            return await self._problem(caller, stream, Problem(batch_id, error, removed=error.code in ACCESS_LOST))
        trail = stream.trail(batch_id)
        if not current.terminal:  # joined first: nothing is missed while the event below waits to be sent
            self.hub.join(subscription.subscriber, batch_id, provider, current, verified_at=verified)
        kind = SNAPSHOT  # new to the caller, or as they last saw it
        if after is not None and 0 < current.seq <= after:  # the caller has this state (the one it resumed at)
            trail.seed(current)
            return None
        if after is not None and current.seq > after:  # it moved on while the caller was away
            before = await self.store.revision_at_or_before(batch_id, after)
            if before is not None:  # (else it is new to them: made, or first shown, since)
                trail.seed(Observation.of(before))
                if trail.repeats(current):  # two replicas saved the same state: they have it
                    return None
                kind = CHANGE
        if kind == SNAPSHOT and current.terminal and stream.follows_all and after is None:
            return None  # finished before the stream opened (the registry had not seen it end): not live
        return trail.event(current, kind, stream.token)

    async def _following(
        self, subscription: Subscription, stream: ManyTrail, opened: float
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """What the hub offers a many-batch stream from now on, with a heartbeat each quiet while; a stream of no
        live batch checks its key once the trust window ran out."""
        caller, subscriber = subscription.caller, subscription.subscriber
        quiet = time.monotonic()
        while True:
            news = await subscriber.next(min(self.heartbeat_seconds, self.recheck_seconds))
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
            for observation in await self._through(trail, item):
                stream.advance(observation.seq)
                if not trail.repeats(observation):  # (a repeat: two replicas saved the same state)
                    yield trail.event(observation, CHANGE, stream.token)
        if trail.finished:
            self.hub.leave(subscriber, [item.batch_id])

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

    async def _still_taken(self, caller: Caller) -> None:
        """Raise UNAUTHENTICATED once the gateway refuses the caller's key (asked when the trust window ran out). A
        gateway that does not answer ends nothing: the stream serves nothing new meanwhile, and asks again."""
        try:
            await self.core.vouch(caller, time_left=None)
        except ServiceError as error:
            if error.code == Code.UNAUTHENTICATED:
                raise

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

    async def _through(self, trail: Trail, item: Observation) -> list[Observation]:
        """The revisions after the trail's up to `item`. The hub offers each stream only the latest state of a batch
        (a slow stream, or revisions another replica saved in a burst, skip some); the ones skipped come from the
        store, so a stream misses none it holds. Without the store at hand, `item` alone (the latest wins)."""
        if item.rev == trail.rev + 1:
            return [item]
        try:
            between = await self.store.revisions_after(item.batch_id, trail.rev)
        except StoreUnavailable:
            return [item]
        return [*(Observation.of(r) for r in between if r.rev < item.rev), item]

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


# -- what a stream has sent ------------------------------------------------------------------------------------
class Trail:
    """What one stream has sent for one batch: builds each event with its previous status and token."""

    __slots__ = ("_tokens", "last", "rev", "status", "token")

    def __init__(self, tokens: CallerTokens) -> None:
        self._tokens = tokens
        self.rev = 0
        self.status: int = batch_pb2.BATCH_STATUS_UNSPECIFIED
        self.last: Observation | None = None
        self.token = ""

    @property
    def finished(self) -> bool:
        return self.last is not None and self.last.terminal

    def event(self, observation: Observation, kind: int = CHANGE, token: str | None = None) -> watch_pb2.BatchEvent:
        previous = self.status if kind != SNAPSHOT else batch_pb2.BATCH_STATUS_UNSPECIFIED
        self.token = token if token is not None else self._tokens.resume(observation.batch_id, observation.rev)
        event = watch_pb2.BatchEvent(
            kind=kind,  # type: ignore[arg-type]
            batch=observation.batch,
            previous_status=previous,  # type: ignore[arg-type]
            resume_token=self.token,
        )
        event.observed_at.FromNanoseconds(int(observation.observed_at * 1e9))
        self.seed(observation)
        return event

    def repeats(self, observation: Observation) -> bool:
        """Whether a newer revision shows the state last sent: then it is the base (and the token) from now on,
        and nothing is sent."""
        if self.last is None or not same_state(self.last.batch, observation.batch):
            return False
        self.seed(observation)
        self.token = self._tokens.resume(observation.batch_id, observation.rev)
        return True

    def seed(self, observation: Observation) -> None:
        """Take a state the caller has (sent, or seen before a resume) as the base for the next change."""
        self.rev, self.status, self.last = observation.rev, observation.batch.status, observation


class ManyTrail:
    """A WatchBatches stream: a trail per batch, and the stream's position (every revision up to it delivered)."""

    def __init__(self, tokens: CallerTokens, ids: Sequence[str], seq: int) -> None:
        self._tokens = tokens
        self._ids = ids
        self._seq = seq
        self._token: tuple[int, str] | None = None  # sealed once per position: heartbeats repeat it as it is
        self._trails: dict[str, Trail] = {}

    @property
    def follows_all(self) -> bool:
        """Whether the stream follows every batch of the caller's (none listed)."""
        return not self._ids

    @property
    def token(self) -> str:
        if self._token is None or self._token[0] != self._seq:
            self._token = (self._seq, self._tokens.many(self._seq, self._ids))
        return self._token[1]

    def advance(self, seq: int) -> None:
        self._seq = max(self._seq, seq)

    def trail(self, batch_id: str) -> Trail:
        trail = self._trails.get(batch_id)
        if trail is None:
            trail = self._trails[batch_id] = Trail(self._tokens)
        return trail

    def problem(self, problem: Problem, last: Observation | None) -> watch_pb2.BatchEvent:
        """The event of a problem; `last`, the batch's state to show with it (None: its id alone)."""
        event = watch_pb2.BatchEvent(
            kind=REMOVED if problem.removed else UNAVAILABLE,
            observed_at=_now(),
            resume_token=self.token,
            problem=watch_pb2.BatchProblem(
                code=problem.error.code.name, reason=problem.error.reason, message=problem.error.message
            ),
        )
        if last is not None:
            event.batch.CopyFrom(last.batch)
        else:
            event.batch.id = problem.batch_id
        return event


def heartbeat(token: str) -> watch_pb2.BatchEvent:
    """The same on every watch stream: no batch, the time, and the token of the last event."""
    return watch_pb2.BatchEvent(kind=HEARTBEAT, observed_at=_now(), resume_token=token)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _newer(current: Observation, last: Observation | None) -> Observation:
    """The later of the state read now and the newest revision replayed."""
    return current if last is None or current.rev >= last.rev else last
