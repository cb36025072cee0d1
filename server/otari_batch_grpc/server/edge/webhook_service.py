"""WebhookService (#32): proto <-> domain adapters for webhook endpoints. Each handler checks its request (what the
.proto states), asks `Registrations` and shapes the answer; `rpc` turns errors into gRPC statuses."""

from __future__ import annotations

import json
import time
from typing import Any

from google.protobuf import timestamp_pb2
from grpc import aio

from otari_batch_grpc.server.domain.callers import Caller, OwnerHasher
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import FieldViolation, invalid_argument
from otari_batch_grpc.server.domain.notifications.endpoints import Events
from otari_batch_grpc.server.domain.notifications.registrations import EndpointSpec, Registered, Registrations, Sent
from otari_batch_grpc.server.edge import validation
from otari_batch_grpc.server.edge.credentials import credential_from_metadata
from otari_batch_grpc.server.edge.rpc import OpenStreams, unary
from otari_batch_grpc.v1 import webhook_service_pb2

Context = aio.ServicerContext[Any, Any]
pb = webhook_service_pb2

MAX_DESCRIPTION_CHARS = 512
MAX_FILTER_PAIRS = 16
DEFAULT_OVERLAP_SECONDS = 24 * 3600.0
UPDATABLE = ("url", "events", "metadata_filter", "description", "enabled")
_EVENTS = {pb.WEBHOOK_EVENTS_TERMINAL: Events.TERMINAL, pb.WEBHOOK_EVENTS_ALL: Events.ALL}
_EVENTS_PB = {value: key for key, value in _EVENTS.items()}
_STATES = {
    "pending": pb.WEBHOOK_DELIVERY_STATE_PENDING,
    "delivered": pb.WEBHOOK_DELIVERY_STATE_DELIVERED,
    "superseded": pb.WEBHOOK_DELIVERY_STATE_SUPERSEDED,
    "dropped": pb.WEBHOOK_DELIVERY_STATE_DROPPED,
}


class WebhookService:
    """The handlers of otari.batch.v1.WebhookService (registered by `rpc.register`)."""

    def __init__(
        self, *, registrations: Registrations, core: Batches, owners: OwnerHasher, service_key: str | None
    ) -> None:
        self.registrations = registrations
        self.core = core
        self.owners = owners
        self.service_key = service_key
        self.streams = OpenStreams()  # (none: every call is unary)

    @unary
    async def CreateWebhookEndpoint(
        self, request: pb.CreateWebhookEndpointRequest, context: Context
    ) -> pb.CreateWebhookEndpointResponse:
        problems: list[FieldViolation] = []
        if not request.url:
            problems.append(FieldViolation("url", "is required: the https:// URL to POST the events to"))
        events = _events(request.events, problems)
        _check_spec(request.metadata_filter, request.description, problems)
        _raise(problems)
        caller = await self._caller(context)
        spec = EndpointSpec(request.url, events, dict(request.metadata_filter), request.description)
        record, secret = await self.registrations.create(caller, spec)
        return pb.CreateWebhookEndpointResponse(endpoint=self._shown(record), signing_secret=secret)

    @unary
    async def GetWebhookEndpoint(
        self, request: pb.GetWebhookEndpointRequest, context: Context
    ) -> pb.GetWebhookEndpointResponse:
        _check_endpoint_id(request.endpoint_id)
        record = await self.registrations.get(await self._caller(context), request.endpoint_id)
        return pb.GetWebhookEndpointResponse(endpoint=self._shown(record))

    @unary
    async def ListWebhookEndpoints(
        self, request: pb.ListWebhookEndpointsRequest, context: Context
    ) -> pb.ListWebhookEndpointsResponse:
        records = await self.registrations.of(await self._caller(context))
        return pb.ListWebhookEndpointsResponse(endpoints=[self._shown(record) for record in records])

    @unary
    async def UpdateWebhookEndpoint(
        self, request: pb.UpdateWebhookEndpointRequest, context: Context
    ) -> pb.UpdateWebhookEndpointResponse:
        given = request.endpoint
        _check_endpoint_id(given.id, name="endpoint.id")
        paths = list(request.update_mask.paths)
        problems: list[FieldViolation] = []
        if not paths:
            problems.append(FieldViolation("update_mask", f"is required: which of {', '.join(UPDATABLE)} to set"))
        unknown = [path for path in paths if path not in UPDATABLE]
        if unknown:
            problems.append(FieldViolation("update_mask", f"{unknown[0]!r} cannot be set: only {', '.join(UPDATABLE)}"))
        fields: dict[str, object] = {}
        for path in paths:
            if path == "url":
                if not given.url:
                    problems.append(FieldViolation("endpoint.url", "is required when update_mask names it"))
                fields["url"] = given.url
            elif path == "events":
                fields["events"] = _events(given.events, problems, name="endpoint.events")
            elif path == "metadata_filter":
                fields["metadata_filter"] = dict(given.metadata_filter)
            elif path == "description":
                fields["description"] = given.description
            elif path == "enabled":
                fields["enabled"] = given.enabled
        _check_spec(given.metadata_filter, given.description, problems, prefix="endpoint.")
        _raise(problems)
        record = await self.registrations.update(await self._caller(context), given.id, fields)
        return pb.UpdateWebhookEndpointResponse(endpoint=self._shown(record))

    @unary
    async def RotateWebhookSecret(
        self, request: pb.RotateWebhookSecretRequest, context: Context
    ) -> pb.RotateWebhookSecretResponse:
        _check_endpoint_id(request.endpoint_id)
        overlap = DEFAULT_OVERLAP_SECONDS
        if request.HasField("overlap"):
            overlap = request.overlap.seconds + request.overlap.nanos / 1e9
        record, secret = await self.registrations.rotate(await self._caller(context), request.endpoint_id, overlap)
        return pb.RotateWebhookSecretResponse(endpoint=self._shown(record), signing_secret=secret)

    @unary
    async def DeleteWebhookEndpoint(
        self, request: pb.DeleteWebhookEndpointRequest, context: Context
    ) -> pb.DeleteWebhookEndpointResponse:
        _check_endpoint_id(request.endpoint_id)
        await self.registrations.delete(await self._caller(context), request.endpoint_id)
        return pb.DeleteWebhookEndpointResponse()

    @unary
    async def SendTestWebhook(self, request: pb.SendTestWebhookRequest, context: Context) -> pb.SendTestWebhookResponse:
        _check_endpoint_id(request.endpoint_id)
        caller = await self._caller(context)
        outcome = await self.registrations.test(caller, request.endpoint_id, time_left=context.time_remaining())
        return pb.SendTestWebhookResponse(
            webhook_id=outcome.webhook_id, status_code=outcome.status, error=outcome.error, delivered=outcome.delivered
        )

    @unary
    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Context
    ) -> pb.ListWebhookDeliveriesResponse:
        _check_endpoint_id(request.endpoint_id)
        if request.page_size < 0:
            _raise([FieldViolation("page_size", "must be 0 (default) to 100, not negative")])
        limit = validation.page_size(request.page_size)
        records = await self.registrations.deliveries(await self._caller(context), request.endpoint_id, limit)
        return pb.ListWebhookDeliveriesResponse(deliveries=[_delivery(record) for record in records])

    # -- helpers ------------------------------------------------------------------------------------------
    async def _caller(self, context: Context) -> Caller:
        """The caller, its key taken by the gateway lately (or asked now): a key it refuses sees, changes and
        registers nothing here, as for batches (UNAUTHENTICATED)."""
        credential = credential_from_metadata(context.invocation_metadata(), service_key=self.service_key)
        caller = self.owners.caller(credential.key)
        await self.core.vouch(caller, time_left=context.time_remaining())
        return caller

    def _shown(self, record: Registered) -> pb.WebhookEndpoint:
        shown = pb.WebhookEndpoint(
            id=record.id,
            url=record.url,
            events=_EVENTS_PB[Events(record.events)],
            metadata_filter=json.loads(record.metadata_filter),
            description=record.description,
            enabled=record.enabled,
            disabled_reason=record.disabled_reason,
            create_time=_time(record.created_at),
            update_time=_time(record.updated_at),
        )
        secrets = self.registrations.secrets_of(record)
        if secrets.previous and secrets.previous_until > time.time():  # (while the overlap lasts: unset after it)
            shown.previous_secret_expire_time.CopyFrom(_time(secrets.previous_until))
        return shown


def _delivery(record: Sent) -> pb.WebhookDelivery:
    shown = pb.WebhookDelivery(
        webhook_id=f"msg_{record.id}",
        type=record.kind,
        batch_id=record.batch_id,
        state=_STATES.get(record.state, pb.WEBHOOK_DELIVERY_STATE_UNSPECIFIED),
        attempts=record.attempts,
        last_status_code=record.last_status,
        last_error=record.last_error,
        create_time=_time(record.created_at),
    )
    if record.state == "pending":
        shown.next_attempt_time.CopyFrom(_time(record.next_at))
    if record.done_at:
        shown.done_time.CopyFrom(_time(record.done_at))
    return shown


def _time(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _events(value: int, problems: list[FieldViolation], *, name: str = "events") -> Events:
    if value not in _EVENTS:
        problems.append(FieldViolation(name, "is required: WEBHOOK_EVENTS_TERMINAL or WEBHOOK_EVENTS_ALL"))
        return Events.TERMINAL
    return _EVENTS[value]  # type: ignore[index]


def _check_spec(metadata_filter: Any, description: str, problems: list[FieldViolation], *, prefix: str = "") -> None:
    if len(metadata_filter) > MAX_FILTER_PAIRS:
        problems.append(FieldViolation(prefix + "metadata_filter", f"at most {MAX_FILTER_PAIRS} pairs"))
    validation.check_pairs(prefix + "metadata_filter", metadata_filter, problems)
    if len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(FieldViolation(prefix + "description", f"at most {MAX_DESCRIPTION_CHARS} characters"))


def _check_endpoint_id(endpoint_id: str, *, name: str = "endpoint_id") -> None:
    problems: list[FieldViolation] = []
    validation.check_id(name, endpoint_id, problems)
    _raise(problems)


def _raise(problems: list[FieldViolation]) -> None:
    if problems:
        raise invalid_argument(problems)
