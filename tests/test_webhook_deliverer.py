"""The outbox sent (#32): events the store put in the outbox with their revisions, signed and POSTed to a receiver on
loopback (allowed here, as for development), verified with the Standard Webhooks library; retries, 410, the window.
Endpoints are kept straight in the store: the contract does not register them yet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from google.protobuf import json_format
from standardwebhooks.webhooks import Webhook

from otari_batch_grpc.server.domain.notifications.deliverer import Deliverer, DelivererPolicy
from otari_batch_grpc.server.domain.notifications.endpoints import Endpoint, Events, SigningSecrets
from otari_batch_grpc.server.domain.notifications.outbox import events_for
from otari_batch_grpc.server.domain.sealing import Sealer
from otari_batch_grpc.server.domain.tokens import CallerTokens, TokenKeys
from otari_batch_grpc.server.store import EndpointRecord, SeenBatch, Store, open_store
from otari_batch_grpc.server.webhooks.schedule import Backoff
from otari_batch_grpc.server.webhooks.sender import Sender, SenderLimits
from otari_batch_grpc.server.webhooks.signing import new_secret
from otari_batch_grpc.server.webhooks.targets import TargetPolicy
from otari_batch_grpc.v1 import batch_pb2, watch_pb2
from tests.conftest import Receiver

SEALER = Sealer({1: b"k" * 32})
TOKENS = TokenKeys({1: b"t" * 32})
SECRET = new_secret()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "s.db")
    try:
        yield opened
    finally:
        await opened.close()


async def _registered(store: Store, url: str, events: Events = Events.ALL) -> EndpointRecord:
    endpoint = Endpoint("wh_1", "o", url, events)
    secrets = SigningSecrets(SECRET).sealed(SEALER, endpoint)
    record = EndpointRecord("wh_1", "o", url, events.value, "{}", "", secrets, b"", True, "", 1.0, 1.0)
    assert await store.add_endpoint(record, limit=5)
    return record


async def _saved(store: Store, status: batch_pb2.BatchStatus.ValueType) -> None:
    batch = batch_pb2.Batch(id="batch_1", status=status, provider="openai")
    name = batch_pb2.BatchStatus.Name(status).removeprefix("BATCH_STATUS_").lower()
    seen = SeenBatch("batch_1", "openai", name, name == "completed", batch.SerializeToString(deterministic=True))
    await store.enter([seen], [], owner="o", keep=5, observed_at=time.time(), notify=events_for)


def _deliverer(
    store: Store, backoff: Backoff | None = None, *, holder: str = "replica-a", policy: DelivererPolicy | None = None
) -> Deliverer:
    return Deliverer(
        store=store,
        sender=Sender(TargetPolicy(loopback=True), limits=SenderLimits(read_seconds=2.0)),
        sealer=SEALER,
        tokens_for=lambda owner: CallerTokens(TOKENS, owner),
        backoff=backoff or Backoff(first=5.0, cap=60.0, window=3600.0),
        holder=holder,
        policy=policy,
    )


async def test_a_completed_batch_reaches_its_endpoint_signed_with_its_resume_token(
    store: Store, receiver: Receiver
) -> None:
    await _registered(store, receiver.url, Events.TERMINAL)
    await _saved(store, batch_pb2.BATCH_STATUS_IN_PROGRESS)  # not wanted: terminal ones only
    await _saved(store, batch_pb2.BATCH_STATUS_COMPLETED)
    assert await _deliverer(store).once() == 1
    ((path, headers, body),) = receiver.got
    document = Webhook(SECRET).verify(body, headers)  # the spec's own library verifies it
    assert path == "/hooks/otari" and document["type"] == "batch.completed"
    event = json_format.ParseDict(document["data"], watch_pb2.BatchEvent())
    assert event.batch.status == batch_pb2.BATCH_STATUS_COMPLETED
    assert CallerTokens(TOKENS, "o").resume_rev(event.resume_token, "batch_1") == 2  # resume a watch from it
    (delivered,) = await store.deliveries("wh_1", 10)
    assert headers["webhook-id"] == f"msg_{delivered.id}"
    assert (delivered.state, delivered.attempts, delivered.last_status) == ("delivered", 1, 204)
    assert await _deliverer(store).once() == 0  # nothing more is due


async def test_a_failure_is_tried_again_as_the_receiver_asks_and_dropped_past_the_window(
    store: Store, receiver: Receiver
) -> None:
    async def busy(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, headers={"Retry-After": "120"})

    receiver.answer = busy
    await _registered(store, receiver.url)
    await _saved(store, batch_pb2.BATCH_STATUS_VALIDATING)
    started = time.time()
    await _deliverer(store).once()
    (pending,) = await store.deliveries("wh_1", 10)
    assert (pending.state, pending.attempts, pending.last_status) == ("pending", 1, 503)
    assert started + 119 <= pending.next_at <= time.time() + 121  # Retry-After, honoured
    assert await _deliverer(store).once() == 0  # not due before then
    short = Backoff(first=1.0, cap=1.0, window=1.0)  # its Retry-After (120 s) would be past the window
    assert await _deliverer(store, short).once(now=pending.next_at) == 1
    (dropped,) = await store.deliveries("wh_1", 10)
    assert dropped.state == "dropped" and "not delivered within" in dropped.last_error and len(receiver.got) == 2


async def test_a_410_disables_the_endpoint_and_its_event_waits_for_it(store: Store, receiver: Receiver) -> None:
    async def gone(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=410)

    receiver.answer = gone
    await _registered(store, receiver.url)
    await _saved(store, batch_pb2.BATCH_STATUS_VALIDATING)
    await _deliverer(store).once()
    endpoint = await store.endpoint("wh_1")
    assert endpoint is not None and not endpoint.enabled and "410" in endpoint.disabled_reason
    (waiting,) = await store.deliveries("wh_1", 10)
    assert (waiting.state, waiting.last_status) == ("pending", 410)
    assert await _deliverer(store).once(now=time.time() + 3600) == 0  # disabled: not sent
    receiver.answer = Receiver().answer  # the receiver is back; the endpoint enabled again
    assert await store.enable_endpoint("wh_1", now=time.time())
    assert await _deliverer(store).once() == 1
    assert [d.state for d in await store.deliveries("wh_1", 10)] == ["delivered"]
    assert json.loads(receiver.got[-1][2])["type"] == "batch.validating"


async def test_an_owner_whose_key_was_refused_since_is_told_no_more(store: Store, receiver: Receiver) -> None:
    await _registered(store, receiver.url)
    await _saved(store, batch_pb2.BATCH_STATUS_VALIDATING)
    await store.refuse_key("o", time.time())
    assert await _deliverer(store).once() == 1
    (dropped,) = await store.deliveries("wh_1", 10)
    assert (dropped.state, dropped.last_error) == ("dropped", "its owner may no longer see the batch")
    assert receiver.got == []


async def test_a_replica_dying_mid_try_loses_nothing_another_sends_it_once_the_lease_ends(
    postgres_url: str, receiver: Receiver
) -> None:
    """Two replicas on one PostgreSQL: A takes the event and dies while its receiver is answering (its try never
    finishes: as a kill -9 leaves it); B takes it over once A's lease ends and delivers it, with the same
    webhook-id, so the receiver can tell the repeat."""
    first, second = await open_store(postgres_url), await open_store(postgres_url)
    try:
        record = await _registered(first, receiver.url, Events.TERMINAL)
        await _saved(first, batch_pb2.BATCH_STATUS_COMPLETED)
        hanging = asyncio.Event()

        async def hang(_request: web.Request) -> web.StreamResponse:
            hanging.set()
            await asyncio.sleep(2)  # (past A's death: its answer goes nowhere)
            return web.Response(status=204)

        receiver.answer = hang
        dying = asyncio.create_task(_deliverer(first, holder="replica-a").once())
        await asyncio.wait_for(hanging.wait(), 10)
        dying.cancel()  # A is gone mid-try: nothing recorded
        with contextlib.suppress(asyncio.CancelledError):
            await dying
        taker = _deliverer(second, holder="replica-b")
        assert await taker.once() == 0  # A's lease holds it meanwhile
        receiver.answer = _no_content
        assert await taker.once(now=time.time() + DelivererPolicy().lease_seconds + 1) == 1
        (delivery,) = await second.deliveries(record.id, 10)
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 204)
        ids = [headers["webhook-id"] for _, headers, _ in receiver.got]
        assert ids == [f"msg_{delivery.id}"] * 2  # the same event twice: at least once, and recognisably
    finally:
        await first.close()
        await second.close()


async def _no_content(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def test_an_owner_with_its_tries_under_way_gives_its_next_events_back_for_others(
    store: Store, receiver: Receiver
) -> None:
    """Its owner at `per_owner` tries here: an event of another of its endpoints is given back untried, due a
    second later (others' events come first meanwhile), and sent then."""
    await _registered(store, receiver.url, Events.TERMINAL)
    second = Endpoint("wh_2", "o", receiver.url, Events.TERMINAL)
    record = EndpointRecord("wh_2", "o", receiver.url, "terminal", "{}", "",
                            SigningSecrets(SECRET).sealed(SEALER, second), b"", True, "", 1.0, 1.0)  # fmt: skip
    assert await store.add_endpoint(record, limit=5)
    await _saved(store, batch_pb2.BATCH_STATUS_COMPLETED)  # one event for each of the owner's two endpoints
    deliverer = _deliverer(store, policy=DelivererPolicy(per_owner=1))
    now = time.time()
    assert await deliverer.once(now) == 1 and len(receiver.got) == 1
    (waiting,) = [d for d in await store.deliveries("wh_1", 10) + await store.deliveries("wh_2", 10)
                  if d.state == "pending"]  # fmt: skip
    assert waiting.attempts == 0 and waiting.next_at >= now + 1.0
    assert await deliverer.once(now) == 0  # not due yet
    assert await deliverer.once(now + 1.5) == 1 and len(receiver.got) == 2
