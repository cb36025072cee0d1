"""The gRPC server assembled: BatchService, health (tracking the gateway), reflection; start and graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from otari_batch_grpc.server import wiring
from otari_batch_grpc.server.config import Settings
from otari_batch_grpc.server.domain.callers import OwnerHasher
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.core.delegated import follow_delegated
from otari_batch_grpc.server.domain.notifications.deliverer import Deliverer
from otari_batch_grpc.server.domain.notifications.following import follow_endpoint_batches
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.edge import reflection
from otari_batch_grpc.server.edge.limits import LimitPolicy, Limits
from otari_batch_grpc.server.edge.rpc import register
from otari_batch_grpc.server.edge.service import BatchService
from otari_batch_grpc.server.edge.webhook_service import WebhookService
from otari_batch_grpc.server.gateway.client import API_ROOTS, GatewayClient
from otari_batch_grpc.server.gateway.errors import UpstreamError
from otari_batch_grpc.server.secret_files import load_owner_secret, sealer, token_keys
from otari_batch_grpc.server.store import Store, StoreUnavailable, open_store
from otari_batch_grpc.server.telemetry import metrics, tracing
from otari_batch_grpc.server.telemetry.metrics import MetricsListener
from otari_batch_grpc.server.webhooks.sender import Sender
from otari_batch_grpc.v1 import batch_service_pb2, webhook_service_pb2

log = logging.getLogger("otari_batch_grpc")

SERVICE_NAME: str = batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"].full_name
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """grpc core's channel arguments for the server: message size, and what a load balancer in front needs."""

    def ms(seconds: float) -> int:
        return max(1, round(seconds * 1000))

    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_streams),
        # The server pings a silent connection, with or without calls on it; clients may ping an idle one too
        # (a WatchBatch subscriber between events), no more often than the minimum interval.
        ("grpc.keepalive_time_ms", ms(settings.grpc_keepalive_time)),
        ("grpc.keepalive_timeout_ms", ms(settings.grpc_keepalive_timeout)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(settings.grpc_min_ping_interval)),
        ("grpc.http2.max_ping_strikes", settings.grpc_max_ping_strikes),
        # Calls that arrived and wait for the server to take them up. Past grpc core's own bounds (1,000, then
        # refusing at random up to 3,000) a burst of subscribers (a deploy, a replica gone) would see CANCELLED,
        # which no client retries; as many as may be open at once wait instead, and the limits answer the rest.
        ("grpc.server.max_pending_requests", settings.limit_streams_total),
        ("grpc.server.max_pending_requests_hard_limit", 2 * settings.limit_streams_total),
    ]
    if settings.grpc_max_connection_age > 0:
        options += [
            ("grpc.max_connection_age_ms", ms(settings.grpc_max_connection_age)),
            ("grpc.max_connection_age_grace_ms", ms(settings.grpc_max_connection_age_grace)),
        ]
    return options


# Gateway probes that must fail in a row before the health service says NOT_SERVING.
HEALTH_FAILURES = 3


class BatchServer:
    """One running service: call `start`, then `stop` (or use `async with`)."""

    def __init__(self, settings: Settings, *, gateway_url: str) -> None:
        self.settings = settings
        self.limits = Limits(
            LimitPolicy(
                streams_per_caller=settings.limit_streams_per_caller,
                streams_total=settings.limit_streams_total,
                upstream_per_caller=settings.limit_upstream_per_caller,
                upstream_queue_per_caller=settings.limit_upstream_queue_per_caller,
                batch_requests=settings.limit_batch_requests,
                spooled_bytes_per_caller=settings.limit_spooled_bytes_per_caller,
                spooled_bytes_total=settings.limit_spooled_bytes_total,
                parts_in_flight_per_caller=settings.limit_parts_in_flight_per_caller,
            ),
            on_refusal=metrics.limit_refused,
        )
        self.gateway = GatewayClient(
            gateway_url,
            timeout=settings.upstream_timeout,
            results_timeout=settings.results_timeout,
            max_connections=settings.upstream_max_connections,
            api_root="/v1" if settings.gateway_api_root == "auto" else settings.gateway_api_root,
            platform_token=settings.platform_token,
            gate=self.limits.upstream,
        )
        self.health = HealthServicer()
        self.port = 0
        self.metrics: MetricsListener | None = None
        self._service: BatchService | None = None
        self._webhooks: WebhookService | None = None
        self._deliverer: Deliverer | None = None
        self._sender: Sender | None = None
        self._sealer: Sealer | None = None
        self._store: Store | None = None
        self._server: aio.Server | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._rerun_task: asyncio.Task[None] | None = None
        self._deliver_task: asyncio.Task[None] | None = None

    @property
    def service(self) -> BatchService:
        assert self._service is not None, "start() first"
        return self._service

    @property
    def store(self) -> Store:
        assert self._store is not None, "start() first"
        return self._store

    async def start(self) -> int:
        """Open the state, bind and serve; returns the bound port (useful with port 0)."""
        if (where := self.settings.metrics_host_port) is not None:
            try:
                self.metrics = MetricsListener(*where)
            except OSError as exc:
                raise OSError(f"cannot listen on {self.settings.metrics_address} for metrics: {exc}") from exc
        try:
            return await self._start()
        except BaseException:  # close what was opened: nothing is left for the loop to complain of at exit
            await self.gateway.aclose()
            if self.metrics is not None:
                await self.metrics.close()
            raise

    async def _start(self) -> int:
        settings = self.settings
        with tracing.untraced():  # the probes at start are no one's call
            await self._find_api_root()
        self._store = await open_store(settings.store_target)
        try:
            # Replicas on one PostgreSQL share the secrets it keeps, so they hash a caller alike and open each
            # other's tokens.
            shared = None if settings.owner_secret else await self._store.shared_secret("owner_secret")
            secret = shared or await load_owner_secret(settings.owner_secret, settings.state_db)
            tokens = await token_keys(settings.token_keys, settings.state_db, self._store)
            self._sealer = await sealer(settings.key_encryption_keys, settings.state_db, self._store)
            self._service = wiring.batch_service(
                settings,
                gateway=self.gateway,
                store=self._store,
                limits=self.limits,
                owners=OwnerHasher(secret),
                tokens=tokens,
                sealer=self._sealer,
            )
            self._webhooks, self._deliverer, self._sender = wiring.webhooks(
                settings, service=self._service, store=self._store, sealer=self._sealer
            )
            await self._service.core.join_fleet()
            return await self._serve()
        except BaseException:
            await self._store.close()
            raise

    async def _serve(self) -> int:
        server = aio.server(options=server_options(self.settings))
        register(server, self.service, batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"])
        assert self._webhooks is not None
        register(server, self._webhooks, webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable(server)
        try:
            if self.settings.tls:
                self.port = server.add_secure_port(self.settings.grpc_listen, self._tls_credentials())
            else:
                self.port = server.add_insecure_port(self.settings.grpc_listen)
        except RuntimeError as exc:  # grpcio reports a failed bind this way
            raise OSError(f"cannot listen on {self.settings.grpc_listen}: is another process using it?") from exc
        await server.start()
        self._server = server
        self._watch_metrics()
        with tracing.untraced():
            reachable = await self.gateway.ping(within=2.0)
        await self._set_health(reachable)
        # Background tasks: not part of the call that happened to be current, and the probes are traced by no one.
        self._health_task = asyncio.create_task(
            self._watch_gateway(reachable), name="gateway-health", context=tracing.background()
        )
        self._sweep_task = asyncio.create_task(self._sweep(), name="retention", context=tracing.background())
        assert self._sealer is not None
        followers = _followers(self.service.core, self._sealer, self.settings.watch_poll_max)
        self._rerun_task = asyncio.create_task(followers, name="followers", context=tracing.background())
        assert self._deliverer is not None
        self._deliver_task = asyncio.create_task(self._deliverer.run(), name="webhooks", context=tracing.background())
        return self.port

    async def stop(self) -> None:
        """Graceful: health NOT_SERVING, open streams end with UNAVAILABLE, in-flight unary calls get the grace."""
        for task in (self._health_task, self._sweep_task, self._rerun_task, self._deliver_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.health.enter_graceful_shutdown()
        if self._service is not None:
            self._service.streams.drain()
            await self._service.hub.close()
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace)
        if self._sender is not None:  # (after the calls: SendTestWebhook sends with it too)
            await self._sender.aclose()
        await self.gateway.aclose()
        if self._store is not None:
            await self._store.close()
        if self._service is not None:
            metrics.WATCH_POLL_LOOPS.set_function(lambda: 0)
            metrics.WATCH_SUBSCRIPTIONS.set_function(lambda: 0)
        if self.metrics is not None:
            await self.metrics.close()

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()

    async def __aenter__(self) -> BatchServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def _watch_metrics(self) -> None:
        """The hub's gauges, read when scraped (on the listener's thread: each reads one len(), atomic under the
        GIL). With several servers in one process (tests), the last one started is the one counted."""
        hub = self.service.hub
        metrics.WATCH_POLL_LOOPS.set_function(hub.loops)
        subscriptions = getattr(hub, "subscriptions", None)  # Hub.subscriptions(), where the hub has it
        if callable(subscriptions):
            metrics.WATCH_SUBSCRIPTIONS.set_function(subscriptions)

    async def _watch_gateway(self, reachable: bool) -> None:
        """The health service follows the gateway, from `reachable` (the probe at start): NOT_SERVING after
        HEALTH_FAILURES probes in a row found it down (one slow answer does not flap it), SERVING again at the first
        probe that finds it up."""
        failures = 0 if reachable else HEALTH_FAILURES
        while True:
            await asyncio.sleep(self.settings.health_interval)
            answered = await self.gateway.ping(within=min(2.0, self.settings.health_interval))
            failures = 0 if answered else failures + 1
            now = answered or (reachable and failures < HEALTH_FAILURES)
            if now != reachable:
                log.log(logging.INFO if now else logging.WARNING, "gateway reachable: %s", now)
                reachable = now
            await self._set_health(now)

    async def _find_api_root(self) -> None:
        """GATEWAY_API_ROOT=auto: ask the gateway which root serves the batch routes (and say which in the log)."""
        if self.settings.gateway_api_root != "auto":
            log.info("gateway API root %s (set by GATEWAY_API_ROOT)", self.gateway.api_root)
            return
        try:
            root = await self.gateway.find_api_root(within=5.0)
        except UpstreamError:
            log.warning(
                "the gateway at %s does not answer; assuming API root %s (set GATEWAY_API_ROOT to be sure)",
                self.gateway.base_url,
                self.gateway.api_root,
            )
            return
        if root is None:
            await self.gateway.aclose()
            raise OSError(
                f"the gateway at {self.gateway.base_url} serves neither {API_ROOTS[0]}/batches nor "
                f"{API_ROOTS[1]}/batches (both answered 404): is GATEWAY_URL the gateway's origin?"
            )
        self.gateway.api_root = root
        log.info("gateway API root %s (found at start; GATEWAY_API_ROOT=auto)", root)

    async def _sweep(self) -> None:
        """Retention: forget what is past its time, at start and then every `sweep_interval`."""
        while True:
            try:
                gone = await self.service.core.sweep()
            except Exception:
                log.exception("retention sweep failed; the next one tries again")
            else:
                if gone:
                    log.info("retention sweep: %d rows forgotten", gone)
                with contextlib.suppress(Exception):
                    metrics.RESULTS_CACHE_BYTES.set(await self.store.results_bytes())
            await asyncio.sleep(self.settings.sweep_interval)

    async def _set_health(self, reachable: bool) -> None:
        status = _SERVING if reachable else _NOT_SERVING
        await self.health.set("", status)
        await self.health.set(SERVICE_NAME, status)

    def _tls_credentials(self) -> grpc.ServerCredentials:
        settings = self.settings
        assert settings.tls_cert is not None and settings.tls_key is not None
        ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
        return grpc.ssl_server_credentials(
            [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


async def _followers(core: Batches, sealer: Sealer, interval: float) -> None:
    """Batches advance while no one calls: those with re-runs asked, each read with its delegated key, and those
    webhook endpoints are told of, with the key delegated to them, every `interval` (unless a watch polls it)."""
    followers: dict[str, Callable[[], Awaitable[int]]] = {
        "the batches with re-runs": functools.partial(follow_delegated, core),
        "the batches of webhook endpoints": functools.partial(follow_endpoint_batches, core, sealer),
    }
    while True:
        for what, follow in followers.items():
            try:
                await follow()
            except StoreUnavailable:  # (the database away: nothing to say but that)
                log.warning("following %s: the state database did not answer; next round", what)
            except Exception:
                log.exception("following %s failed; the next round tries again", what)
        await asyncio.sleep(interval)
