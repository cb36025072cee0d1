"""WebhookService from Python: `BatchClient.webhooks` (and SyncBatchClient.webhooks, blocking).

    async with BatchClient("127.0.0.1:50051", api_key=key) as client:
        endpoint, secret = await client.webhooks.create("https://hooks.example.com/otari")
        ...  # keep `secret`: it verifies what the endpoint is sent, and is shown only now
        for delivery in await client.webhooks.deliveries(endpoint.id):
            print(delivery.type, delivery.state, delivery.last_status_code)

A receiver verifies each delivery with the Standard Webhooks library (`pip install standardwebhooks`):
`Webhook(secret).verify(body, headers)` returns the event, `{"type", "timestamp", "data"}`.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypeVar

import grpc
from google.protobuf import duration_pb2, field_mask_pb2

from otari_batch_grpc.errors import BatchError
from otari_batch_grpc.v1 import webhook_service_pb2 as pb
from otari_batch_grpc.v1 import webhook_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.client import BatchClient
    from otari_batch_grpc.v1.webhook_service_pb2_grpc import WebhookServiceAsyncStub

__all__ = ["Webhooks"]

T = TypeVar("T")
Events = Literal["terminal", "all"]
_EVENTS = {"terminal": pb.WEBHOOK_EVENTS_TERMINAL, "all": pb.WEBHOOK_EVENTS_ALL}


def events_value(events: str) -> pb.WebhookEvents.ValueType:
    if events not in _EVENTS:
        raise ValueError(f"events must be 'terminal' (the terminal statuses) or 'all' (every move), not {events!r}")
    return _EVENTS[events]


class Webhooks:
    """Your webhook endpoints. Reads and updates are retried as BatchClient retries (a second try changes nothing
    the first did not); `create`, `rotate_secret`, `delete` and `send_test` are sent once, so a lost reply never
    registers a second endpoint or rotates twice."""

    def __init__(self, client: BatchClient) -> None:
        self._client = client
        self._stub: WebhookServiceAsyncStub = webhook_service_pb2_grpc.WebhookServiceStub(client._channel)

    async def create(
        self,
        url: str,
        *,
        events: Events = "terminal",
        metadata_filter: Mapping[str, str] | None = None,
        description: str = "",
        deadline: float | None = 60.0,
    ) -> tuple[pb.WebhookEndpoint, str]:
        """Register an endpoint: (it, its signing secret, shown only now). `events`: "terminal" (batch.completed,
        .failed, .expired, .cancelled) or "all" (every move of the status); `metadata_filter`: only batches carrying
        each of these pairs."""
        request = pb.CreateWebhookEndpointRequest(
            url=url, events=events_value(events), metadata_filter=dict(metadata_filter or {}), description=description
        )
        reply = await self._once(self._stub.CreateWebhookEndpoint, request, deadline)
        return reply.endpoint, reply.signing_secret

    async def get(self, endpoint_id: str, *, deadline: float | None = 60.0) -> pb.WebhookEndpoint:
        request = pb.GetWebhookEndpointRequest(endpoint_id=endpoint_id)
        reply = await self._retried(self._stub.GetWebhookEndpoint, request, deadline)
        return reply.endpoint

    async def list(self, *, deadline: float | None = 60.0) -> list[pb.WebhookEndpoint]:
        """Your endpoints, oldest first."""
        request = pb.ListWebhookEndpointsRequest()
        reply = await self._retried(self._stub.ListWebhookEndpoints, request, deadline)
        return list(reply.endpoints)

    async def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Events | None = None,
        metadata_filter: Mapping[str, str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        deadline: float | None = 60.0,
    ) -> pb.WebhookEndpoint:
        """Set what is given (None: left as it is). `enabled=False` holds its deliveries back; True sends them."""
        endpoint = pb.WebhookEndpoint(id=endpoint_id)
        given = {
            "url": url,
            "events": None if events is None else events_value(events),
            "description": description,
            "enabled": enabled,
        }
        paths = [name for name, value in given.items() if value is not None]
        for name in paths:
            setattr(endpoint, name, given[name])
        if metadata_filter is not None:
            endpoint.metadata_filter.update(metadata_filter)
            paths.append("metadata_filter")
        request = pb.UpdateWebhookEndpointRequest(endpoint=endpoint, update_mask=field_mask_pb2.FieldMask(paths=paths))
        reply = await self._retried(self._stub.UpdateWebhookEndpoint, request, deadline)
        return reply.endpoint

    async def rotate_secret(
        self, endpoint_id: str, *, overlap_seconds: float = 24 * 3600.0, deadline: float | None = 60.0
    ) -> tuple[pb.WebhookEndpoint, str]:
        """A new signing secret (shown only now); the old one signs too for `overlap_seconds` (0: no longer)."""
        overlap = duration_pb2.Duration()
        overlap.FromNanoseconds(int(overlap_seconds * 1e9))
        request = pb.RotateWebhookSecretRequest(endpoint_id=endpoint_id, overlap=overlap)
        reply = await self._once(self._stub.RotateWebhookSecret, request, deadline)
        return reply.endpoint, reply.signing_secret

    async def delete(self, endpoint_id: str, *, deadline: float | None = 60.0) -> None:
        request = pb.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id)
        await self._once(self._stub.DeleteWebhookEndpoint, request, deadline)

    async def send_test(self, endpoint_id: str, *, deadline: float | None = 60.0) -> pb.SendTestWebhookResponse:
        """A signed `webhook.test` sent now, once: how the receiver answered (`delivered`, `status_code`, `error`)."""
        request = pb.SendTestWebhookRequest(endpoint_id=endpoint_id)
        return await self._once(self._stub.SendTestWebhook, request, deadline)

    async def deliveries(
        self, endpoint_id: str, *, page_size: int = 0, deadline: float | None = 60.0
    ) -> builtins.list[pb.WebhookDelivery]:
        """The endpoint's recent deliveries, newest first."""
        request = pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint_id, page_size=page_size)
        reply = await self._retried(self._stub.ListWebhookDeliveries, request, deadline)
        return list(reply.deliveries)

    # -- helpers ------------------------------------------------------------------------------------------
    async def _retried(self, method: Callable[..., Awaitable[T]], request: object, deadline: float | None) -> T:
        metadata = self._client._metadata
        return await self._client._unary(lambda left: method(request, metadata=metadata, timeout=left), deadline)

    async def _once(self, method: Callable[..., Awaitable[T]], request: object, deadline: float | None) -> T:
        await self._client._connect(None)
        try:
            return await method(request, metadata=self._client._metadata, timeout=deadline)
        except grpc.aio.AioRpcError as error:
            raise BatchError.of(error) from None
