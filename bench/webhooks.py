"""#32: webhooks delivered, timed at a receiver of the bench's own (plain http on loopback, WEBHOOK_ALLOW=loopback).

- fanout: 1,000 callers (keys of their own), each with an endpoint and a batch; the simulator's clock then ends
  all 1,000 batches at once. Each delivery is timed from its revision's save (the event's observedAt, stamped when the
  change is saved) to the receiver's 2xx. Targets: p99 <= 1 s; the server's CPU over the whole burst (the reads
  that find the batches ended, and the deliveries) <= 50% of a core.
- outage: 100 endpoints' events ready while the receiver is down (connection refused) for 60 s, with a short backoff
  (WEBHOOK_BACKOFF_FIRST 1 s, capped at 5 s); then it is up. Targets: every event delivered within 10 s of its
  return; repeats (one webhook-id received twice) at most 1% of the deliveries.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import grpc
import httpx
from aiohttp import web

from bench import procs
from bench.report import Runs, Sheet, at_most, percentile
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc, webhook_service_pb2_grpc
from otari_batch_grpc.v1 import webhook_service_pb2 as wh

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub
    from otari_batch_grpc.v1.webhook_service_pb2_grpc import WebhookServiceAsyncStub

MASTER = {"authorization": "Bearer sim-master-key"}
RUNS = 3


@dataclass(frozen=True)
class Sizes:
    endpoints: int
    outage_endpoints: int
    outage_seconds: float


FULL = Sizes(endpoints=1000, outage_endpoints=100, outage_seconds=60.0)
QUICK = Sizes(endpoints=200, outage_endpoints=50, outage_seconds=10.0)


@dataclass
class Receiver:
    """What came: (webhook-id, seconds from the save to the answer) of each POST."""

    got: list[tuple[str, float]] = field(default_factory=list)
    first_at: dict[str, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        now = time.time()
        saved = datetime.fromisoformat(body["data"]["observedAt"].replace("Z", "+00:00")).timestamp()
        webhook_id = request.headers["webhook-id"]
        self.got.append((webhook_id, now - saved))
        self.first_at.setdefault(webhook_id, now)
        if len(self.first_at) >= self.expected:
            self.arrived.set()
        return web.Response(status=204)


async def _listen(receiver: Receiver, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    return runner


async def _setup(srv_port: int, sim_port: int, url: str, count: int, wants: dict[str, str] | None = None) -> None:
    """`count` callers (keys of their own), each with an endpoint of terminal events and a batch."""
    item = pb.BatchRequestItem(custom_id="r0", body_json='{"messages": [{"role": "user", "content": "hi"}]}')
    create = pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=[item])
    endpoint = wh.CreateWebhookEndpointRequest(url=url, events=wh.WEBHOOK_EVENTS_TERMINAL, metadata_filter=wants)
    gate = asyncio.Semaphore(50)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}") as http,
        grpc.aio.insecure_channel(f"127.0.0.1:{srv_port}") as channel,
    ):
        hooks: WebhookServiceAsyncStub = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)

        async def one() -> None:
            async with gate:
                made = await http.post("/v1/keys", json={"user_id": "bench"}, headers=MASTER)
                key = (("authorization", f"Bearer {made.raise_for_status().json()['key']}"),)
                await hooks.CreateWebhookEndpoint(endpoint, metadata=key)
                await stub.CreateBatch(create, metadata=key)

        await asyncio.gather(*(one() for _ in range(count)))


def _server_settings(**more: str) -> dict[str, str]:
    return {
        "WEBHOOK_ALLOW": "loopback",
        "WATCH_POLL_MIN": "0.5",
        "WATCH_POLL_MAX": "1",
        **more,
    }


async def _fanout(sizes: Sizes, runs: Runs) -> None:
    receiver = Receiver(expected=sizes.endpoints)
    port = procs.free_port()
    runner = await _listen(receiver, port)
    try:
        with (
            procs.workdir() as work,
            procs.simulator(work) as sim,
            procs.server(work, sim.port, **_server_settings()) as srv,
        ):
            await _setup(srv.port, sim.port, f"http://127.0.0.1:{port}/hook", sizes.endpoints)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}") as http:
                cpu, wall = procs.cpu_seconds(srv.pid), time.monotonic()
                (await http.post("/_simulator/clock", json={"stage_seconds": 0})).raise_for_status()  # all end now
                await asyncio.wait_for(receiver.arrived.wait(), 120)
                cpu, wall = procs.cpu_seconds(srv.pid) - cpu, time.monotonic() - wall
        latencies = [seconds for _, seconds in receiver.got]
        runs.add("p99", percentile(latencies, 99) * 1000)
        runs.add("p50", percentile(latencies, 50) * 1000)
        runs.add("cpu", cpu / wall * 100)
        runs.add("cpu_per_event", cpu / sizes.endpoints * 1000)
        runs.add("burst", wall)
    finally:
        await runner.cleanup()


async def _outage(sizes: Sizes, runs: Runs) -> None:
    receiver = Receiver(expected=sizes.outage_endpoints)
    port = procs.free_port()  # nothing listens there yet: every try is refused
    settings = _server_settings(WEBHOOK_BACKOFF_FIRST="1", WEBHOOK_BACKOFF_CAP="5")
    with (
        procs.workdir() as work,
        procs.simulator(work) as sim,
        procs.server(work, sim.port, **settings) as srv,
    ):
        await _setup(srv.port, sim.port, f"http://127.0.0.1:{port}/hook", sizes.outage_endpoints)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}") as http:
            (await http.post("/_simulator/clock", json={"stage_seconds": 0})).raise_for_status()
        await asyncio.sleep(sizes.outage_seconds)
        back = time.time()
        runner = await _listen(receiver, port)
        try:
            await asyncio.wait_for(receiver.arrived.wait(), 120)
            await asyncio.sleep(2.0)  # repeats, if any, arrive meanwhile
        finally:
            await runner.cleanup()
    runs.add("recovered", max(receiver.first_at.values()) - back)
    repeats = sum(n - 1 for n in Counter(webhook_id for webhook_id, _ in receiver.got).values())
    runs.add("repeats", repeats / len(receiver.got) * 100)


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    sheet.section(
        f"Webhooks (#32): {sizes.endpoints} endpoints, their batches ending at once; a receiver down "
        f"{sizes.outage_seconds:.0f} s"
    )
    runs = Runs()
    for _ in range(RUNS):
        with runs.measuring("p99", "p50", "cpu", "burst", "cpu_per_event"):
            await _fanout(sizes, runs)
    sheet.figure(
        "webhooks.fanout.p99_saved_to_2xx",
        runs,
        "p99",
        "ms",
        at_most(1000),
        note=f"p50 {runs.shown('p50', 'ms')}; burst {runs.shown('burst', 's', 1)}",
    )
    sheet.figure(
        "webhooks.fanout.server_cpu",
        runs,
        "cpu",
        "% of a core",
        at_most(50),
        note=f"{runs.shown('cpu_per_event', 'ms', 2)} of CPU per batch: the read that finds it ended, and its delivery",
    )
    for _ in range(RUNS):
        with runs.measuring("recovered", "repeats"):
            await _outage(sizes, runs)
    sheet.figure("webhooks.outage.all_delivered_after_return", runs, "recovered", "s", at_most(10))
    sheet.figure("webhooks.outage.repeats", runs, "repeats", "%", at_most(1), show=lambda v: f"{v:.2f}")
