"""Replicas on one store: which of them polls each live batch (a lease), and what each hears of the others (the
revisions they saved, the keys they heard refused). A store of one process's own has neither."""

from __future__ import annotations

import asyncio
import logging
import uuid

from otari_batch_grpc.server.domain.core.observations import Observation
from otari_batch_grpc.server.domain.core.states import States
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.subscriptions.hub import Hub
from otari_batch_grpc.server.store import Notice, RefusalNotice, RevisionNotice, Store, StoreUnavailable

log = logging.getLogger("otari_batch_grpc.core")


class ReplicaFleet:
    """The hub's fleet (hub.Fleet) when replicas share the store: a lease per live batch decides which one polls it
    (held by this process's name, renewed at each of its turns, taken over once its holder stops renewing); the
    others read the revisions it saves."""

    def __init__(self, *, store: Store, states: States, lease_seconds: float) -> None:
        self._store = store
        self._states = states
        self._seconds = lease_seconds
        self.name = uuid.uuid4().hex

    # While the database does not answer, no replica can save a poll: a loop holds no lease and reads nothing new,
    # and goes on (its subscribers stay; it reads again next turn) instead of failing.
    async def hold(self, batch_id: str, loop: str) -> bool:
        try:
            return await self._store.hold_lease(f"poll:{batch_id}", f"{self.name}/{loop}", self._seconds)
        except StoreUnavailable:
            return False

    async def release(self, batch_id: str, loop: str) -> None:
        await self._store.release_lease(f"poll:{batch_id}", f"{self.name}/{loop}")

    async def catch_up(self, batch_id: str, after_rev: int) -> list[Observation]:
        try:
            return await self._states.caught_up(batch_id, after_rev)
        except StoreUnavailable:
            return []


class Notices:
    """What this replica hears of the others, through the store: each revision they save, each key they hear the
    gateway refuse."""

    def __init__(self, *, store: Store, states: States, hub: Hub, trust: Trust) -> None:
        self._store = store
        self._states = states
        self._hub = hub
        self._trust = trust
        self._tasks: set[asyncio.Task[None]] = set()

    async def follow(self) -> None:
        await self._store.follow(self.heard)

    def heard(self, notice: Notice) -> None:
        """Another replica saved a revision: what this one remembers of the batch is stale; its loop here (if any)
        reads the revision now; streams here that follow all of the owner's batches start following it. Or it
        heard the gateway refuse a key: so does this one."""
        if isinstance(notice, RefusalNotice):
            self._trust.refuse(notice.owner, notice.at, tell=False)
            return
        self._states.forget(notice.batch_id)
        self._hub.wake(notice.batch_id)
        if self._hub.follows(notice.owner):
            task = asyncio.create_task(self._announce(notice), name=f"announce {notice.batch_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _announce(self, notice: RevisionNotice) -> None:
        try:
            revision = await self._store.latest_revision(notice.batch_id)
        except Exception:
            log.warning("could not read the revision another replica announced", exc_info=True)
            return
        if revision is not None:
            self._hub.announce(Observation.of(revision), notice.provider, notice.owner)
