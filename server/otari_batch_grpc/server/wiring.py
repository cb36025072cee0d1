"""The service put together from its settings: the domain (the core, the feeds, creates made once, results) over
the gateway client and the store, under the gRPC edge's handlers. Wiring is this module's job alone: no layer
builds another."""

from __future__ import annotations

from otari_batch_grpc.server.config import Settings, webhook_targets
from otari_batch_grpc.server.domain.callers import Caller, OwnerHasher
from otari_batch_grpc.server.domain.core.batches import Batches, CorePolicy
from otari_batch_grpc.server.domain.idempotency import IdempotentCreates
from otari_batch_grpc.server.domain.notifications.deliverer import Deliverer, DelivererPolicy
from otari_batch_grpc.server.domain.notifications.registrations import Registrations
from otari_batch_grpc.server.domain.parts.wholes import PartsPolicy
from otari_batch_grpc.server.domain.results import ResultsPolicy, ResultStreams
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.domain.subscriptions.feed import Feed
from otari_batch_grpc.server.domain.subscriptions.many import ManyFeed
from otari_batch_grpc.server.domain.subscriptions.poll_loop import WatchPolicy
from otari_batch_grpc.server.domain.tokens import TokenKeys
from otari_batch_grpc.server.domain.upstream_search import ATTEMPT_GRACE_SECONDS
from otari_batch_grpc.server.edge.limits import Limits
from otari_batch_grpc.server.edge.service import BatchService
from otari_batch_grpc.server.edge.webhook_service import WebhookService
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.webhooks.schedule import Backoff
from otari_batch_grpc.server.webhooks.sender import Sender


def batch_service(
    settings: Settings,
    *,
    gateway: GatewayClient,
    store: Store,
    limits: Limits,
    owners: OwnerHasher,
    tokens: TokenKeys,
    sealer: Sealer,
) -> BatchService:
    """BatchService over a domain built from `settings`."""
    watch = WatchPolicy(
        poll_min=settings.watch_poll_min,
        poll_max=settings.watch_poll_max,
        failure_limit=settings.watch_failure_limit,
        trust_seconds=settings.owner_trust_seconds,
        watched_per_caller=settings.limit_watched_per_caller,
        lease_seconds=settings.watch_lease_seconds,
    )
    core = Batches(
        gateway=gateway,
        store=store,
        policy=CorePolicy(
            owner_trust_seconds=settings.owner_trust_seconds,
            revisions_kept=settings.watch_revisions_kept,
            keep_seconds=settings.state_keep_seconds,
            idempotency_seconds=settings.idempotency_keep_seconds,
            claim_seconds=settings.idempotency_claim_seconds,
            providers=tuple(p.strip() for p in settings.providers.split(",") if p.strip()),
            parts=PartsPolicy(
                max_requests=settings.part_max_requests,
                max_bytes=settings.part_max_bytes,
                creates_at_once=settings.part_creates_at_once,
                hold_seconds=settings.upstream_timeout + ATTEMPT_GRACE_SECONDS,
            ),
        ),
        watch=watch,
        tokens=tokens,
        sealer=sealer,
        owner_of=owners.owner_of_key,
    )
    heartbeat, recheck = settings.watch_heartbeat, watch.poll_max
    feed = Feed(core, hub=core.hub, store=store, heartbeat_seconds=heartbeat, recheck_seconds=recheck)
    results = ResultsPolicy(
        max_bytes=settings.results_cache_max_bytes,
        max_age=settings.results_cache_max_age,
        progress_seconds=settings.watch_heartbeat,
    )
    return BatchService(
        core=core,
        feed=feed,
        many=ManyFeed(core, hub=core.hub, store=store, heartbeat_seconds=heartbeat, recheck_seconds=recheck),
        creates=IdempotentCreates(core=core, store=store, gateway=gateway, attempt_seconds=gateway.timeout),
        results=ResultStreams(core, feed, store=store, gateway=gateway, policy=results),
        owners=owners,
        service_key=settings.service_key,
        limits=limits,
        wait_default_seconds=settings.wait_default_timeout,
    )


def webhooks(
    settings: Settings, *, service: BatchService, store: Store, sealer: Sealer
) -> tuple[WebhookService, Deliverer, Sender]:
    """WebhookService, the deliverer of the outbox (woken by each save here that wrote to it), and the sender both
    send with (closed last, once no call is left)."""
    core = service.core
    sender = Sender(webhook_targets(settings.webhook_allow))
    registrations = Registrations(
        store=store,
        sealer=sealer,
        sender=sender,
        targets=webhook_targets(settings.webhook_allow),
        limit=settings.limit_endpoints_per_caller,
    )
    deliverer = Deliverer(
        store=store,
        sender=sender,
        sealer=sealer,
        tokens_for=lambda owner: core.tokens_for(Caller("", owner)),
        backoff=Backoff(
            first=settings.webhook_backoff_first,
            cap=settings.webhook_backoff_cap,
            window=settings.webhook_retry_window,
            retry_after_cap=settings.webhook_backoff_cap,
        ),
        holder=core.fleet.name if core.fleet is not None else "replica",
        policy=DelivererPolicy(
            at_once=settings.webhook_deliveries_total,
            per_endpoint=settings.webhook_deliveries_per_endpoint,
            per_owner=settings.webhook_deliveries_per_caller,
        ),
    )
    core.states.on_outbox = deliverer.wake
    handlers = WebhookService(
        registrations=registrations, core=core, owners=service.owners, service_key=settings.service_key
    )
    return handlers, deliverer, sender
