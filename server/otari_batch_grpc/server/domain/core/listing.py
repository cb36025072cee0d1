"""ListBatches: a caller's batches newest first, from the registry (which never loses one to the gateway's
owner-filtered pages, which give no cursor), after the gateway's newest page of each provider asked about was
entered (batches made elsewhere). A listing is served on the key's word: the registry's batches are those the gateway
showed this key, and the gateway took the key within the trust window (the first page's discovery says so; a later
page, or a first one whose discovery failed, asks if need be)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.states import States
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.domain.errors import Code, from_upstream
from otari_batch_grpc.server.domain.tokens import CallerTokens
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import UpstreamError
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.util.stamps import stamped_part
from otari_batch_grpc.v1 import batch_pb2

# How many of a provider's newest batches a listing asks the gateway for, to discover batches made elsewhere.
DISCOVERY_PAGE = 100


@dataclass(frozen=True)
class Listing:
    batches: list[batch_pb2.Batch]
    next_page_token: str
    incomplete_providers: list[str]


class Listings:
    def __init__(
        self,
        *,
        store: Store,
        gateway: GatewayClient,
        states: States,
        trust: Trust,
        tokens_for: Callable[[Caller], CallerTokens],
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._states = states
        self._trust = trust
        self._tokens_for = tokens_for

    async def list(
        self, caller: Caller, provider: str, *, page_size: int, page_token: str, time_left: float | None
    ) -> Listing:
        tokens = self._tokens_for(caller)
        before = tokens.page_position(page_token, provider) if page_token else None
        providers = [provider] if provider else await self._store.providers_for(caller.owner)
        incomplete: list[str] = []
        if before is None:
            for name in providers:
                if not await self._discover(caller, name, time_left):
                    incomplete.append(name)
        await self._trust.vouch(caller.owner, caller.key, time_left=time_left)
        records = await self._store.list_for(caller.owner, provider or None, before=before, limit=page_size + 1)
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
            items = await self._gateway.list_batches(
                caller.key, provider, after=None, limit=DISCOVERY_PAGE, time_left=time_left
            )
        except UpstreamError as exc:
            error = from_upstream(exc)
            if error.code in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED, Code.INVALID_ARGUMENT):
                raise error from None  # the caller's own problem, not the provider's
            return False
        # (the parts of a batch of several are the service's, never the caller's batches: its id lists them)
        batches = [convert.batch_from_json(item) for item in items if not _a_part(item)]
        await self._states.enter(batches, provider, caller.owner, shown_at=sent)
        return True


def _a_part(item: dict[str, Any]) -> bool:
    metadata = item.get("metadata")
    return isinstance(metadata, dict) and stamped_part(metadata) is not None
