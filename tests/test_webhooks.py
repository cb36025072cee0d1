"""Webhooks through the contract (#32): endpoints registered, managed and owned over WebhookService; a batch's
changes delivered signed (verified with the Standard Webhooks library) with no caller connected; a refused key
disables its endpoints visibly. A real server, the simulator and a receiver on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from aiohttp import web
from google.protobuf import duration_pb2, field_mask_pb2
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from otari_batch_grpc.client import BatchClient, InvalidArgumentError, NotFoundError
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.sync_client import SyncBatchClient
from otari_batch_grpc.v1 import webhook_service_pb2 as wh
from otari_batch_grpc.v1 import webhook_service_pb2_grpc
from tests.conftest import ALICE, FAST, Receiver, Sim, connect, create_request, details, eventually, make_settings
from tests.test_cli import Cli

if TYPE_CHECKING:
    from otari_batch_grpc.v1.webhook_service_pb2_grpc import WebhookServiceAsyncStub

BOB = (("authorization", "Bearer sim-key-bob"),)
HOOKS = {**FAST, "webhook_allow": "loopback", "webhook_backoff_first": 0.2, "webhook_backoff_cap": 0.5}


@pytest.fixture
async def hooked(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    async with BatchServer(make_settings(sim.url, tmp_path, **HOOKS), gateway_url=sim.url) as running:
        yield running


@pytest.fixture
async def hooks(hooked: BatchServer) -> AsyncIterator[WebhookServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hooked.port}") as channel:
        yield webhook_service_pb2_grpc.WebhookServiceStub(channel)


async def _register(
    hooks: WebhookServiceAsyncStub, url: str, *, metadata: Any = ALICE, events: int = wh.WEBHOOK_EVENTS_TERMINAL
) -> wh.CreateWebhookEndpointResponse:
    request = wh.CreateWebhookEndpointRequest(url=url, events=events, description="tests")  # type: ignore[arg-type]
    return await hooks.CreateWebhookEndpoint(request, metadata=metadata)


async def _create_batch(port: int, metadata: Any = ALICE) -> str:
    async with connect(port) as stub:
        return (await stub.CreateBatch(create_request(2), metadata=metadata)).batch.id


def _verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every body the receiver got, each verified with `secret` (WebhookVerificationError for one that is not)."""
    out = []
    for _path, headers, data in receiver.got:
        lowered = {key.lower(): value for key, value in headers.items()}
        out.append(Webhook(secret).verify(data, lowered))
    return out


async def test_a_registered_endpoint_gets_a_signed_batch_completed_with_no_caller_connected(
    hooked: BatchServer, hooks: WebhookServiceAsyncStub, sim: Sim, receiver: Receiver
) -> None:
    made = await _register(hooks, receiver.url)
    assert made.signing_secret.startswith("whsec_") and made.endpoint.enabled
    assert made.endpoint.id.startswith("whe_") and made.endpoint.url == receiver.url
    batch_id = await _create_batch(hooked.port)  # its channel closed: no caller connected from here on
    await sim.force(batch_id, "completed")

    await eventually(lambda: _got(receiver), within=10.0)
    bodies = _verified(receiver, made.signing_secret)
    assert [b["type"] for b in bodies] == ["batch.completed"]
    data = bodies[0]["data"]
    assert data["batch"]["id"] == batch_id and data["batch"]["status"] == "BATCH_STATUS_COMPLETED"
    assert data["resumeToken"]  # a WatchBatch resumes after it
    listed = await hooks.ListWebhookDeliveries(
        wh.ListWebhookDeliveriesRequest(endpoint_id=made.endpoint.id), metadata=ALICE
    )
    [delivery] = listed.deliveries
    assert delivery.state == wh.WEBHOOK_DELIVERY_STATE_DELIVERED and delivery.type == "batch.completed"
    assert delivery.batch_id == batch_id and delivery.attempts == 1 and delivery.last_status_code == 204
    assert delivery.webhook_id == receiver.got[0][1]["webhook-id"]
    # Forged or altered, it does not verify.
    with pytest.raises(WebhookVerificationError):
        _verified(receiver, "whsec_" + "A" * 43 + "=")


async def _got(receiver: Receiver, count: int = 1) -> bool:
    return len(receiver.got) >= count


async def test_every_move_is_sent_in_order_to_an_endpoint_of_all_events(
    hooked: BatchServer, hooks: WebhookServiceAsyncStub, sim: Sim, receiver: Receiver
) -> None:
    made = await _register(hooks, receiver.url, events=wh.WEBHOOK_EVENTS_ALL)
    await sim.set_stage_seconds(0.4)
    await _create_batch(hooked.port)

    async def completed() -> bool:
        return any(b"batch.completed" in data for _, _, data in receiver.got)

    await eventually(completed, within=10.0)
    types = [b["type"] for b in _verified(receiver, made.signing_secret)]
    order = ["batch.validating", "batch.in_progress", "batch.finalizing", "batch.completed"]
    # In the order of the moves, each once; one still pending when the next came may be collapsed into it.
    assert types == sorted(set(types), key=order.index) and types[-1] == "batch.completed", types
    assert len(types) >= 3, types


async def test_an_endpoint_is_its_callers_alone(
    hooked: BatchServer, hooks: WebhookServiceAsyncStub, sim: Sim, receiver: Receiver
) -> None:
    alices = await _register(hooks, receiver.url)
    endpoint_id = alices.endpoint.id
    for call in (
        hooks.GetWebhookEndpoint(wh.GetWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=BOB),
        hooks.DeleteWebhookEndpoint(wh.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=BOB),
        hooks.SendTestWebhook(wh.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=BOB),
        hooks.RotateWebhookSecret(wh.RotateWebhookSecretRequest(endpoint_id=endpoint_id), metadata=BOB),
        hooks.ListWebhookDeliveries(wh.ListWebhookDeliveriesRequest(endpoint_id=endpoint_id), metadata=BOB),
        hooks.UpdateWebhookEndpoint(
            wh.UpdateWebhookEndpointRequest(
                endpoint=wh.WebhookEndpoint(id=endpoint_id, enabled=False),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            ),
            metadata=BOB,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND, refused.value.details()
        info = details(refused.value).info
        assert info is not None and info.reason == "WEBHOOK_ENDPOINT_NOT_FOUND"
    bobs = (await hooks.ListWebhookEndpoints(wh.ListWebhookEndpointsRequest(), metadata=BOB)).endpoints
    assert list(bobs) == []
    # Bob's batch is no news for Alice's endpoint.
    batch_id = await _create_batch(hooked.port, metadata=BOB)
    await sim.force(batch_id, "completed")
    mine = await _create_batch(hooked.port)
    await sim.force(mine, "completed")
    await eventually(lambda: _got(receiver), within=10.0)
    assert [b["data"]["batch"]["id"] for b in _verified(receiver, alices.signing_secret)] == [mine]
    alive = await hooks.GetWebhookEndpoint(wh.GetWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=ALICE)
    assert alive.endpoint.enabled


async def test_bad_endpoints_are_refused_with_the_field_named(hooks: WebhookServiceAsyncStub) -> None:
    cases = [
        (wh.CreateWebhookEndpointRequest(url="", events=wh.WEBHOOK_EVENTS_ALL), "url"),
        (wh.CreateWebhookEndpointRequest(url="http://example.com/h", events=wh.WEBHOOK_EVENTS_ALL), "url"),
        (wh.CreateWebhookEndpointRequest(url="https://10.1.2.3/h", events=wh.WEBHOOK_EVENTS_ALL), "url"),
        (wh.CreateWebhookEndpointRequest(url="https://[::ffff:192.168.0.1]/", events=wh.WEBHOOK_EVENTS_ALL), "url"),
        (wh.CreateWebhookEndpointRequest(url="https://100.64.0.1/", events=wh.WEBHOOK_EVENTS_ALL), "url"),
        (wh.CreateWebhookEndpointRequest(url="https://169.254.169.254/", events=wh.WEBHOOK_EVENTS_ALL), "url"),
        (wh.CreateWebhookEndpointRequest(url="https://example.com/h"), "events"),
        (
            wh.CreateWebhookEndpointRequest(
                url="https://example.com/h", events=wh.WEBHOOK_EVENTS_ALL, metadata_filter={"k" * 65: "v"}
            ),
            f"metadata_filter[{'k' * 65}]",
        ),
        (
            wh.CreateWebhookEndpointRequest(
                url="https://example.com/h", events=wh.WEBHOOK_EVENTS_ALL, description="x" * 513
            ),
            "description",
        ),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await hooks.CreateWebhookEndpoint(request, metadata=ALICE)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert details(refused.value).fields == [field], (request, refused.value.details())
    update = wh.UpdateWebhookEndpointRequest(
        endpoint=wh.WebhookEndpoint(id="whe_x"), update_mask=field_mask_pb2.FieldMask(paths=["secret"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hooks.UpdateWebhookEndpoint(update, metadata=ALICE)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value).fields == ["update_mask"]


async def test_a_caller_has_so_many_endpoints_and_no_more(sim: Sim, tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(sim.url, tmp_path, **HOOKS, limit_endpoints_per_caller=2)
    async with (
        BatchServer(settings, gateway_url=sim.url) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        await _register(hooks, receiver.url)
        await _register(hooks, receiver.url)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _register(hooks, receiver.url)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = details(refused.value).info
        assert info is not None and info.metadata["limit"] == "endpoints_per_caller"
        await _register(hooks, receiver.url, metadata=BOB)  # another caller's own count


async def test_a_stopped_server_closes_the_connections_its_deliveries_kept(
    sim: Sim, tmp_path: Path, receiver: Receiver
) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path, **HOOKS), gateway_url=sim.url) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        made = await _register(hooks, receiver.url)
        tried = await hooks.SendTestWebhook(wh.SendTestWebhookRequest(endpoint_id=made.endpoint.id), metadata=ALICE)
        assert tried.delivered and receiver.connections() == 1  # kept alive for the next delivery

    async def closed() -> bool:
        return receiver.connections() == 0

    await eventually(closed)


async def test_a_test_event_and_a_rotation_both_secrets_signing(
    hooks: WebhookServiceAsyncStub, receiver: Receiver
) -> None:
    made = await _register(hooks, receiver.url)
    endpoint_id = made.endpoint.id
    tried = await hooks.SendTestWebhook(wh.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ALICE)
    assert tried.delivered and tried.status_code == 204 and not tried.error
    [first] = _verified(receiver, made.signing_secret)
    assert first == {"type": "webhook.test", "timestamp": first["timestamp"], "data": {"endpointId": endpoint_id}}

    rotated = await hooks.RotateWebhookSecret(
        wh.RotateWebhookSecretRequest(endpoint_id=endpoint_id, overlap=duration_pb2.Duration(seconds=3600)),
        metadata=ALICE,
    )
    assert rotated.signing_secret != made.signing_secret
    assert rotated.endpoint.HasField("previous_secret_expire_time")
    receiver.got.clear()
    await hooks.SendTestWebhook(wh.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ALICE)
    assert _verified(receiver, made.signing_secret) == _verified(receiver, rotated.signing_secret)
    assert len(receiver.got[0][1]["webhook-signature"].split()) == 2

    ended = await hooks.RotateWebhookSecret(
        wh.RotateWebhookSecretRequest(endpoint_id=endpoint_id, overlap=duration_pb2.Duration(seconds=0)),
        metadata=ALICE,
    )
    receiver.got.clear()
    await hooks.SendTestWebhook(wh.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ALICE)
    _verified(receiver, ended.signing_secret)
    with pytest.raises(WebhookVerificationError):
        _verified(receiver, rotated.signing_secret)

    async def gone(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503)

    receiver.answer = gone
    failed = await hooks.SendTestWebhook(wh.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ALICE)
    assert not failed.delivered and failed.status_code == 503 and "503" in failed.error


async def test_a_disabled_endpoint_keeps_its_events_until_it_is_enabled(
    hooked: BatchServer, hooks: WebhookServiceAsyncStub, sim: Sim, receiver: Receiver
) -> None:
    made = await _register(hooks, receiver.url)
    mask = field_mask_pb2.FieldMask(paths=["enabled", "description"])
    off = await hooks.UpdateWebhookEndpoint(
        wh.UpdateWebhookEndpointRequest(
            endpoint=wh.WebhookEndpoint(id=made.endpoint.id, enabled=False, description="paused"), update_mask=mask
        ),
        metadata=ALICE,
    )
    assert not off.endpoint.enabled and off.endpoint.description == "paused"
    assert off.endpoint.disabled_reason == "disabled by its owner"
    batch_id = await _create_batch(hooked.port)
    await sim.force(batch_id, "completed")

    async def pending() -> bool:
        listed = await hooks.ListWebhookDeliveries(
            wh.ListWebhookDeliveriesRequest(endpoint_id=made.endpoint.id), metadata=ALICE
        )
        return [d.state for d in listed.deliveries] == [wh.WEBHOOK_DELIVERY_STATE_PENDING]

    await eventually(pending, within=10.0)
    assert receiver.got == []
    await hooks.UpdateWebhookEndpoint(
        wh.UpdateWebhookEndpointRequest(
            endpoint=wh.WebhookEndpoint(id=made.endpoint.id, enabled=True),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        metadata=ALICE,
    )
    await eventually(lambda: _got(receiver), within=10.0)
    assert [b["data"]["batch"]["id"] for b in _verified(receiver, made.signing_secret)] == [batch_id]


async def test_a_refused_key_disables_its_endpoints_and_says_why(
    hooked: BatchServer, hooks: WebhookServiceAsyncStub, sim: Sim, receiver: Receiver
) -> None:
    key_id, key = await sim.new_key("carol")
    carol = (("authorization", f"Bearer {key}"),)
    made = await _register(hooks, receiver.url, metadata=carol)
    await _create_batch(hooked.port, metadata=carol)
    await sim.set_key_active(key_id, False)

    async def disabled() -> bool:
        kept = await hooked.store.endpoint(made.endpoint.id)
        return kept is not None and not kept.enabled and "401" in kept.disabled_reason

    await eventually(disabled, within=10.0)
    kept = await hooked.store.endpoint(made.endpoint.id)
    assert kept is not None and kept.sealed_key == b""  # the key delegated is forgotten
    # The refused key sees nothing of its endpoints any more (as of its batches).
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hooks.GetWebhookEndpoint(wh.GetWebhookEndpointRequest(endpoint_id=made.endpoint.id), metadata=carol)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert receiver.got == []


async def test_a_key_the_gateway_refuses_registers_nothing(hooks: WebhookServiceAsyncStub, receiver: Receiver) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _register(hooks, receiver.url, metadata=(("authorization", "Bearer no-such-key"),))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_python_clients_manage_endpoints(hooked: BatchServer, receiver: Receiver) -> None:
    target = f"127.0.0.1:{hooked.port}"
    async with BatchClient(target, api_key="sim-key-alice") as client:
        endpoint, secret = await client.webhooks.create(receiver.url, events="all", metadata_filter={"team": "a"})
        assert endpoint.events == wh.WEBHOOK_EVENTS_ALL and dict(endpoint.metadata_filter) == {"team": "a"}
        tried = await client.webhooks.send_test(endpoint.id)
        assert tried.delivered and _verified(receiver, secret)[0]["type"] == "webhook.test"
        changed = await client.webhooks.update(endpoint.id, enabled=False, description="later")
        assert (changed.enabled, changed.description, changed.url) == (False, "later", receiver.url)
        _, rotated = await client.webhooks.rotate_secret(endpoint.id, overlap_seconds=0)
        assert rotated != secret
        with pytest.raises(InvalidArgumentError) as refused:
            await client.webhooks.update(endpoint.id, url="http://example.com/")
        assert refused.value.field_violations[0].field == "url"

    def synchronously() -> None:
        with SyncBatchClient(target, api_key="sim-key-alice") as client:
            [listed] = client.webhooks.list()
            assert listed.id == endpoint.id and not listed.enabled
            assert client.webhooks.deliveries(endpoint.id) == []
            client.webhooks.delete(endpoint.id)
            with pytest.raises(NotFoundError):
                client.webhooks.get(endpoint.id)

    await asyncio.to_thread(synchronously)


@pytest.mark.subprocess
async def test_the_command_line_manages_endpoints(hooked: BatchServer, receiver: Receiver, tmp_path: Path) -> None:
    cli = Cli(f"127.0.0.1:{hooked.port}", tmp_path)
    made = await cli.run("webhooks", "create", receiver.url, "--events", "all", "--filter", "team=a", "--json")
    assert made.code == 0, made.err
    endpoint = json.loads(made.out)
    assert endpoint["events"] == "WEBHOOK_EVENTS_ALL" and endpoint["metadataFilter"] == {"team": "a"}
    secret = made.err.split("shown only now): ")[1].strip()
    tested = await cli.run("webhooks", "test", endpoint["id"])
    assert tested.code == 0 and " 204" in tested.out, tested
    assert _verified(receiver, secret)[0]["data"] == {"endpointId": endpoint["id"]}
    listed = await cli.run("webhooks", "list")
    assert listed.out.split()[:3] == [endpoint["id"], "all", "enabled"], listed.out
    paused = await cli.run("webhooks", "update", endpoint["id"], "--disable")
    assert "disabled (disabled by its owner)" in paused.out
    deleted = await cli.run("webhooks", "delete", endpoint["id"])
    assert deleted.code == 0
    missing = await cli.run("webhooks", "get", endpoint["id"])
    assert missing.code == 3 and "no webhook endpoint" in missing.err, missing


async def test_test_events_go_two_of_a_callers_at_a_time_within_the_calls_deadline(
    hooks: WebhookServiceAsyncStub, receiver: Receiver
) -> None:
    made = await _register(hooks, receiver.url)
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 10)
        return web.Response(status=204)

    receiver.answer = slow
    request = wh.SendTestWebhookRequest(endpoint_id=made.endpoint.id)
    first = asyncio.ensure_future(hooks.SendTestWebhook(request, metadata=ALICE))
    second = asyncio.ensure_future(hooks.SendTestWebhook(request, metadata=ALICE))
    await eventually(lambda: _got(receiver, 2), within=5.0)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hooks.SendTestWebhook(request, metadata=ALICE)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = details(refused.value).info
    assert info is not None and info.metadata["limit"] == "webhook_tests_per_caller"
    release.set()
    assert all(answer.delivered for answer in await asyncio.gather(first, second))
    release.clear()
    cut = await hooks.SendTestWebhook(request, metadata=ALICE, timeout=1.0)  # answered before the deadline
    assert not cut.delivered and "deadline" in cut.error
    release.set()
