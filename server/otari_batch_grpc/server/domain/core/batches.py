"""The domain core's front: what the edge and the domain's siblings (feed, results, idempotency) call.

Behind it, parts with one job each: `states` (the one path a batch state enters by: saved, then announced),
`trust` (who may be served what the service keeps), `providers` (which provider holds a batch; a batch that is not
there), `listing`, `retention`, and `replicas` (a fleet on one store). The front reads and changes one batch at the
gateway (get, cancel, create) through them; the hub polls through `fetch`, so a poll and a call take the same path.
It speaks messages and domain errors (`ServiceError`), never gRPC statuses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.listing import Listing, Listings
from otari_batch_grpc.server.domain.core.observations import Observation, count_requests
from otari_batch_grpc.server.domain.core.providers import Providers
from otari_batch_grpc.server.domain.core.replicas import Notices, ReplicaFleet
from otari_batch_grpc.server.domain.core.retention import Retention, RetentionPolicy
from otari_batch_grpc.server.domain.core.states import States
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.errors import A_PART, Code, ServiceError, from_upstream, state_unavailable
from otari_batch_grpc.server.domain.parts.ids import is_whole
from otari_batch_grpc.server.domain.parts.wholes import PartsPolicy, Wholes
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.domain.subscriptions.hub import Hub
from otari_batch_grpc.server.domain.subscriptions.poll_loop import WatchPolicy
from otari_batch_grpc.server.domain.subscriptions.subscribers import Watcher
from otari_batch_grpc.server.domain.tokens import CallerTokens, TokenKeys
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import ProviderFailed, UpstreamError
from otari_batch_grpc.server.store import Store, StoreUnavailable
from otari_batch_grpc.server.util.singleflight import SingleFlight
from otari_batch_grpc.server.util.stamps import stamped_part
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

log = logging.getLogger("otari_batch_grpc.core")

# Callers whose token sealer is kept (one object for all the streams of one key).
_CALLERS_KEPT = 10_000


@dataclass(frozen=True, kw_only=True)
class CorePolicy:
    """The core's part of the settings (built from `Settings`, which holds every default and says what each is)."""

    owner_trust_seconds: float
    revisions_kept: int
    keep_seconds: float  # forget a batch nobody was shown for this long
    idempotency_seconds: float  # a settled request_id is honoured this long
    claim_seconds: float  # a create whose outcome stayed unknown blocks its request_id this long
    providers: tuple[str, ...]  # asked, after those a caller uses, for a batch id given without its provider
    parts: PartsPolicy  # how a batch larger than one upstream batch is split


class Batches:
    def __init__(
        self,
        *,
        gateway: GatewayClient,
        store: Store,
        policy: CorePolicy,
        watch: WatchPolicy,
        tokens: TokenKeys,
        sealer: Sealer,
        owner_of: Callable[[str], str],
    ) -> None:
        self._gateway = gateway
        self._tokens = tokens
        self._caller_tokens: LRUCache[str, CallerTokens] = LRUCache(_CALLERS_KEPT)
        self._fetching: SingleFlight[Observation] = SingleFlight()  # by (batch, owner, provider): gateway reads
        self.hub = Hub(poll=self._poll, policy=watch)
        # Who may be served what the service keeps: the gateway's word on every key, from every answer it gives.
        self.trust = Trust(
            gateway=gateway,
            store=store,
            trust_seconds=policy.owner_trust_seconds,
            owner_of=owner_of,
            on_refused=self.hub.refuse,
        )
        gateway.witness(self.trust.answered)
        self.states = States(store=store, hub=self.hub, trust=self.trust, revisions_kept=policy.revisions_kept)
        self.providers = Providers(
            trust=self.trust, store=store, gateway=gateway, configured=policy.providers, fetch=self._fetch_for
        )
        self.listings = Listings(
            store=store, gateway=gateway, states=self.states, trust=self.trust, tokens_for=self.tokens_for
        )
        self.retention = Retention(
            store=store,
            states=self.states,
            trust=self.trust,
            policy=RetentionPolicy(
                keep_seconds=policy.keep_seconds,
                idempotency_seconds=policy.idempotency_seconds,
                claim_seconds=policy.claim_seconds,
            ),
        )
        self.wholes = Wholes(
            gateway=gateway,
            store=store,
            states=self.states,
            trust=self.trust,
            sealer=sealer,
            policy=policy.parts,
            post_create=self.post_create,
            read_failed=self.read_failed,
        )
        self._store = self.store = store
        # Replicas on one store share the polling (a lease per live batch) and hear of each other's revisions.
        self.fleet: ReplicaFleet | None = None
        self.notices: Notices | None = None
        if store.SHARED:
            self.fleet = ReplicaFleet(store=store, states=self.states, lease_seconds=watch.lease_seconds)
            self.hub.fleet = self.fleet
            self.notices = Notices(store=store, states=self.states, hub=self.hub, trust=self.trust)

    async def join_fleet(self) -> None:
        """Hear of the revisions other replicas on the store save, and the keys they hear refused (nothing to hear
        with a store of one's own)."""
        if self.fleet is not None and self.notices is not None:
            await self.notices.follow()
            log.info("replica %s: polls shared through leases on the state database", self.fleet.name)

    def tokens_for(self, caller: Caller) -> CallerTokens:
        """The page and resume tokens of this caller: sealed for it, opened only from it (one object for each
        caller's streams: thousands of streams of one key hold one)."""
        tokens = self._caller_tokens.get(caller.owner)
        if tokens is None:
            tokens = self._caller_tokens[caller.owner] = CallerTokens(self._tokens, caller.owner)
        return tokens

    # -- who may be served what (the rule is `trust`'s) ----------------------------------------------------------
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
            latest = self.hub.latest(batch_id) or await self.states.latest(batch_id)
            if latest is not None:
                return latest, verified
        sent = time.time()
        return await self.fetch(caller, batch_id, provider, time_left=None), sent

    async def latest(self, batch_id: str) -> Observation | None:
        """The newest state of the batch this service holds, whoever it was shown to: serve it only as `current`
        or `trusted` allow."""
        return await self.states.latest(batch_id)

    async def enter(
        self, batches: Sequence[batch_pb2.Batch], provider: str, owner: str, *, shown_at: float
    ) -> list[Observation]:
        """States the gateway showed `owner` (see states)."""
        return await self.states.enter(batches, provider, owner, shown_at=shown_at)

    async def provider_of(self, caller: Caller, batch_id: str, given: str, *, time_left: float | None) -> str:
        if is_whole(batch_id):  # the service's own id: it knows the provider (the gateway then says whose it is)
            return await self.wholes.provider_of(batch_id, given)
        return await self.providers.provider_of(caller, batch_id, given, time_left=time_left)

    # -- reading a batch -----------------------------------------------------------------------------------------
    async def fetch(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> Observation:
        """The batch from the gateway (which authorizes the caller for it), entered. Concurrent identical reads
        (one batch, one caller, one provider) share one gateway call: the answer a caller gets is at most as old as
        the call it joined, which started before it asked (under a gateway round trip, ~50-80 ms). A read that
        arrives after it was answered asks again: a live batch's state is the gateway's, as of the call."""
        key = (batch_id, caller.owner, provider.lower())
        return await self._fetching.run(key, lambda: self._fetch(caller, batch_id, provider, time_left))

    async def _fetch_for(self, caller: Caller, batch_id: str, provider: str, time_left: float | None) -> Observation:
        return await self.fetch(caller, batch_id, provider, time_left=time_left)

    async def _fetch(self, caller: Caller, batch_id: str, provider: str, time_left: float | None) -> Observation:
        if is_whole(batch_id):
            return await self.wholes.fetch(caller, batch_id, provider, time_left=time_left)
        sent = time.time()
        try:
            data = await self._gateway.get_batch(caller.key, batch_id, provider, time_left=time_left)
        except UpstreamError as exc:
            raise await self.read_failed(caller, batch_id, provider, exc, time_left) from None
        _no_part(batch_id, data)
        batch = convert.batch_from_json(data)
        (observation,) = await self.states.enter([batch], provider, caller.owner, shown_at=sent)
        return observation

    async def _poll(self, watcher: Watcher, batch_id: str, provider: str) -> Observation:
        try:
            return await self.fetch(Caller(watcher.key, watcher.owner), batch_id, provider, time_left=None)
        except StoreUnavailable:  # the hub backs off as from a gateway failure
            raise state_unavailable() from None

    async def read_failed(
        self, caller: Caller, batch_id: str, provider: str, exc: UpstreamError, time_left: float | None
    ) -> ServiceError:
        """A failed read of a batch (get, cancel, results), as the service's error (see providers)."""
        return await self.providers.read_failed(caller, batch_id, provider, exc, time_left)

    async def get(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> batch_pb2.Batch:
        cached = await self.trusted_terminal(caller, batch_id, provider)
        if cached is not None:
            return cached
        return (await self.fetch(caller, batch_id, provider, time_left=time_left)).batch

    async def trusted_terminal(self, caller: Caller, batch_id: str, provider: str) -> batch_pb2.Batch | None:
        """The stored state of a terminal batch (it never changes), if this caller may have it."""
        known = self.states.known(batch_id)
        if known is not None and not known.terminal:
            return None  # live as last seen (every state enters through here): no store read on the hot path
        record = await self._store.batch(batch_id)
        if record is None or not record.terminal or record.provider.lower() != provider.lower():
            return None
        if not await self.trusted(caller, batch_id):
            return None
        return batch_pb2.Batch.FromString(record.snapshot)

    # -- changing a batch ----------------------------------------------------------------------------------------
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
        return await self.post_create(caller, await convert.encoded_create(request, stamp=stamp), time_left=time_left)

    async def post_create(self, caller: Caller, body: bytes, *, time_left: float | None) -> dict[str, Any]:
        """Ask the gateway to create a batch, its request encoded already (convert.encoded_create). Raises
        UpstreamError; the answer goes to `created`."""
        return await self._gateway.create_batch(caller.key, body, time_left=time_left)

    async def created(
        self, caller: Caller, data: dict[str, Any], provider: str, *, sent: float, requests_sent: int
    ) -> batch_pb2.Batch:
        """A batch the gateway created for this caller (in answer to a call sent at `sent`, of `requests_sent`
        requests), entered (with the caller as its creator)."""
        batch = convert.batch_from_json(data)
        count_requests(batch, requests_sent)
        await self.states.enter([batch], batch.provider or provider, caller.owner, creator=True, shown_at=sent)
        return batch

    async def cancel(self, caller: Caller, batch_id: str, provider: str, *, time_left: float | None) -> batch_pb2.Batch:
        finished = await self.trusted_terminal(caller, batch_id, provider)
        if finished is not None:
            raise already_finished(finished)
        if is_whole(batch_id):
            current = await self.fetch(caller, batch_id, provider, time_left=time_left)  # authorizes the caller
            if current.terminal:
                raise already_finished(current.batch)
            return (await self.wholes.cancel(caller, batch_id, provider, time_left=time_left)).batch
        made = await self._store.part_made_as(batch_id)
        if made is not None:  # never cancelled on its own. The gateway says first whether the caller may see it:
            await self._fetch(caller, batch_id, provider, time_left)  # its stamp raises BATCH_IS_A_PART, or the error
            raise a_part(batch_id, made[0], made[2])
        sent = time.time()
        try:
            data = await self._gateway.cancel_batch(caller.key, batch_id, provider, time_left=time_left)
        except ProviderFailed as exc:  # the gateway answers so for a cancel of a finished batch too: look first
            batch = (await self.fetch(caller, batch_id, provider, time_left=time_left)).batch
            if batch.status in convert.TERMINAL_STATUSES:
                raise already_finished(batch) from None
            raise from_upstream(exc) from None
        except UpstreamError as exc:
            raise await self.read_failed(caller, batch_id, provider, exc, time_left) from None
        _no_part(batch_id, data)
        batch = convert.batch_from_json(data)
        await self.states.enter([batch], provider, caller.owner, shown_at=sent)
        return batch

    # -- many batches ----------------------------------------------------------------------------------------
    async def list(
        self, caller: Caller, provider: str, *, page_size: int, page_token: str, time_left: float | None
    ) -> Listing:
        """The caller's batches newest first (see listing)."""
        return await self.listings.list(
            caller, provider, page_size=page_size, page_token=page_token, time_left=time_left
        )

    async def sweep(self, now: float | None = None) -> int:
        """Forget what is past its time (see retention)."""
        return await self.retention.sweep(now)


def status_meta(batch: batch_pb2.Batch) -> dict[str, str]:
    return {"batch_id": batch.id, "status": batch.upstream_status or convert.status_name(batch.status)}


def _no_part(batch_id: str, data: Mapping[str, Any]) -> None:
    """A batch the gateway showed that is a part of a batch of several (by its stamp) is not the caller's own."""
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and (made := stamped_part(metadata)) is not None:
        raise a_part(batch_id, *made)


def a_part(batch_id: str, whole_id: str, index: int) -> ServiceError:
    """The error of a call on a part's own id: the batch is its whole's (read, watched and cancelled as one)."""
    return ServiceError(
        Code.FAILED_PRECONDITION,
        A_PART,
        f"Batch {batch_id} is part {index} of batch {whole_id}, which this service made of your requests: use "
        f"{whole_id} (its `parts` show this one). A part is read, watched and cancelled only with its batch.",
        {"batch_id": batch_id, "part_of": whole_id, "part": str(index)},
    )


def already_finished(batch: batch_pb2.Batch) -> ServiceError:
    status = status_meta(batch)["status"]
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "BATCH_ALREADY_FINISHED",
        f"Batch {batch.id} is already {status}; only a batch that has not finished can be cancelled.",
        status_meta(batch),
    )
