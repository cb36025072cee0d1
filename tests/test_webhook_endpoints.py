"""A webhook endpoint (#32): which changes it wants, its signing secrets through a rotation, sealed, and the outbox's
events of a change."""

from __future__ import annotations

import pytest

from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint, Events, SigningSecrets, event_type
from otari_batch_grpc.server.domain.notifications.outbox import events_for
from otari_batch_grpc.server.domain.sealing import Sealer, Unsealable
from otari_batch_grpc.server.gateway.convert import TERMINAL_STATUSES
from otari_batch_grpc.server.store import Change, EndpointRecord, Revision, SeenBatch
from otari_batch_grpc.server.webhooks.signing import new_secret
from otari_batch_grpc.v1 import batch_pb2, watch_pb2

S = batch_pb2
SEALER = Sealer({1: b"k" * 32})


def batch(status: int, **metadata: str) -> batch_pb2.Batch:
    return batch_pb2.Batch(id="batch_1", status=status, metadata=metadata)  # type: ignore[arg-type]


def test_the_type_is_the_status_as_the_gateway_spells_it() -> None:
    assert event_type(S.BATCH_STATUS_IN_PROGRESS) == "batch.in_progress"
    ended = {event_type(s) for s in TERMINAL_STATUSES}
    assert ended == {"batch.completed", "batch.failed", "batch.expired", "batch.cancelled"}


def test_an_endpoint_of_terminal_events_wants_the_moves_to_an_end() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.TERMINAL)
    assert endpoint.wants(True, batch(S.BATCH_STATUS_COMPLETED)) == "batch.completed"
    assert endpoint.wants(True, batch(S.BATCH_STATUS_EXPIRED)) == "batch.expired"
    assert endpoint.wants(True, batch(S.BATCH_STATUS_IN_PROGRESS)) is None
    assert endpoint.wants(False, batch(S.BATCH_STATUS_CANCELLED)) is None  # no move


def test_an_endpoint_of_every_change_wants_each_move_of_the_status_and_no_change_of_counts() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.ALL)
    assert endpoint.wants(True, batch(S.BATCH_STATUS_VALIDATING)) == "batch.validating"
    assert endpoint.wants(True, batch(S.BATCH_STATUS_IN_PROGRESS)) == "batch.in_progress"
    assert endpoint.wants(False, batch(S.BATCH_STATUS_IN_PROGRESS)) is None  # counts moved, not the status


def test_a_filter_keeps_the_batches_with_each_of_its_pairs() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.ALL, {"team": "a", "env": "prod"})
    assert endpoint.wants(True, batch(S.BATCH_STATUS_COMPLETED, team="a", env="prod", x="y")) == "batch.completed"
    assert endpoint.wants(True, batch(S.BATCH_STATUS_COMPLETED, team="a")) is None
    assert endpoint.wants(True, batch(S.BATCH_STATUS_COMPLETED, team="b", env="prod")) is None


def test_while_a_secret_is_rotated_both_sign_until_the_overlap_ends() -> None:
    first, second = new_secret(), new_secret()
    secrets = SigningSecrets(first)
    assert secrets.signing(now=0.0) == [first]
    rotated = secrets.rotated(second, now=100.0, overlap=60.0)
    assert rotated.signing(now=159.0) == [second, first] and rotated.signing(now=160.0) == [second]
    assert secrets.rotated(second, now=100.0, overlap=0.0).signing(now=100.0) == [second]
    with pytest.raises(ValueError, match="overlap"):
        secrets.rotated(second, now=0.0, overlap=-1.0)


def test_secrets_are_kept_sealed_to_their_endpoint_and_owner() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.ALL)
    secrets = SigningSecrets(new_secret()).rotated(new_secret(), now=1.0, overlap=30.0)
    sealed = secrets.sealed(SEALER, endpoint)
    assert secrets.current.encode() not in sealed
    assert SigningSecrets.opened(sealed, SEALER, endpoint) == secrets
    for other in (Endpoint("wh_2", "o", "u", Events.ALL), Endpoint("wh_1", "p", "u", Events.ALL)):
        with pytest.raises(Unsealable):
            SigningSecrets.opened(sealed, SEALER, other)


def _record(
    endpoint_id: str, events: str = "all", metadata_filter: str = "{}", *, enabled: bool = True
) -> EndpointRecord:
    return EndpointRecord(
        endpoint_id, "o", "https://h.example/", events, metadata_filter, "", b"", b"", enabled, "", 1.0, 1.0
    )


def _change(before: str | None, after: batch_pb2.Batch, *endpoints: EndpointRecord) -> Change:
    status = batch_pb2.BatchStatus.Name(after.status).removeprefix("BATCH_STATUS_").lower()
    terminal = after.status in TERMINAL_STATUSES
    seen = SeenBatch(after.id, "openai", status, terminal, after.SerializeToString(deterministic=True))
    return Change(seen, before, Revision(after.id, 4, seen.snapshot, 1_700_000_000.5, 40), endpoints)


def test_the_outbox_gets_one_event_per_endpoint_that_wants_the_change() -> None:
    done = batch(S.BATCH_STATUS_COMPLETED, team="a")
    every, terminal = _record("wh_all"), _record("wh_end", "terminal")
    other_team, disabled = _record("wh_b", metadata_filter='{"team": "b"}'), _record("wh_off", enabled=False)
    deliveries = events_for([_change("finalizing", done, every, terminal, other_team, disabled)])
    assert [(d.endpoint_id, d.kind, d.rev, d.terminal) for d in deliveries] == [
        ("wh_all", "batch.completed", 4, True), ("wh_end", "batch.completed", 4, True),
        ("wh_off", "batch.completed", 4, True),  # (kept for it while it is disabled)
    ]  # fmt: skip
    event = watch_pb2.BatchEvent.FromString(deliveries[0].event)
    assert (event.kind, event.batch, event.previous_status) == (
        watch_pb2.BATCH_EVENT_KIND_CHANGE,
        done,
        S.BATCH_STATUS_FINALIZING,
    )
    assert event.observed_at.ToNanoseconds() == 1_700_000_000_500_000_000 and not event.resume_token
    first = watch_pb2.BatchEvent.FromString(
        events_for([_change(None, batch(S.BATCH_STATUS_VALIDATING), every)])[0].event
    )
    assert first.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT  # new to the service: nothing before it
    running = batch(S.BATCH_STATUS_IN_PROGRESS)
    assert events_for([_change("in_progress", running, every)]) == []  # the counts moved, not the status
    assert [d.endpoint_id for d in events_for([_change("validating", running, every, terminal)])] == ["wh_all"]
