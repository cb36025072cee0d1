"""The one path a batch state enters by: every state the gateway shows a caller goes into the registry (with that
caller's access) and, when it changed, becomes the batch's next revision, in one transaction; then, saved, it is
announced to the watch hub. And the latest state of each batch, remembered so that a repeat needs no store."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence

from cachetools import LRUCache

from otari_batch_grpc.server.domain.core.observations import Observation, behind, count_requests, same_state, seen
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.notifications.outbox import events_for
from otari_batch_grpc.server.domain.subscriptions.hub import Hub
from otari_batch_grpc.server.store import Access, Change, Delivery, Store
from otari_batch_grpc.server.util.singleflight import SingleFlight
from otari_batch_grpc.v1 import batch_pb2

# States kept in memory to tell a change from a repeat without reading the store.
_LATEST_CACHED = 10_000


class States:
    """Batch states in (`enter`), and the latest one known of each batch (`latest`)."""

    def __init__(self, *, store: Store, hub: Hub, trust: Trust, revisions_kept: int) -> None:
        self._store = store
        self._hub = hub
        self._trust = trust
        self._revisions_kept = revisions_kept
        self._entering = asyncio.Lock()
        self._latest: LRUCache[str, Observation] = LRUCache(_LATEST_CACHED)
        self._reading: SingleFlight[Observation | None] = SingleFlight()  # by batch: its latest revision
        # Told when a save put events into the webhook outbox (the deliverer wakes: see notifications.deliverer).
        self.on_outbox: Callable[[], None] | None = None

    async def enter(
        self,
        batches: Sequence[batch_pb2.Batch],
        provider: str,
        owner: str,
        *,
        shown_at: float,
        creator: bool = False,
    ) -> list[Observation]:
        """States the gateway showed `owner` (in answer to a call sent at `shown_at`, epoch seconds: the time its
        access counts from): saved (registry, access, a revision per change), then announced (subscribers of each
        changed batch, and `owner`'s many-batch streams). Returns each as an observation. States this process holds
        already, whose access was written lately, need no saving: no lock, no store."""
        result = self._repeats(batches, owner, creator=creator)
        if result is None:
            async with self._entering:
                result = await self._save(batches, provider, owner, creator=creator, shown_at=shown_at)
        for observation in result:
            self._hub.announce(observation, provider, owner)
        return result

    def _due(self) -> float:
        """How old an owner's access may be before a repeat writes it again: a quarter of the trust window."""
        return self._trust.seconds / 4

    def _repeats(self, batches: Sequence[batch_pb2.Batch], owner: str, *, creator: bool) -> list[Observation] | None:
        """Each batch as the latest state this process holds, when that is what the gateway showed and the owner's
        access was written within a quarter of the trust window (a poll that saw no change); else None."""
        if creator:
            return None
        now, due = time.time(), self._due()
        found = []
        for batch in batches:
            last, shown = self._latest.get(batch.id), self._trust.shown(batch.id, owner)
            if last is not None:
                count_requests(batch, last.batch.request_counts.total)
            if last is None or shown is None or now - shown.verified_at > due or not same_state(last.batch, batch):
                return None
            found.append(last.as_shown(batch))
        return found

    async def _save(
        self, batches: Sequence[batch_pb2.Batch], provider: str, owner: str, *, creator: bool, shown_at: float
    ) -> list[Observation]:
        now = time.time()  # when the service observed these states; their access counts from `shown_at`
        observations: list[Observation | None] = []
        changed = []
        verified = []
        for batch in batches:
            last = await self.latest(batch.id)
            if last is not None:
                count_requests(batch, last.batch.request_counts.total)
            known = None if last is None else _known_state(last, batch)
            observations.append(known)
            if known is None:
                changed.append(seen(batch, provider))
                continue
            shown = self._trust.shown(batch.id, owner)
            if creator or shown is None or now - shown.verified_at > self._due():
                verified.append(batch.id)
        outbox: list[Delivery] = []
        revisions = await self._store.enter(
            changed,
            verified,
            owner=owner,
            creator=creator,
            keep=self._revisions_kept,
            observed_at=now,
            shown_at=shown_at,
            notify=functools.partial(_events_for, outbox),  # the webhook outbox, in the same transaction
            trusted_since=now - self._trust.seconds,
        )
        if outbox and self.on_outbox is not None:
            self.on_outbox()
        new = iter(revisions)
        written = set(verified)
        result: list[Observation] = []
        for batch, known in zip(batches, observations, strict=True):
            observation = known if known is not None else Observation.of(next(new)).as_shown(batch)
            if known is None:
                self.remember(observation)
                self._hub.publish(observation)  # saved: now announced, in the order saved
                written.add(batch.id)
            if batch.id in written:  # the memo says what the store says (other replicas, a restart, read that)
                self._trust.remember(batch.id, owner, Access(shown_at, provider))
            result.append(observation)
        return result

    # -- the latest state of a batch ------------------------------------------------------------------------
    def known(self, batch_id: str) -> Observation | None:
        """The latest state this process remembers of the batch (no store read)."""
        return self._latest.get(batch_id)

    async def latest(self, batch_id: str) -> Observation | None:
        """The newest revision of the batch this service holds (remembered, or read from the store: concurrent reads
        of one batch, its subscribers resuming after a restart, share one)."""
        cached = self._latest.get(batch_id)
        if cached is not None:
            return cached
        return await self._reading.run(batch_id, lambda: self._latest_stored(batch_id))

    async def _latest_stored(self, batch_id: str) -> Observation | None:
        stored = await self._store.latest_revision(batch_id)
        if stored is None:
            return None
        observation = Observation.of(stored)
        known = self._latest.get(batch_id)
        if known is not None and known.rev >= observation.rev:  # a newer state entered while the store was read
            return known
        self.remember(observation)
        return observation

    async def caught_up(self, batch_id: str, after_rev: int) -> list[Observation]:
        """Revisions of the batch saved after `after_rev`, by any replica, remembered as the latest known."""
        observations = [Observation.of(r) for r in await self._store.revisions_after(batch_id, after_rev)]
        if observations:
            self.remember(observations[-1])
        return observations

    def remember(self, observation: Observation) -> None:
        self._latest[observation.batch_id] = observation

    def forget(self, batch_id: str | None = None) -> None:
        """What is remembered of the batch is stale (another replica saved a revision), or of every batch (None)."""
        if batch_id is None:
            self._latest.clear()
        else:
            self._latest.pop(batch_id, None)


def _known_state(last: Observation, batch: batch_pb2.Batch) -> Observation | None:
    """`batch` as the revision the service holds, when it is no news: the same state, or a late answer to a read
    sent before the change `last` shows (a cancel answered first), which would take the batch back: then the
    caller gets `last`, and no one sees a batch go back. None for a change."""
    if same_state(last.batch, batch):
        return last.as_shown(batch)
    if behind(batch, last.batch):
        return last.echoing(batch.provider)
    return None


def _events_for(written: list[Delivery], changes: Sequence[Change]) -> list[Delivery]:
    """The outbox's events of `changes` (see notifications.outbox), kept in `written` too: the caller's own list, as
    this may run off the event loop (SQLite runs a transaction on its thread)."""
    deliveries = events_for(changes)
    written.extend(deliveries)
    return deliveries
