"""Webhook endpoints as their owners manage them (#32): registered (the URL checked, the owner's key delegated and
the signing secret shown once), read, changed, rotated, deleted, tried with a test event, and their deliveries
listed. An endpoint is its caller's alone: another key is told there is none (NOT_FOUND), as for a batch."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.errors import Code, FieldViolation, ServiceError, invalid_argument, refusal
from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint, Events, SigningSecrets
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.store import DeliveryRecord, EndpointRecord, Store
from otari_batch_grpc.server.telemetry import metrics
from otari_batch_grpc.server.webhooks import events as webhook_events
from otari_batch_grpc.server.webhooks.sender import NotDelivered, Sender
from otari_batch_grpc.server.webhooks.signing import new_secret, signed_headers
from otari_batch_grpc.server.webhooks.targets import TargetPolicy, TargetRefused, checked_url, resolve

# What a key kept for an endpoint is for (bound into it when sealed: see sealing).
ENDPOINT_KEY = "a key delegated to a webhook endpoint, to read its owner's batches"
ENDPOINT_NOT_FOUND = "WEBHOOK_ENDPOINT_NOT_FOUND"
# An endpoint's id: "whe_" and 24 random characters.
ID_PREFIX = "whe_"
MAX_ROTATION_OVERLAP = 7 * 24 * 3600.0
TESTS_AT_ONCE = 2  # test webhooks of one caller being sent at once
# What the edge shows of an endpoint and of a delivery (the store's records, named for the edge, which reads no
# store of its own).
Registered = EndpointRecord
Sent = DeliveryRecord


@dataclass(frozen=True)
class EndpointSpec:
    """What a caller sets of an endpoint."""

    url: str
    events: Events
    metadata_filter: Mapping[str, str]
    description: str
    enabled: bool = True


@dataclass(frozen=True)
class TestOutcome:
    webhook_id: str
    status: int
    error: str

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


class Registrations:
    def __init__(self, *, store: Store, sealer: Sealer, sender: Sender, targets: TargetPolicy, limit: int) -> None:
        self._store, self._sealer, self._sender = store, sealer, sender
        self._targets, self._limit = targets, limit
        self._testing: dict[str, int] = {}  # test webhooks being sent, by owner

    async def create(self, caller: Caller, spec: EndpointSpec) -> tuple[EndpointRecord, str]:
        """A new endpoint of the caller's, enabled, and its signing secret (shown this once)."""
        await self.check_url(spec.url)
        now = time.time()
        endpoint_id = ID_PREFIX + secrets.token_urlsafe(18)
        secret = new_secret()
        endpoint = Endpoint(endpoint_id, caller.owner, spec.url, spec.events, dict(spec.metadata_filter))
        record = EndpointRecord(
            id=endpoint_id,
            owner=caller.owner,
            url=spec.url,
            events=spec.events.value,
            metadata_filter=json.dumps(dict(spec.metadata_filter), sort_keys=True),
            description=spec.description,
            secrets=SigningSecrets(secret).sealed(self._sealer, endpoint),
            sealed_key=self._delegated(caller, endpoint_id),
            enabled=True,
            disabled_reason="",
            created_at=now,
            updated_at=now,
        )
        if not await self._store.add_endpoint(record, limit=self._limit):
            metrics.limit_refused("endpoints_per_caller")
            raise refusal(
                "endpoints_per_caller",
                f"You have {self._limit} webhook endpoints already, the most one caller may have: delete one first.",
                retry=False,
            )
        return record, secret

    async def get(self, caller: Caller, endpoint_id: str) -> EndpointRecord:
        record = await self._store.endpoint(endpoint_id)
        if record is None or record.owner != caller.owner:
            raise ServiceError(
                Code.NOT_FOUND,
                ENDPOINT_NOT_FOUND,
                f"You have no webhook endpoint {endpoint_id!r}.",
                {"endpoint_id": endpoint_id},
            )
        return record

    async def of(self, caller: Caller) -> list[EndpointRecord]:
        return await self._store.endpoints_of(caller.owner)

    async def update(self, caller: Caller, endpoint_id: str, fields: Mapping[str, object]) -> EndpointRecord:
        """The endpoint with `fields` (url, events, metadata_filter, description, enabled) set."""
        if "url" in fields:
            await self.check_url(str(fields["url"]))
        return await self._changing(caller, endpoint_id, lambda record, _now: _changed(record, fields))

    async def rotate(self, caller: Caller, endpoint_id: str, overlap: float) -> tuple[EndpointRecord, str]:
        if not 0 <= overlap <= MAX_ROTATION_OVERLAP:
            raise invalid_argument([FieldViolation("overlap", "must be 0 to 7 days")])
        secret = new_secret()

        def rotated(record: EndpointRecord, now: float) -> EndpointRecord:
            endpoint = Endpoint.of(record)
            secrets = SigningSecrets.opened(record.secrets, self._sealer, endpoint).rotated(
                secret, now=now, overlap=overlap
            )
            return replace(record, secrets=secrets.sealed(self._sealer, endpoint))

        return await self._changing(caller, endpoint_id, rotated), secret

    async def _changing(
        self, caller: Caller, endpoint_id: str, change: Callable[[EndpointRecord, float], EndpointRecord]
    ) -> EndpointRecord:
        """The caller's endpoint as `change` makes it (at a time after its last change), written unless it changed
        meanwhile (then read again), the caller's key delegated anew (one the gateway refused had been forgotten)."""
        for _ in range(3):
            record = await self.get(caller, endpoint_id)
            now = max(time.time(), record.updated_at + 1e-6)
            changed = replace(change(record, now), updated_at=now, sealed_key=self._delegated(caller, record.id))
            if await self._store.update_endpoint(changed, read_at=record.updated_at):
                return changed
        raise ServiceError(
            Code.UNAVAILABLE, "CONCURRENT_UPDATE", "The endpoint kept changing meanwhile; retry.", retry_after=0.1
        )

    def _delegated(self, caller: Caller, endpoint_id: str) -> bytes:
        """The caller's key, sealed for the endpoint: what its batches are read with while no one calls."""
        return self._sealer.seal(caller.key, purpose=ENDPOINT_KEY, subject=endpoint_id, owner=caller.owner)

    def secrets_of(self, record: EndpointRecord) -> SigningSecrets:
        return SigningSecrets.opened(record.secrets, self._sealer, Endpoint.of(record))

    async def delete(self, caller: Caller, endpoint_id: str) -> None:
        await self.get(caller, endpoint_id)
        await self._store.delete_endpoint(endpoint_id, caller.owner)

    async def deliveries(self, caller: Caller, endpoint_id: str, limit: int) -> list[DeliveryRecord]:
        await self.get(caller, endpoint_id)
        return await self._store.deliveries(endpoint_id, limit)

    async def test(self, caller: Caller, endpoint_id: str, *, time_left: float | None) -> TestOutcome:
        """A signed `webhook.test` event sent to the endpoint now, once (TESTS_AT_ONCE of a caller's at a time,
        within the call's deadline); how its receiver answered."""
        record = await self.get(caller, endpoint_id)
        if self._testing.get(caller.owner, 0) >= TESTS_AT_ONCE:
            metrics.limit_refused("webhook_tests_per_caller")
            raise refusal("webhook_tests_per_caller", f"At most {TESTS_AT_ONCE} test webhooks of yours at once.")
        now = time.time()
        message_id = "msg_test_" + secrets.token_urlsafe(12)
        body = webhook_events.test_body(record.id, now)
        headers = signed_headers(self.secrets_of(record).signing(now), message_id, now, body)
        self._testing[caller.owner] = self._testing.get(caller.owner, 0) + 1
        try:
            async with asyncio.timeout(None if time_left is None else max(0.0, time_left - 0.2)):
                answer = await self._sender.send(record.url, body, headers)
        except NotDelivered as exc:
            return TestOutcome(message_id, 0, str(exc))
        except TimeoutError:
            return TestOutcome(message_id, 0, "no answer within the call's deadline")
        finally:
            left = self._testing.pop(caller.owner) - 1
            if left:
                self._testing[caller.owner] = left
        error = "" if 200 <= answer.status < 300 else f"answered {answer.status}"
        return TestOutcome(message_id, answer.status, error)

    async def check_url(self, url: str) -> None:
        """INVALID_ARGUMENT for a URL no webhook may go to: its form, and the address when it names one (a host's
        addresses are checked, again, whenever it is sent to)."""
        try:
            parts = checked_url(url, self._targets)
            host = (parts.hostname or "").rstrip(".")
            try:
                ipaddress.ip_address(host)
            except ValueError:
                return
            await resolve(url, self._targets)
        except TargetRefused as exc:
            raise invalid_argument([FieldViolation("url", str(exc))]) from None


def _changed(record: EndpointRecord, fields: Mapping[str, object]) -> EndpointRecord:
    changed = record
    for name, value in fields.items():
        if name == "events":
            assert isinstance(value, Events)
            changed = replace(changed, events=value.value)
        elif name == "metadata_filter":
            assert isinstance(value, Mapping)
            changed = replace(changed, metadata_filter=json.dumps(dict(value), sort_keys=True))
        elif name == "enabled":
            reason = "" if value else (record.disabled_reason or "disabled by its owner")
            changed = replace(changed, enabled=bool(value), disabled_reason=reason)
        elif name == "url":
            changed = replace(changed, url=str(value))
        elif name == "description":
            changed = replace(changed, description=str(value))
    return changed
