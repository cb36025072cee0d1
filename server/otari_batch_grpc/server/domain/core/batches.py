"""The domain core: what the service knows of batches, and the one path by which it learns it.

Every batch state the gateway shows a caller enters through `enter`: into the registry (with that caller's
access) and, when it changed, as the batch's next revision, in one transaction; then, saved, it is announced to
the watch hub. The hub polls through `fetch`, so a poll and a call take the same path. Around that path the core
owns provider resolution, the trust and cache policy (what may be served from the store, to whom), listing and
retention. It speaks messages and domain errors (`ServiceError`), never gRPC statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from otari_batch_grpc.server.domain.core.observations import Observation, behind, same_state, seen
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.errors import (
    Code,
    FieldViolation,
    ServiceError,
    from_upstream,
    invalid_argument,
    state_unavailable,
)
from otari_batch_grpc.server.domain.hub import Hub, Watcher, WatchPolicy
from otari_batch_grpc.server.domain.tokens import CallerTokens, TokenKeys
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import ProviderFailed, UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.store import Access, Notice, RefusalNotice, RevisionNotice, Store, StoreUnavailable
from otari_batch_grpc.server.util.singleflight import SingleFlight
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

log = logging.getLogger("otari_batch_grpc.core")

# How many of a provider's newest batches a listing asks the gateway for, to discover batches made elsewhere.
DISCOVERY_PAGE = 100
# States kept in memory to tell a change from a repeat without reading the store.
_LATEST_CACHED = 10_000
# A CreateBatch body for more requests than this is built in a thread.
_BODY_ON_LOOP_REQUESTS = 500


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls: the credential forwarded to the gateway, and its keyed hash (what the store knows them by)."""

    key: str
    owner: str

    def __repr__(self) -> str:
        return f"Caller(owner={self.owner[:8]}…)"

    @property
    def watcher(self) -> Watcher:
        return Watcher(self.key, self.owner)


@dataclass(frozen=True, kw_only=True)
class CorePolicy:
    """The core's part of the settings (built from `Settings`, which holds every default and says what each is)."""

    owner_trust_seconds: float
    revisions_kept: int
    keep_seconds: float  # forget a batch nobody was shown for this long
    idempotency_seconds: float  # a settled request_id is honoured this long
    claim_seconds: float  # a create whose outcome stayed unknown blocks its request_id this long
    providers: tuple[str, ...]  # asked, after those a caller uses, for a batch id given without its provider


@dataclass(frozen=True)
class Listing:
    batches: list[batch_pb2.Batch]
    next_page_token: str
    incomplete_providers: list[str]


@contextlib.contextmanager
def upstream_errors() -> Iterator[None]:
    """The gateway's failures as the service's errors (a table in `errors`)."""
    try:
        yield
    except UpstreamError as exc:
        raise from_upstream(exc) from None


class Batches:
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        policy: CorePolicy,
        watch: WatchPolicy,
        tokens: TokenKeys,
        owner_of: Callable[[str], str],
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.policy = policy
        self._tokens = tokens
        self._caller_tokens: LRUCache[str, CallerTokens] = LRUCache(_LATEST_CACHED)
        # Replicas on one store share the polling (a lease per live batch) and hear of each other's revisions.
        self._replicas = _Replicas(self, watch.lease_seconds) if store.SHARED else None
        self.hub = Hub(poll=self._poll, policy=watch, fleet=self._replicas)
        # Who may be served what the service keeps: the gateway's word on every key, from every answer it gives.
        self.trust = Trust(
            gateway=gateway,
            store=store,
            trust_seconds=policy.owner_trust_seconds,
            owner_of=owner_of,
            on_refused=self.hub.refuse,
        )
        gateway.witness(self.trust.answered)
        self._heard_tasks: set[asyncio.Task[None]] = set()
        self._entering = asyncio.Lock()
        self._latest: OrderedDict[str, Observation] = OrderedDict()
        self._fetching: SingleFlight[Observation] = SingleFlight()  # by (batch, owner, provider): gateway reads
        self._reading_latest: SingleFlight[Observation | None] = SingleFlight()  # by batch: its latest revision

    def tokens_for(self, caller: Caller) -> CallerTokens:
        """The page and resume tokens of this caller: sealed for it, opened only from it (one object for each
        caller's streams: thousands of streams of one key hold one)."""
        tokens = self._caller_tokens.get(caller.owner)
        if tokens is None:
            tokens = self._caller_tokens[caller.owner] = CallerTokens(self._tokens, caller.owner)
        return tokens

    # -- the one path in -------------------------------------------------------------------------------------
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
            self.hub.announce(observation, provider, owner)
        return result

    def _repeats(self, batches: Sequence[batch_pb2.Batch], owner: str, *, creator: bool) -> list[Observation] | None:
        """Each batch as the latest state this process holds, when that is what the gateway showed and the owner's
        access was written within a quarter of the trust window (a poll that saw no change); else None."""
        if creator:
            return None
        now, due = time.time(), self.policy.owner_trust_seconds / 4
        found = []
        for batch in batches:
            last, shown = self._latest.get(batch.id), self.trust.shown(batch.id, owner)
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
            known = None if last is None else _known_state(last, batch)
            if known is not None:
                observations.append(known)
                shown = self.trust.shown(batch.id, owner)
                if creator or shown is None or now - shown.verified_at > self.policy.owner_trust_seconds / 4:
                    verified.append(batch.id)
            else:
                observations.append(None)
                changed.append(seen(batch, provider))
        revisions = await self.store.enter(
            changed,
            verified,
            owner=owner,
            creator=creator,
            keep=self.policy.revisions_kept,
            observed_at=now,
            shown_at=shown_at,
        )
        new = iter(revisions)
        written = set(verified)
        result: list[Observation] = []
        for batch, known in zip(batches, observations, strict=True):
            observation = known if known is not None else Observation.of(next(new)).as_shown(batch)
            if known is None:
                self._remember(observation)
                self.hub.publish(observation)  # saved: now announced, in the order saved
                written.add(batch.id)
            if batch.id in written:  # the memo says what the store says (other replicas, a restart, read that)
                self.trust.remember(batch.id, owner, Access(shown_at, provider))
            result.append(observation)
        return result

    # -- the other replicas --------------------------------------------------------------------------------
    async def join_fleet(self) -> None:
        """Hear of the revisions other replicas on the store save, and the keys they hear refused (nothing to hear
        with a store of one's own)."""
        if self._replicas is not None:
            await self.store.follow(self._heard)
            log.info("replica %s: polls shared through leases on the state database", self._replicas.name)

    def _heard(self, notice: Notice) -> None:
        """Another replica saved a revision: what this one remembers of the batch is stale; its loop here (if any)
        reads the revision now; streams here that follow all of the owner's batches start following it. Or it
        heard the gateway refuse a key: so does this one."""
        if isinstance(notice, RefusalNotice):
            self.trust.refuse(notice.owner, notice.at, tell=False)
            return
        self._latest.pop(notice.batch_id, None)
        self.hub.wake(notice.batch_id)
        if self.hub.follows(notice.owner):
            task = asyncio.create_task(self._announce_heard(notice), name=f"announce {notice.batch_id}")
            self._heard_tasks.add(task)
            task.add_done_callback(self._heard_tasks.discard)

    async def _announce_heard(self, notice: RevisionNotice) -> None:
        try:
            revision = await self.store.latest_revision(notice.batch_id)
        except Exception:
            log.warning("could not read the revision another replica announced", exc_info=True)
            return
        if revision is not None:
            self.hub.announce(Observation.of(revision), notice.provider, notice.owner)

    async def caught_up(self, batch_id: str, after_rev: int) -> list[Observation]:
        """Revisions of the batch saved after `after_rev`, by any replica, remembered as the latest known."""
        observations = [Observation.of(r) for r in await self.store.revisions_after(batch_id, after_rev)]
        if observations:
            self._remember(observations[-1])
        return observations

    async def latest(self, batch_id: str) -> Observation | None:
        """The newest revision of the batch this service holds (remembered, or read from the store: concurrent reads
        of one batch, its subscribers resuming after a restart, share one)."""
        cached = self._latest.get(batch_id)
        if cached is not None:
            return cached
        return await self._reading_latest.run(batch_id, lambda: self._latest_stored(batch_id))

    async def _latest_stored(self, batch_id: str) -> Observation | None:
        stored = await self.store.latest_revision(batch_id)
        if stored is None:
            return None
        observation = Observation.of(stored)
        known = self._latest.get(batch_id)
        if known is not None and known.rev >= observation.rev:  # a newer state entered while the store was read
            return known
        self._remember(observation)
        return observation

    def _remember(self, observation: Observation) -> None:
        self._latest[observation.batch_id] = observation
        self._latest.move_to_end(observation.batch_id)
        while len(self._latest) > _LATEST_CACHED:
            self._latest.popitem(last=False)

    # -- who calls (the rule is `trust`'s; siblings ask here) ----------------------------------------------------
    async def vouch(self, caller: Caller, *, time_left: float | None) -> None:
        """UNAUTHENTICATED unless the gateway takes the caller's key (taken lately, or asked now): before anything
        is served on the key's word alone (a listing, a stream of nothing yet)."""
        await self.trust.vouch(caller.owner, caller.key, time_left=time_left)

    async def shown_provider(self, caller: Caller, batch_id: str) -> str | None:
        """The provider of a batch this caller has been shown (None for any other: nothing leaks to others)."""
        return await self.trust.provider(batch_id, caller.owner)

    async def verified(self, caller: Caller, batch_id: str) -> float | None:
        """When the gateway last showed the caller the batch (epoch seconds), if it still counts (see trust)."""
        return await self.trust.verified(batch_id, caller.owner)

    async def trusted(self, caller: Caller, batch_id: str) -> bool:
        """Whether what the service keeps of the batch may be served to this caller without asking the gateway."""
        return await self.trust.verified(batch_id, caller.owner) is not None

    async def current(self, caller: Caller, batch_id: str, provider: str) -> tuple[Observation, float]:
        """The batch's latest state for this caller, and when the gateway last showed it to them (epoch seconds):
        what the service keeps, at no gateway call, when the caller may be served it (see trust); else a gateway
        read, which authorizes the caller again (or refuses it)."""
        verified = await self.verified(caller, batch_id)
        if verified is not None:
            latest = self.hub.latest(batch_id) or await self.latest(batch_id)
            if latest is not None:
                return latest, verified
        sent = time.time()
        return await self.fetch(caller, batch_id, provider, time_left=None), sent

    async def provider_of(self, caller: Caller, batch_id: str, given: str, *, time_left: float | None) -> str:
        """The provider named, or the one of a batch this caller has been shown (nothing leaks to others), or else
        the one of the providers this caller uses (and the configured ones) that holds it: NOT_FOUND when none
        does, INVALID_ARGUMENT naming `provider` only when there is none to ask."""
        if given:
            return given
        known = await self.shown_provider(caller, batch_id)
        if known is not None:
            return known
        await self.vouch(caller, time_left=time_left)
        candidates = list(dict.fromkeys([*await self.store.providers_for(caller.owner), *self.policy.providers]))
        if not candidates:
            raise provider_required(batch_id)
        down: list[str] = []
        for provider in candidates:
            try:
                await self.fetch(caller, batch_id, provider, time_left=time_left)
                return provider
            except ServiceError as error:
                if error.code == Code.UNAVAILABLE:
                    down.append(provider)
                elif not isinstance(error, NotFound):
                    raise  # a refused key, a bad provider name: said as it is
                # (another user's batch and an id that exists nowhere answer alike: the service adds no oracle)
        if down:
            raise ServiceError(
                Code.UNAVAILABLE,
                "PROVIDER_ERROR",
                f"Batch {batch_id} is not one this service has shown you, and {', '.join(down)} did not answer to "
                "say whether it holds it; retry later, or name its provider.",
                {"batch_id": batch_id, "providers": ",".join(down)},
                retry_after=5.0,
            )
        raise NotFound(
            Code.NOT_FOUND,
            "BATCH_NOT_FOUND",
            f"Batch {batch_id} was not found: none of the providers asked ({', '.join(candidates)}) holds it for "
            "you. Check the batch id, or name its provider if it is another one.",
            {"batch_id": batch_id, "providers": ",".join(candidates)},
        )

    async def fetch(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> Observation:
        """The batch from the gateway (which authorizes the caller for it), entered. Concurrent identical reads
        (one batch, one caller, one provider) share one gateway call: the answer a caller gets is at most as old as
        the call it joined, which started before it asked (under a gateway round trip, ~50-80 ms). A read that
        arrives after it was answered asks again: a live batch's state is the gateway's, as of the call."""
        key = (batch_id, caller.owner, provider.lower())
        return await self._fetching.run(key, lambda: self._fetch(caller, batch_id, provider, time_left))

    async def _fetch(self, caller: Caller, batch_id: str, provider: str, time_left: float | None) -> Observation:
        sent = time.time()
        try:
            data = await self.gateway.get_batch(caller.key, batch_id, provider, time_left=time_left)
        except UpstreamError as exc:
            raise await self.read_failed(caller, batch_id, provider, exc, time_left) from None
        (observation,) = await self.enter([convert.batch_from_json(data)], provider, caller.owner, shown_at=sent)
        return observation

    async def _poll(self, watcher: Watcher, batch_id: str, provider: str) -> Observation:
        try:
            return await self.fetch(Caller(watcher.key, watcher.owner), batch_id, provider, time_left=None)
        except StoreUnavailable:  # the hub backs off as from a gateway failure
            raise state_unavailable() from None

    async def get(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> batch_pb2.Batch:
        cached = await self.trusted_terminal(caller, batch_id, provider)
        if cached is not None:
            return cached
        return (await self.fetch(caller, batch_id, provider, time_left=time_left)).batch

    async def trusted_terminal(self, caller: Caller, batch_id: str, provider: str) -> batch_pb2.Batch | None:
        """The stored state of a terminal batch (it never changes), if this caller may have it."""
        known = self._latest.get(batch_id)
        if known is not None and not known.terminal:
            return None  # live as last seen (every state enters through here): no store read on the hot path
        record = await self.store.batch(batch_id)
        if record is None or not record.terminal or record.provider.lower() != provider.lower():
            return None
        if not await self.trusted(caller, batch_id):
            return None
        return batch_pb2.Batch.FromString(record.snapshot)

    async def read_failed(
        self, caller: Caller, batch_id: str, provider: str, exc: UpstreamError, time_left: float | None
    ) -> ServiceError:
        """A failed read of a batch (get, cancel, results), as the service's error. Another user's batch (404) and
        an id the provider does not know are one answer, NOT_FOUND (the service adds no existence oracle), and the
        caller's access to it ends. The gateway answers an unknown id as it answers a provider that is down (502):
        one more call on this error path settles which: if the provider lists, the batch is not there."""
        if isinstance(exc, ProviderFailed):
            try:
                await self.gateway.list_batches(caller.key, provider, after=None, limit=1, time_left=time_left)
            except UpstreamError:
                return from_upstream(exc)  # the provider does not answer: retry later, as said
        elif not (isinstance(exc, UpstreamHTTPError) and exc.status == 404):
            return from_upstream(exc)
        await self.trust.forget(batch_id, caller.owner)  # not this caller's (any more), or gone
        return not_found(batch_id, provider)

    # -- changing a batch ----------------------------------------------------------------------------------
    async def create_upstream(
        self,
        caller: Caller,
        request: batch_service_pb2.CreateBatchRequest,
        *,
        stamp: Mapping[str, str] | None = None,
        time_left: float | None,
    ) -> dict[str, Any]:
        """Ask the gateway to create the batch a (validated) request describes; `stamp` joins its metadata.
        Raises UpstreamError; the answer goes to `created`."""
        if len(request.requests) > _BODY_ON_LOOP_REQUESTS:  # megabytes of JSON: built off the event loop
            body = await asyncio.to_thread(convert.create_body, request, stamp=stamp)
        else:
            body = convert.create_body(request, stamp=stamp)
        return await self.gateway.create_batch(caller.key, body, time_left=time_left)

    async def created(self, caller: Caller, data: dict[str, Any], provider: str, *, sent: float) -> batch_pb2.Batch:
        """A batch the gateway created for this caller (in answer to a call sent at `sent`), entered (with the
        caller as its creator)."""
        batch = convert.batch_from_json(data)
        await self.enter([batch], batch.provider or provider, caller.owner, creator=True, shown_at=sent)
        return batch

    async def cancel(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> batch_pb2.Batch:
        finished = await self.trusted_terminal(caller, batch_id, provider)
        if finished is not None:
            raise already_finished(finished)
        sent = time.time()
        try:
            data = await self.gateway.cancel_batch(caller.key, batch_id, provider, time_left=time_left)
        except ProviderFailed as exc:  # the gateway answers so for a cancel of a finished batch too: look first
            batch = (await self.fetch(caller, batch_id, provider, time_left=time_left)).batch
            if batch.status in convert.TERMINAL_STATUSES:
                raise already_finished(batch) from None
            raise from_upstream(exc) from None
        except UpstreamError as exc:
            raise await self.read_failed(caller, batch_id, provider, exc, time_left) from None
        batch = convert.batch_from_json(data)
        await self.enter([batch], provider, caller.owner, shown_at=sent)
        return batch

    # -- listing -------------------------------------------------------------------------------------------
    async def list(
        self, caller: Caller, provider: str, *, page_size: int, page_token: str, time_left: float | None
    ) -> Listing:
        """The caller's batches newest first, from the registry (which never loses one to the gateway's
        owner-filtered pages), after the gateway's newest page of each provider asked about was entered. A listing
        is served on the key's word: the registry's batches are those the gateway showed this key, and the gateway
        took the key within the trust window (the first page's discovery says so; a later page, or a first one
        whose discovery failed, asks if need be)."""
        tokens = self.tokens_for(caller)
        before = tokens.page_position(page_token, provider) if page_token else None
        providers = [provider] if provider else await self.store.providers_for(caller.owner)
        incomplete: list[str] = []
        if before is None:
            for name in providers:
                if not await self._discover(caller, name, time_left):
                    incomplete.append(name)
        await self.vouch(caller, time_left=time_left)
        records = await self.store.list_for(caller.owner, provider or None, before=before, limit=page_size + 1)
        batches = [batch_pb2.Batch.FromString(r.snapshot) for r in records[:page_size]]
        token = ""
        if len(records) > page_size:
            last = records[page_size - 1]
            token = tokens.page((last.created_at, last.first_seen, last.id), provider)
        return Listing(batches, token, incomplete)

    async def _discover(self, caller: Caller, provider: str, time_left: float | None) -> bool:
        """Enter the provider's newest batches the gateway shows this caller. False when it could not ask."""
        sent = time.time()
        try:
            items = await self.gateway.list_batches(
                caller.key, provider, after=None, limit=DISCOVERY_PAGE, time_left=time_left
            )
        except UpstreamError as exc:
            error = from_upstream(exc)
            if error.code in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED, Code.INVALID_ARGUMENT):
                raise error from None  # the caller's own problem, not the provider's
            return False
        await self.enter([convert.batch_from_json(item) for item in items], provider, caller.owner, shown_at=sent)
        return True

    # -- retention -----------------------------------------------------------------------------------------
    async def sweep(self, now: float | None = None) -> int:
        policy = self.policy
        gone = await self.store.sweep(
            now=time.time() if now is None else now,
            keep_seconds=policy.keep_seconds,
            idempotency_seconds=policy.idempotency_seconds,
            claim_seconds=policy.claim_seconds,
        )
        self._latest.clear()
        self.trust.clear()
        return gone


def _known_state(last: Observation, batch: batch_pb2.Batch) -> Observation | None:
    """`batch` as the revision the service holds, when it is no news: the same state, or a late answer to a read
    sent before the change `last` shows (a cancel answered first), which would take the batch back: then the
    caller gets `last`, and no one sees a batch go back. None for a change."""
    if same_state(last.batch, batch):
        return last.as_shown(batch)
    if behind(batch, last.batch):
        return last.echoing(batch.provider)
    return None


def provider_required(batch_id: str) -> ServiceError:
    """A batch the caller has not been shown through this service, with no provider to ask: it must be named."""
    return invalid_argument(
        [
            FieldViolation(
                "provider",
                f"is required: this service has not shown you batch {batch_id}, so it does not know which "
                "provider holds it (pass Batch.provider, for example 'openai')",
            )
        ]
    )


class NotFound(ServiceError):
    """NOT_FOUND: the batch is not one the caller may see at this provider (another provider may hold it)."""


def not_found(batch_id: str, provider: str) -> NotFound:
    """One answer for another user's batch and an id the provider does not know: nothing tells them apart."""
    return NotFound(
        Code.NOT_FOUND,
        "BATCH_NOT_FOUND",
        f"Batch {batch_id} was not found at provider {provider!r} for you: check the batch id, and that this "
        "provider holds it.",
        {"batch_id": batch_id, "provider": provider},
    )


def status_meta(batch: batch_pb2.Batch) -> dict[str, str]:
    return {"batch_id": batch.id, "status": batch.upstream_status or convert.status_name(batch.status)}


def already_finished(batch: batch_pb2.Batch) -> ServiceError:
    status = status_meta(batch)["status"]
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "BATCH_ALREADY_FINISHED",
        f"Batch {batch.id} is already {status}; only a batch that has not finished can be cancelled.",
        status_meta(batch),
    )


class _Replicas:
    """The hub's fleet when replicas share the store: a lease per live batch decides which one polls it (held by
    this process's name, renewed at each of its turns, taken over once its holder stops renewing); the others read
    the revisions it saves."""

    def __init__(self, core: Batches, lease_seconds: float) -> None:
        self._core = core
        self._store = core.store
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
            return await self._core.caught_up(batch_id, after_rev)
        except StoreUnavailable:
            return []
