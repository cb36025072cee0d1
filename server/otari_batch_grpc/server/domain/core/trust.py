"""Who may be served what the service keeps: the one authorization rule, and the gateway's word it rests on.

The service keeps what the gateway showed each caller (the registry, revisions, cached results) and serves it from
its own state: a batch's state, a replayed create, the snapshot inside a watch event, a listing, results, a wait.
All of it goes to a caller only while the gateway has authorized that caller lately:

- **a batch's** (`verified`, `trusted`): the gateway showed the caller (its key) that batch within
  OWNER_TRUST_SECONDS, and has not refused the key since. Otherwise the gateway is asked first: the caller's own
  read of the batch, which authorizes it again or refuses it.
- **a listing, or a stream of nothing yet** (`vouch`): the gateway took the caller's key within the window (any
  answer but a 401 to any call with it). Otherwise the key is checked first (one call that touches no provider).
- **a 401 for a key, heard on any call** (`answered`, told of every answer by the gateway client) ends all of it
  at once: what the gateway showed the key before then no longer counts (here, in the store, and on the other
  replicas, told through the store), and its open streams end UNAUTHENTICATED. Its idempotency claims stay: a key
  reactivated and retrying still gets its first batch. The refusal itself is remembered for REFUSAL_SECONDS, then
  the gateway is asked again (a key reactivated works again within them).
- **a 404 for a batch** (`forget`) ends that caller's access to it.

So a revoked key is refused everywhere within OWNER_TRUST_SECONDS of the revocation, without a single call of its
own to the gateway; 0 makes every such call ask the gateway.

A batch made of several upstream parts is authorized as its parts are: each part is a batch the gateway shows
(and refuses) on its own, so the whole is verified when every part is, as of the oldest part's showing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from cachetools import LRUCache

from otari_batch_grpc.server.domain.errors import Code, ServiceError, from_upstream
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import KeyRefused, UpstreamError
from otari_batch_grpc.server.store import Access, Store
from otari_batch_grpc.server.util.singleflight import SingleFlight

log = logging.getLogger("otari_batch_grpc.trust")

# A key's refusal is remembered this long (at most the trust window) before the gateway is asked again.
REFUSAL_SECONDS = 5.0
# Callers and (batch, caller) pairs remembered in memory; past them, the store is read.
_REMEMBERED = 10_000
# Statuses of an answer that says the gateway authenticated the key: it authenticates before anything else, so a
# 2xx or any 4xx but 401 (a 429 may come from a rate limit in front of it, a 5xx from anything on the way).
_ACCEPTED = frozenset((400, 402, 403, 404, 405, 409, 410, 413, 415, 422))


def key_refused() -> ServiceError:
    """How a stream of a key the gateway refused (on any call) ends."""
    return ServiceError(
        Code.UNAUTHENTICATED,
        "GATEWAY_UNAUTHENTICATED",
        "The gateway refuses this key (401: wrong, revoked, or its user deleted): nothing this service keeps is "
        "served to it.",
    )


class Trust:
    """The authorization rule (see the module's doc). `owner_of` hashes a key as the service knows callers;
    `on_refused(owner, error)` ends a refused key's streams."""

    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        trust_seconds: float,
        owner_of: Callable[[str], str],
        on_refused: Callable[[str, ServiceError], None],
    ) -> None:
        self._gateway = gateway
        self._store = store
        self.seconds = trust_seconds
        self._owner_of = owner_of
        self._on_refused = on_refused
        self._shown: LRUCache[tuple[str, str], Access] = LRUCache(_REMEMBERED)  # (batch, owner) -> as written
        self._taken: LRUCache[str, float] = LRUCache(_REMEMBERED)  # owner -> when the gateway last took its key
        self._refused_at: LRUCache[str, float] = LRUCache(_REMEMBERED)  # owner -> when it last refused it
        self._verdicts: LRUCache[str, tuple[float, ServiceError]] = LRUCache(_REMEMBERED)  # refusals, to repeat
        self._asking: SingleFlight[None] = SingleFlight()  # by owner: the key check
        self._reading: SingleFlight[Access | None] = SingleFlight()  # by (batch, owner): the store's word
        self._writes: set[asyncio.Task[None]] = set()

    # -- the gateway's word on a key ---------------------------------------------------------------------------
    def answered(self, key: str, status: int, sent: float) -> None:
        """The gateway answered a call made with `key` (sent at `sent`, epoch seconds): a 401 refuses the key, an
        answer that authenticated it takes it (as of when the call was sent: an answer to a call sent before a
        revocation proves nothing after it)."""
        if status == 401:
            self.refuse(self._owner_of(key), time.time(), tell=True)
        elif 200 <= status < 300 or status in _ACCEPTED:
            owner = self._owner_of(key)
            self._taken[owner] = max(self._taken.get(owner, 0.0), sent)
            self._verdicts.pop(owner, None)

    def refuse(self, owner: str, at: float, *, tell: bool) -> None:
        """The gateway refused `owner`'s key at `at`: nothing it was shown before counts any more, its streams end,
        and (`tell`) the store, and through it the other replicas, learn it."""
        if at <= self._refused_at.get(owner, 0.0):
            return
        self._refused_at[owner] = at
        self._taken.pop(owner, None)
        self._on_refused(owner, key_refused())
        if tell:
            task = asyncio.get_running_loop().create_task(self._record(owner, at), name="key refused")
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _record(self, owner: str, at: float) -> None:
        try:
            await self._store.refuse_key(owner, at)
        except Exception:  # the other replicas learn it from the gateway within the trust window all the same
            log.warning("could not record a key refusal in the state database", exc_info=True)

    def taken(self, owner: str) -> bool:
        """Whether the gateway took the owner's key within the trust window, and has not refused it since."""
        taken = self._taken.get(owner, 0.0)
        return time.time() - taken < self.seconds and taken > self._refused_at.get(owner, 0.0)

    async def vouch(self, owner: str, key: str, *, time_left: float | None) -> None:
        """Make sure the gateway takes the key before anything is served from state on the key's word alone (a
        listing, a stream of nothing yet): taken within the trust window, or asked now (no provider touched).
        UNAUTHENTICATED for a key it refuses (that verdict repeated, without asking, for REFUSAL_SECONDS)."""
        if self.taken(owner):
            return
        verdict = self._verdicts.get(owner)
        if verdict is not None and time.time() - verdict[0] < min(REFUSAL_SECONDS, self.seconds):
            raise dataclasses.replace(verdict[1])
        await self._asking.run(owner, lambda: self._ask(owner, key, time_left))

    async def _ask(self, owner: str, key: str, time_left: float | None) -> None:
        try:
            await self._gateway.check_key(key, time_left=time_left)
        except KeyRefused as exc:
            error = from_upstream(exc)
            self._verdicts[owner] = (time.time(), error)
            raise error from None
        except UpstreamError as exc:
            raise from_upstream(exc) from None

    # -- the gateway's word on a batch -------------------------------------------------------------------------
    def shown(self, batch_id: str, owner: str) -> Access | None:
        """What this process last wrote of the owner's access to the batch (no store read)."""
        return self._shown.get((batch_id, owner))

    def remember(self, batch_id: str, owner: str, access: Access) -> None:
        self._shown[(batch_id, owner)] = access

    async def forget(self, batch_id: str, owner: str) -> None:
        """The gateway answered 404: the batch is not the owner's (any more), or gone."""
        self._shown.pop((batch_id, owner), None)
        await self._store.revoke(batch_id, owner)

    async def provider(self, batch_id: str, owner: str) -> str | None:
        """The provider of a batch the owner has been shown (None for any other: nothing leaks to others)."""
        shown = self._shown.get((batch_id, owner)) or await self._stored(batch_id, owner)
        return shown.provider if shown is not None else None

    async def verified(self, batch_id: str, owner: str) -> float | None:
        """When the gateway last showed the owner the batch (epoch seconds), if within the trust window and after
        it last refused the owner's key: as this process saw it, else as the store says (another replica saw it,
        or this process did before a restart)."""
        now, refused = time.time(), self._refused_at.get(owner, 0.0)
        shown = self._shown.get((batch_id, owner))
        if shown is None or now - shown.verified_at >= self.seconds or shown.verified_at <= refused:
            shown = await self._stored(batch_id, owner)
        if shown is None or now - shown.verified_at >= self.seconds or shown.verified_at <= refused:
            return None
        return shown.verified_at

    async def _stored(self, batch_id: str, owner: str) -> Access | None:
        """The store's word on the owner's access (which counts the key's refusals too), remembered beside what
        this process saw; concurrent asks (a storm of subscribers after a restart) share one read."""
        key = (batch_id, owner)
        stored = await self._reading.run(key, lambda: self._store.access(batch_id, owner))
        if stored is None:
            self._shown.pop(key, None)
            return None
        known = self._shown.get(key)
        if known is None or stored.verified_at > known.verified_at:
            self._shown[key] = stored
        return self._shown.get(key, stored)

    def clear(self) -> None:
        """Forget what is remembered (after a retention sweep): the store decides again."""
        self._shown.clear()
        self._taken.clear()
