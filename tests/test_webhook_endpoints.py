"""A webhook endpoint (#32): which changes it wants, and its signing secrets through a rotation, sealed."""

from __future__ import annotations

import pytest

from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint, Events, SigningSecrets
from otari_batch_grpc.server.domain.sealing import Sealer, Unsealable
from otari_batch_grpc.server.webhooks.signing import new_secret
from otari_batch_grpc.v1 import batch_pb2

S = batch_pb2
SEALER = Sealer({1: b"k" * 32})


def batch(status: int, **metadata: str) -> batch_pb2.Batch:
    return batch_pb2.Batch(id="batch_1", status=status, metadata=metadata)  # type: ignore[arg-type]


def test_an_endpoint_of_terminal_events_wants_the_moves_to_an_end() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.TERMINAL)
    assert endpoint.wants(batch(S.BATCH_STATUS_FINALIZING), batch(S.BATCH_STATUS_COMPLETED)) == "batch.completed"
    assert endpoint.wants(None, batch(S.BATCH_STATUS_EXPIRED)) == "batch.expired"  # first seen, already ended
    assert endpoint.wants(batch(S.BATCH_STATUS_VALIDATING), batch(S.BATCH_STATUS_IN_PROGRESS)) is None
    assert endpoint.wants(batch(S.BATCH_STATUS_CANCELLED), batch(S.BATCH_STATUS_CANCELLED)) is None  # no move


def test_an_endpoint_of_every_change_wants_each_move_of_the_status_and_no_change_of_counts() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.ALL)
    assert endpoint.wants(None, batch(S.BATCH_STATUS_VALIDATING)) == "batch.validating"
    assert endpoint.wants(batch(S.BATCH_STATUS_VALIDATING), batch(S.BATCH_STATUS_IN_PROGRESS)) == "batch.in_progress"
    counted = batch(S.BATCH_STATUS_IN_PROGRESS)
    counted.request_counts.completed = 5
    assert endpoint.wants(batch(S.BATCH_STATUS_IN_PROGRESS), counted) is None


def test_a_filter_keeps_the_batches_with_each_of_its_pairs_and_a_disabled_endpoint_wants_nothing() -> None:
    endpoint = Endpoint("wh_1", "o", "https://h.example/", Events.ALL, {"team": "a", "env": "prod"})
    assert endpoint.wants(None, batch(S.BATCH_STATUS_COMPLETED, team="a", env="prod", x="y")) == "batch.completed"
    assert endpoint.wants(None, batch(S.BATCH_STATUS_COMPLETED, team="a")) is None
    assert endpoint.wants(None, batch(S.BATCH_STATUS_COMPLETED, team="b", env="prod")) is None
    disabled = Endpoint("wh_1", "o", "https://h.example/", Events.ALL, enabled=False)
    assert disabled.wants(None, batch(S.BATCH_STATUS_COMPLETED)) is None


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
