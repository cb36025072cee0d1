"""What the webhook outbox is to send of a batch's new revision (the store runs it in the transaction that saves the
revision: see Store.enter): for each endpoint that may be told of it and wants the change, an event carrying the
contract's BatchEvent (its resume token is added when it is sent, sealed for the endpoint's owner)."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint
from otari_batch_grpc.server.store import Change, Delivery
from otari_batch_grpc.v1 import batch_pb2, watch_pb2


def events_for(changes: Sequence[Change]) -> list[Delivery]:
    """The outbox's events of these changes (a pure function: it runs inside the store's transaction)."""
    out: list[Delivery] = []
    for change in changes:
        moved = change.before is None or change.before != change.seen.status
        if not moved:
            continue
        after = batch_pb2.Batch.FromString(change.seen.snapshot)
        event: bytes | None = None
        for record in change.endpoints:
            kind = Endpoint.of(record).wants(moved, after)
            if kind is None:
                continue
            if event is None:
                event = _event(change, after).SerializeToString(deterministic=True)
            out.append(Delivery(record.id, after.id, change.revision.rev, kind, change.seen.terminal, event))
    return out


def _event(change: Change, after: batch_pb2.Batch) -> watch_pb2.BatchEvent:
    observed = timestamp_pb2.Timestamp()
    observed.FromNanoseconds(int(change.revision.observed_at * 1e9))
    before = _status(change.before)
    return watch_pb2.BatchEvent(
        kind=watch_pb2.BATCH_EVENT_KIND_CHANGE if before else watch_pb2.BATCH_EVENT_KIND_SNAPSHOT,
        batch=after,
        previous_status=before,
        observed_at=observed,
    )


def _status(name: str | None) -> batch_pb2.BatchStatus.ValueType:
    """The status the registry spelled `name` (as the gateway does), UNSPECIFIED for none or one unknown."""
    if not name:
        return batch_pb2.BATCH_STATUS_UNSPECIFIED
    try:
        return batch_pb2.BatchStatus.Value("BATCH_STATUS_" + name.upper())
    except ValueError:
        return batch_pb2.BATCH_STATUS_UNSPECIFIED
