"""A webhook's body (#32): Standard Webhooks' `{type, timestamp, data}`, the data the contract's BatchEvent."""

from __future__ import annotations

import json

from google.protobuf import json_format, timestamp_pb2

from otari_batch_grpc.server.webhooks.events import body, message_id
from otari_batch_grpc.v1 import batch_pb2, watch_pb2


def test_the_data_reads_back_as_the_contracts_batch_event() -> None:
    event = watch_pb2.BatchEvent(
        kind=watch_pb2.BATCH_EVENT_KIND_CHANGE,
        batch=batch_pb2.Batch(id="batch_1", status=batch_pb2.BATCH_STATUS_CANCELLED, metadata={"team": "é"}),
        previous_status=batch_pb2.BATCH_STATUS_CANCELLING,
        observed_at=timestamp_pb2.Timestamp(seconds=1_796_546_256, nanos=250_000_000),
        resume_token="tok",
    )
    document = json.loads(body(event, kind="batch.cancelled"))
    assert (document["type"], document["timestamp"]) == ("batch.cancelled", "2026-12-06T08:37:36.250Z")
    assert json_format.ParseDict(document["data"], watch_pb2.BatchEvent()) == event
    assert json.loads(body(event, kind="webhook.test"))["type"] == "webhook.test"
    assert "é" in body(event, kind="batch.cancelled").decode()  # UTF-8, not escaped


def test_one_event_keeps_its_id_across_tries_and_two_do_not_share_one() -> None:
    assert message_id(7) == message_id(7) == "msg_7" and message_id(7) != message_id(8)
