"""The outbox sent (#32, under way): what is due, leased to this replica (another takes it over if this one dies),
each event signed with its endpoint's secrets (both of a rotation) and POSTed, with the resume token of the revision
it tells of (sealed for the endpoint's owner), and how it went recorded: a 2xx delivers it; a 410 disables the
endpoint (the event waits for it to be enabled again); anything else is tried again on the backoff's schedule,
honouring Retry-After, until the window ends and it is dropped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint, SigningSecrets
from otari_batch_grpc.server.domain.sealing import Sealer, Unsealable
from otari_batch_grpc.server.domain.tokens import CallerTokens
from otari_batch_grpc.server.store import DeliveryRecord, EndpointRecord, Store
from otari_batch_grpc.server.webhooks import events
from otari_batch_grpc.server.webhooks.schedule import Backoff
from otari_batch_grpc.server.webhooks.sender import Answer, NotDelivered, Sender
from otari_batch_grpc.server.webhooks.signing import signed_headers
from otari_batch_grpc.server.webhooks.targets import redacted
from otari_batch_grpc.v1 import watch_pb2

log = logging.getLogger("otari_batch_grpc.webhooks")


@dataclass(frozen=True)
class DelivererPolicy:
    lease_seconds: float = 60.0  # a try holds its event this long (a connect and a read, and then some)
    claim_limit: int = 100  # events taken in one round
    at_once: int = 50  # tried at once, all endpoints together


@dataclass(frozen=True)
class _Outcome:
    state: str
    status: int = 0
    error: str = ""
    next_at: float = 0.0


class Deliverer:
    def __init__(
        self,
        *,
        store: Store,
        sender: Sender,
        sealer: Sealer,
        tokens_for: Callable[[str], CallerTokens],
        backoff: Backoff,
        holder: str,
        policy: DelivererPolicy | None = None,
    ) -> None:
        self._store, self._sender, self._sealer = store, sender, sealer
        self._tokens_for, self._backoff, self._holder = tokens_for, backoff, holder
        self._policy = policy or DelivererPolicy()

    async def once(self, now: float | None = None) -> int:
        """One round: what is due, each tried; how many were."""
        policy = self._policy
        now = time.time() if now is None else now
        due = await self._store.claim_deliveries(
            self._holder, now=now, lease_seconds=policy.lease_seconds, limit=policy.claim_limit
        )
        endpoints: dict[str, EndpointRecord | None] = {}
        for delivery in due:
            if delivery.endpoint_id not in endpoints:
                endpoints[delivery.endpoint_id] = await self._store.endpoint(delivery.endpoint_id)
        limit = asyncio.Semaphore(policy.at_once)

        async def attempt(delivery: DeliveryRecord) -> None:
            endpoint = endpoints[delivery.endpoint_id]
            if endpoint is None:  # (deleted meanwhile: its events went with it)
                return
            async with limit:
                await self._attempt(delivery, endpoint)

        await asyncio.gather(*(attempt(d) for d in due))
        return len(due)

    async def _attempt(self, delivery: DeliveryRecord, endpoint: EndpointRecord) -> None:
        now = time.time()
        attempts = delivery.attempts + 1
        access = await self._store.access(delivery.batch_id, endpoint.owner)
        if access is None or access.verified_at <= 0:  # revoked, or the owner's key refused since: told no more
            await self._finish(delivery, attempts, _Outcome("dropped", 0, "its owner may no longer see the batch"), now)
            return
        try:
            answer = await self._send(delivery, endpoint, now)
        except (NotDelivered, Unsealable) as exc:
            outcome = self._again(delivery, attempts, now, status=0, error=str(exc), retry_after=None)
        else:
            if 200 <= answer.status < 300:
                outcome = _Outcome("delivered", answer.status)
            elif answer.status == 410:  # the receiver says it is gone: the endpoint stops, the event waits for it
                await self._store.disable_endpoint(endpoint.id, "its receiver answered 410 Gone", now=now)
                log.warning("webhook endpoint %s disabled: %s answered 410", endpoint.id, redacted(endpoint.url))
                outcome = _Outcome("pending", 410, "410 Gone: the endpoint was disabled", now)
            else:
                error = f"answered {answer.status}"
                outcome = self._again(
                    delivery, attempts, now, status=answer.status, error=error, retry_after=answer.retry_after
                )
        await self._finish(delivery, attempts, outcome, now)

    async def _finish(self, delivery: DeliveryRecord, attempts: int, outcome: _Outcome, now: float) -> None:
        done_at = now if outcome.state != "pending" else 0.0
        await self._store.finish_delivery(
            delivery.id,
            self._holder,
            state=outcome.state,
            attempts=attempts,
            next_at=outcome.next_at,
            status=outcome.status,
            error=outcome.error,
            done_at=done_at,
        )

    def _again(
        self, delivery: DeliveryRecord, attempts: int, now: float, *, status: int, error: str, retry_after: float | None
    ) -> _Outcome:
        at = self._backoff.next_try(attempts, now=now, first_try=delivery.created_at, retry_after=retry_after)
        if at is None:
            return _Outcome("dropped", status, f"{error}; not delivered within {self._backoff.window:g} s")
        return _Outcome("pending", status, error, at)

    async def _send(self, delivery: DeliveryRecord, endpoint: EndpointRecord, now: float) -> Answer:
        secrets = SigningSecrets.opened(endpoint.secrets, self._sealer, Endpoint.of(endpoint))
        event = watch_pb2.BatchEvent.FromString(delivery.event)
        event.resume_token = self._tokens_for(endpoint.owner).resume(delivery.batch_id, delivery.rev)
        body = events.body(event, kind=delivery.kind)
        message_id = events.message_id(delivery.id)
        return await self._sender.send(endpoint.url, body, signed_headers(secrets.signing(now), message_id, now, body))
