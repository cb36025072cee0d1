"""Which provider holds a batch, when the caller does not say; and a batch that is not there, settled as one answer.

The gateway needs `?provider=` on every call. The service remembers the provider of each batch it showed a caller;
for any other id it asks the providers the caller uses (and the configured ones), then those the gateway has models
for (its `GET /models`, read once in DISCOVERY_SECONDS, at most DISCOVERED_ASKED of them), so there is always
someone to ask. Another user's batch (404) and an id a provider does not know (the gateway's 502, which is also its
answer for a provider that is down: one more call tells them apart) get one and the same NOT_FOUND: the service
adds no existence oracle.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, from_upstream, invalid_argument
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import ProviderFailed, UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.util.singleflight import SingleFlight

# Read one batch from one provider for a caller, or raise (the core's `fetch`).
Fetch = Callable[[Caller, str, str, float | None], Awaitable[object]]

# How long the gateway's list of providers is kept, and how many of those not already asked are asked at most.
DISCOVERY_SECONDS = 300.0
DISCOVERED_ASKED = 4


class Providers:
    def __init__(
        self, *, trust: Trust, store: Store, gateway: GatewayClient, configured: Sequence[str], fetch: Fetch
    ) -> None:
        self._trust = trust
        self._store = store
        self._gateway = gateway
        self._configured = tuple(configured)
        self._fetch = fetch
        self._listed: tuple[str, ...] = ()  # the gateway's providers (GET /models), as of _listed_at
        self._listed_at: float | None = None
        self._listing: SingleFlight[None] = SingleFlight()

    async def provider_of(self, caller: Caller, batch_id: str, given: str, *, time_left: float | None) -> str:
        """The provider named, or the one of a batch this caller has been shown (nothing leaks to others), or else
        the one of the providers this caller uses, the configured ones and the gateway's that holds it: NOT_FOUND
        when none does, INVALID_ARGUMENT naming `provider` only when there is none to ask."""
        if given:
            return given
        known = await self._trust.provider(batch_id, caller.owner)
        if known is not None:
            return known
        await self._trust.vouch(caller.owner, caller.key, time_left=time_left)
        candidates = list(dict.fromkeys([*await self._store.providers_for(caller.owner), *self._configured]))
        discovered = [p for p in await self._gateway_providers(caller, time_left) if p not in candidates]
        discovered = discovered[:DISCOVERED_ASKED]
        down: list[str] = []
        asked: list[str] = []
        for provider in [*candidates, *discovered]:
            try:
                await self._fetch(caller, batch_id, provider, time_left)
                return provider
            except ServiceError as error:
                if error.code == Code.UNAVAILABLE:
                    down.append(provider)
                elif provider in discovered and error.code == Code.INVALID_ARGUMENT:
                    continue  # a provider the gateway has models for but no batches (it says so): not asked
                elif not isinstance(error, NotFound):
                    raise  # a refused key, a bad provider name: said as it is
                # (another user's batch and an id that exists nowhere answer alike: the service adds no oracle)
            asked.append(provider)
        if not asked:
            raise provider_required(batch_id)
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
            f"Batch {batch_id} was not found: none of the providers asked ({', '.join(asked)}) holds it for "
            "you. Check the batch id, or name its provider if it is another one.",
            {"batch_id": batch_id, "providers": ",".join(asked)},
        )

    async def _gateway_providers(self, caller: Caller, time_left: float | None) -> tuple[str, ...]:
        """The providers the gateway has models for, read with this caller's key at most once in
        DISCOVERY_SECONDS; none when the gateway does not say (an older gateway without the route, say)."""
        if self._listed_at is None or time.monotonic() - self._listed_at > DISCOVERY_SECONDS:
            await self._listing.run("models", lambda: self._list_providers(caller, time_left))
        return self._listed

    async def _list_providers(self, caller: Caller, time_left: float | None) -> None:
        """Read the gateway's providers (concurrent lookups share one read); none when it does not say."""
        try:
            self._listed = tuple(await self._gateway.list_providers(caller.key, time_left=time_left))
        except UpstreamError:
            self._listed = ()
        self._listed_at = time.monotonic()

    async def read_failed(
        self, caller: Caller, batch_id: str, provider: str, exc: UpstreamError, time_left: float | None
    ) -> ServiceError:
        """A failed read of a batch (get, cancel, results), as the service's error. Another user's batch (404) and
        an id the provider does not know are one answer, NOT_FOUND, and the caller's access to it ends. The gateway
        answers an unknown id as it answers a provider that is down (502): two more calls on this error path settle
        which: if the provider lists, and the batch asked for again is still a 502, it is not there (a provider
        that came back between the calls shows it: a retry gets it)."""
        if isinstance(exc, ProviderFailed):
            try:
                await self._gateway.list_batches(caller.key, provider, after=None, limit=1, time_left=time_left)
            except UpstreamError:
                return from_upstream(exc)  # the provider does not answer: retry later, as said
            try:  # it answers now: asked again, the batch is there (the provider was down a moment), or not
                await self._gateway.get_batch(caller.key, batch_id, provider, time_left=time_left)
            except ProviderFailed:
                pass
            except UpstreamError:
                return from_upstream(exc)
            else:
                return from_upstream(exc)  # there after all: a retry gets it
        elif not (isinstance(exc, UpstreamHTTPError) and exc.status == 404):
            return from_upstream(exc)
        await self._trust.forget(batch_id, caller.owner)  # not this caller's (any more), or gone
        return not_found(batch_id, provider)


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
