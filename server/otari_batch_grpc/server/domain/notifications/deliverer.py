"""The outbox sent (#32, under way): what is due, leased to this replica (another takes it over if this one dies),
each event signed with its endpoint's secrets (both of a rotation) and POSTed, with the resume token of the revision
it tells of (sealed for the endpoint's owner), and how it went recorded: a 2xx delivers it; a 410 disables the
endpoint (the event waits for it to be enabled again); anything else is tried again on the backoff's schedule,
honouring Retry-After, until the window ends and it is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint, SigningSecrets
from otari_batch_grpc.server.domain.sealing import Sealer, Unsealable
from otari_batch_grpc.server.domain.tokens import CallerTokens
from otari_batch_grpc.server.store import ClaimedDelivery, DeliveryRecord, EndpointRecord, Store, StoreUnavailable
from otari_batch_grpc.server.telemetry import metrics
from otari_batch_grpc.server.webhooks import events
from otari_batch_grpc.server.webhooks.schedule import Backoff
from otari_batch_grpc.server.webhooks.sender import Answer, NotDelivered, Sender
from otari_batch_grpc.server.webhooks.signing import signed_headers
from otari_batch_grpc.server.webhooks.targets import redacted
from otari_batch_grpc.v1 import watch_pb2

log = logging.getLogger("otari_batch_grpc.webhooks")
SWEEP_INTERVAL = 60.0  # seconds between sweeps of the outbox (see sweep)
_COUNTED = {"delivered": "delivered", "pending": "retried", "dropped": "dropped"}


@dataclass(frozen=True)
class DelivererPolicy:
    lease_seconds: float = 60.0  # a try holds its event this long (more than a whole try: see SenderLimits)
    try_seconds: float = 45.0  # the longest a try takes (a resolve and SenderLimits.total_seconds, and then some)
    at_once: int = 50  # tried at once, all endpoints together (and so claimed in one round at most)
    per_endpoint: int = 4  # tried at once for one endpoint, by the whole fleet: a slow one holds no more than these
    per_owner: int = 16  # tried at once for one owner's endpoints together, here
    interval: float = 1.0  # seconds between looks at the outbox, unless a save here wakes it sooner
    gather: float = 0.025  # woken by a save, it waits this long for the saves right behind it: one look for them all


@dataclass(frozen=True)
class _Outcome:
    state: str
    status: int = 0
    error: str = ""
    next_at: float = 0.0


class Deliverer:
    """Sends what the outbox holds: `run` for the server's life (each try a task of its own, so a slow receiver
    holds up only its own endpoint's tries, up to `per_endpoint`), `once` for one round, waited for."""

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
        self._tries: set[asyncio.Task[None]] = set()
        self._busy: Counter[str] = Counter()  # tries under way here, by owner
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now (a save here put events in it)."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: what is due tried, again and again."""
        swept = 0.0
        try:
            while True:
                try:
                    if time.time() - swept > SWEEP_INTERVAL:
                        swept = time.time()
                        await self.sweep(swept)
                    await self._start(time.time())
                except StoreUnavailable:
                    log.warning("webhooks: the state database did not answer; the outbox is looked at again soon")
                except Exception:
                    log.exception("webhooks: a look at the outbox failed; the next one tries again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._policy.interval)
                    await asyncio.sleep(self._policy.gather)  # (a look costs a scan of what is pending)
                self._wake.clear()
        finally:
            for task in list(self._tries):
                task.cancel()
            await asyncio.gather(*self._tries, return_exceptions=True)

    async def sweep(self, now: float | None = None) -> int:
        """Events past the window dropped (a disabled endpoint's, whose tries were not what dropped them), and
        finished ones as old forgotten; how many rows were."""
        now = time.time() if now is None else now
        return await self._store.sweep_outbox(before=now - self._backoff.window, now=now)

    async def once(self, now: float | None = None) -> int:
        """One round: what is due, each tried, all waited for; how many were."""
        started = await self._start(time.time() if now is None else now)
        await asyncio.gather(*started)
        return len(started)

    async def _start(self, now: float) -> list[asyncio.Task[None]]:
        policy = self._policy
        free = policy.at_once - len(self._tries)
        if free <= 0:
            return []
        token = f"{self._holder}/{secrets.token_hex(6)}"  # this claim's own: a try outliving its lease finishes nothing
        due = await self._store.claim_deliveries(
            token, now=now, lease_seconds=policy.lease_seconds, limit=free, per_endpoint=policy.per_endpoint
        )
        started = []
        for claimed in due:
            delivery, endpoint = claimed.delivery, claimed.endpoint
            if self._busy[endpoint.owner] >= policy.per_owner:  # its owner's tries are many here: another's turn
                later = _Outcome("pending", delivery.last_status, delivery.last_error, max(delivery.next_at, now + 1.0))
                await self._finish(delivery, token, delivery.attempts, later, now)
                continue
            self._busy[endpoint.owner] += 1
            task = asyncio.create_task(self._tried(claimed, token, leased_until=now + policy.lease_seconds))
            self._tries.add(task)
            task.add_done_callback(self._tries.discard)
            started.append(task)
        return started

    async def _tried(self, claimed: ClaimedDelivery, token: str, *, leased_until: float) -> None:
        """A try (the claim kept to `per_endpoint` fleet-wide, `_start` to `per_owner` here). One whose lease would
        end before it could finish is given back untried, to be taken again (here or elsewhere)."""
        delivery, endpoint = claimed.delivery, claimed.endpoint
        try:
            if time.time() + self._policy.try_seconds > leased_until:
                untried = _Outcome("pending", delivery.last_status, delivery.last_error, delivery.next_at)
                await self._finish(delivery, token, delivery.attempts, untried, time.time())
                return
            await self._attempt(claimed, token)
        except StoreUnavailable:
            log.warning("webhooks: event %d tried, but the state database did not answer", delivery.id)
        except Exception:
            log.exception("webhooks: event %d could not be tried; it is again when its lease ends", delivery.id)
        finally:
            self._busy[endpoint.owner] -= 1
            if not self._busy[endpoint.owner]:
                del self._busy[endpoint.owner]

    async def _attempt(self, claimed: ClaimedDelivery, token: str) -> None:
        delivery, endpoint = claimed.delivery, claimed.endpoint
        now = time.time()
        attempts = delivery.attempts + 1
        if claimed.verified_at <= 0:  # revoked, or the owner's key refused since (as of the claim): told no more
            await self._finish(
                delivery, token, attempts, _Outcome("dropped", 0, "its owner may no longer see the batch"), now
            )
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
        await self._finish(delivery, token, attempts, outcome, now)

    async def _finish(self, delivery: DeliveryRecord, token: str, attempts: int, outcome: _Outcome, now: float) -> None:
        done_at = now if outcome.state != "pending" else 0.0
        finished = await self._store.finish_delivery(
            delivery.id,
            token,
            state=outcome.state,
            attempts=attempts,
            next_at=outcome.next_at,
            status=outcome.status,
            error=outcome.error,
            done_at=done_at,
        )
        if finished and attempts > delivery.attempts:  # (one given back untried is no try; a lost lease, no record)
            metrics.WEBHOOK_TRIES.labels("gone" if outcome.status == 410 else _COUNTED[outcome.state]).inc()
            if outcome.state == "delivered":
                metrics.WEBHOOK_SECONDS.observe(max(0.0, time.time() - delivery.created_at))

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
