"""What a watch stream has sent: a trail per batch (each event's previous status and resume token), a many-batch
stream's position, heartbeats, and the revisions between the last sent and the latest offered."""

from __future__ import annotations

import time
from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from otari_batch_grpc.server.domain.core.observations import Observation, same_state
from otari_batch_grpc.server.domain.subscriptions.subscribers import Problem
from otari_batch_grpc.server.domain.tokens import CallerTokens, ManyPosition
from otari_batch_grpc.server.store import Store, StoreUnavailable
from otari_batch_grpc.v1 import batch_pb2, watch_pb2

SNAPSHOT = watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
CHANGE = watch_pb2.BATCH_EVENT_KIND_CHANGE
HEARTBEAT = watch_pb2.BATCH_EVENT_KIND_HEARTBEAT
UNAVAILABLE = watch_pb2.BATCH_EVENT_KIND_UNAVAILABLE
REMOVED = watch_pb2.BATCH_EVENT_KIND_REMOVED


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

    def __init__(self, tokens: CallerTokens, ids: Sequence[str], seq: int, *, origin: str) -> None:
        self._tokens = tokens
        self._ids = ids
        self._seq = seq
        self._origin = origin  # this replica's name (Store.origin), in the tokens
        self._token: tuple[int, str] | None = None  # sealed once per position: heartbeats repeat it as it is
        self._trails: dict[str, Trail] = {}

    @property
    def follows_all(self) -> bool:
        """Whether the stream follows every batch of the caller's (none listed)."""
        return not self._ids

    @property
    def token(self) -> str:
        if self._token is None or self._token[0] != self._seq:
            position = ManyPosition(self._seq, time.time(), self._origin)
            self._token = (self._seq, self._tokens.many(position, self._ids))
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


def newer(current: Observation, last: Observation | None) -> Observation:
    """The later of the state read now and the newest revision replayed."""
    return current if last is None or current.rev >= last.rev else last


async def through(store: Store, trail: Trail, item: Observation) -> list[Observation]:
    """The revisions after the trail's up to `item`. The hub offers each stream only the latest state of a batch
    (a slow stream, or revisions another replica saved in a burst, skip some); the ones skipped come from the
    store, so a stream misses none it holds. Without the store at hand, `item` alone (the latest wins)."""
    if item.rev == trail.rev + 1:
        return [item]
    try:
        between = await store.revisions_after(item.batch_id, trail.rev)
    except StoreUnavailable:
        return [item]
    return [*(Observation.of(r) for r in between if r.rev < item.rev), item]
