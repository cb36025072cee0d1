"""A webhook's body, as Standard Webhooks has it: `{"type", "timestamp", "data"}`. The type is the caller's to say
(`batch.completed`, ...: see domain.notifications.endpoints). The data is the contract's own BatchEvent in its JSON
mapping (the batch, its previous status, when it was observed, its resume token), so a receiver in any language
reads it with the generated types (JSON parse into otari.batch.v1.BatchEvent). Its id (`webhook-id`) is the same on
every try of one event, so a receiver drops the repeats that at-least-once delivery makes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf import json_format

from otari_batch_grpc.v1 import watch_pb2

TEST_TYPE = "webhook.test"


def message_id(event_id: int) -> str:
    """The id of one event to one endpoint (its outbox row's), the same on every try of it."""
    return f"msg_{event_id}"


def body(event: watch_pb2.BatchEvent, *, kind: str) -> bytes:
    """The JSON body of `event`, of type `kind`, timestamped when it was observed."""
    observed = event.observed_at.ToDatetime(tzinfo=UTC) if event.HasField("observed_at") else datetime.now(UTC)
    document = {
        "type": kind,
        "timestamp": _stamp(observed),
        "data": json_format.MessageToDict(event),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def test_body(endpoint_id: str, at: float) -> bytes:
    """The body of a test event (SendTestWebhook): of type webhook.test, its data naming the endpoint."""
    document = {
        "type": TEST_TYPE,
        "timestamp": _stamp(datetime.fromtimestamp(at, UTC)),
        "data": {"endpointId": endpoint_id},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _stamp(when: datetime) -> str:
    """RFC 3339 in UTC, to the millisecond: 2026-12-06T10:00:00.000Z."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
