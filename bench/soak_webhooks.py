"""The soak's webhooks (#32): a receiver of its own that is sometimes slow, sometimes answers 5xx and sometimes drops
the connection (a seeded schedule), two endpoints registered before the load (Alice's, of every status move, and
Bob's, whose key makes no batch), and what is judged at the end:

- every terminal status of a batch Alice's clients made reached Alice's endpoint (a 2xx answered) at least once;
- per batch, events were first received in the order of the changes they tell of (their outbox ids);
- every request received carried a valid signature (checked as it came, with the endpoint's secret);
- nothing reached an endpoint for a batch its owner was not shown (Bob's gets none);
- no endpoint had more requests under way at once than WEBHOOK_DELIVERIES_PER_ENDPOINT, from all the replicas
  together (the slow mode holds each for seconds, so a fleet over the cap would show).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import grpc
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.v1 import webhook_service_pb2 as wh
from otari_batch_grpc.v1 import webhook_service_pb2_grpc

PER_ENDPOINT = 4  # requests under way at once to one endpoint, from the whole fleet (the service's default)
SETTINGS = {
    "WEBHOOK_ALLOW": "loopback",
    "WEBHOOK_DELIVERIES_PER_ENDPOINT": str(PER_ENDPOINT),
    "WEBHOOK_BACKOFF_FIRST": "0.5",
    "WEBHOOK_BACKOFF_CAP": "4",
}
CALLERS = {"alice": "sim-key-alice", "bob": "sim-key-bob"}
MODES = ("ok", "ok", "ok", "slow", "5xx", "drop")
SLOW_SECONDS = 3.0
DRAIN_SECONDS = 120.0  # after the load, for what is still pending (a kill -9 mid-try waits for its lease, 60 s)


class Violations(Protocol):
    def violation(self, what: str, expected: str, seen: str) -> None: ...


@dataclass
class Got:
    endpoint: str
    webhook_id: str
    batch_id: str
    type: str
    at: float
    answered: int
    valid: bool


@dataclass
class SoakReceiver:
    seed: int
    got: list[Got] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # endpoint name -> its signing secret
    mode: str = "ok"
    under_way: Counter[str] = field(default_factory=Counter)  # requests being answered now, by endpoint
    most_at_once: Counter[str] = field(default_factory=Counter)
    modes: list[tuple[float, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _chaos: asyncio.Task[None] | None = None
    port: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def misbehave(self, until: float) -> None:
        """Change mode every few seconds, from a seeded schedule, until `until` (epoch seconds); then answer well."""

        async def chaos() -> None:
            rng = random.Random(self.seed)
            while time.time() < until:
                self.mode = rng.choice(MODES)
                self.modes.append((time.time(), self.mode))
                await asyncio.sleep(rng.uniform(2.0, 8.0))
            self.mode = "ok"

        self._chaos = asyncio.create_task(chaos())

    async def close(self) -> None:
        if self._chaos is not None:
            self._chaos.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = await request.read()
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            event = Webhook(self.secrets[name]).verify(body, headers)
            valid = True
        except (WebhookVerificationError, KeyError):
            event, valid = json.loads(body or b"{}"), False
        mode = self.mode
        answered = {"ok": 204, "slow": 204, "5xx": 503, "drop": 0}[mode]
        batch = event.get("data", {}).get("batch", {})
        got = Got(
            name,
            headers.get("webhook-id", ""),
            batch.get("id", ""),
            event.get("type", ""),
            time.time(),
            answered,
            valid,
        )
        self.got.append(got)
        self.under_way[name] += 1
        self.most_at_once[name] = max(self.most_at_once[name], self.under_way[name])
        try:
            if mode == "slow":
                await asyncio.sleep(SLOW_SECONDS)
            if mode == "drop":
                assert request.transport is not None
                request.transport.close()  # no answer: the connection is gone
            return web.Response(status=answered or 503)
        finally:
            self.under_way[name] -= 1

    async def register(self, target: str) -> None:
        """Alice's endpoint (every move) and Bob's (terminal ones), on `target` (any replica)."""
        async with grpc.aio.insecure_channel(target) as channel:
            hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
            for name, events in (("alice", wh.WEBHOOK_EVENTS_ALL), ("bob", wh.WEBHOOK_EVENTS_TERMINAL)):
                metadata = (("authorization", f"Bearer {CALLERS[name]}"),)
                made = await hooks.CreateWebhookEndpoint(
                    wh.CreateWebhookEndpointRequest(url=self.url(name), events=events), metadata=metadata
                )
                self.secrets[name] = made.signing_secret


async def drain(db_url: str, deadline: float) -> int:
    """Wait (until `deadline`) for the outbox to hold nothing pending; how many events still are."""
    conn = await asyncpg.connect(db_url, server_settings={"search_path": POSTGRES_SCHEMA})
    try:
        while True:
            pending = int(await conn.fetchval("SELECT count(*) FROM webhook_outbox WHERE state = 'pending'"))
            if not pending or time.time() > deadline:
                return pending
            await asyncio.sleep(1.0)
    finally:
        await conn.close()


async def check(report: Violations, receiver: SoakReceiver, created: set[str], db_url: str) -> dict[str, Any]:
    """The invariants above; returns the figures."""
    conn = await asyncpg.connect(db_url, server_settings={"search_path": POSTGRES_SCHEMA})
    try:
        terminal = {
            row["id"]: row["status"]
            for row in await conn.fetch("SELECT id, status FROM batches WHERE terminal AND id = ANY($1)", list(created))
        }
        owners = {
            row["url"].rsplit("/", 1)[1]: row["owner"]
            for row in await conn.fetch("SELECT url, owner FROM webhook_endpoints")
        }
        shown: dict[str, set[str]] = defaultdict(set)
        for row in await conn.fetch("SELECT batch_id, owner FROM access"):
            shown[row["owner"]].add(row["batch_id"])
        rows = await conn.fetch("SELECT state, count(*) AS n FROM webhook_outbox GROUP BY state")
        states = {str(row["state"]): int(row["n"]) for row in rows}
    finally:
        await conn.close()
    delivered: dict[str, set[str]] = defaultdict(set)
    first: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    seen_ids: set[tuple[str, str]] = set()
    for got in sorted(receiver.got, key=lambda g: g.at):
        if not got.valid:
            report.violation(f"webhook {got.webhook_id} to {got.endpoint}", "a valid signature", "none valid")
        if 200 <= got.answered < 300:
            delivered[got.batch_id].add(f"{got.endpoint}:{got.type}")
        if (got.endpoint, got.webhook_id) not in seen_ids:
            seen_ids.add((got.endpoint, got.webhook_id))
            first[(got.endpoint, got.batch_id)].append((got.at, int(got.webhook_id.removeprefix("msg_") or 0)))
        owner = owners.get(got.endpoint)
        if got.batch_id and (owner is None or got.batch_id not in shown.get(owner, set())):
            report.violation(
                f"webhook {got.webhook_id} of {got.batch_id}", f"only {got.endpoint}'s batches", "another's"
            )
    for batch_id, status in terminal.items():
        if f"alice:batch.{status}" not in delivered.get(batch_id, set()):
            report.violation(
                f"webhooks of {batch_id}",
                f"batch.{status} delivered to alice",
                f"{sorted(delivered.get(batch_id, ()))}",
            )
    for (endpoint, batch_id), arrivals in first.items():
        ids = [message for _, message in arrivals]
        if ids != sorted(ids):
            report.violation(f"webhooks of {batch_id} to {endpoint}", "in the order of the changes", f"{ids}")
    for endpoint, most in receiver.most_at_once.items():
        if most > PER_ENDPOINT:
            report.violation(f"requests to {endpoint}", f"at most {PER_ENDPOINT} under way at once", f"{most}")
    requests = len(receiver.got)
    unique = len(seen_ids)
    return {
        "requests received": requests,
        "events": unique,
        "repeats": requests - unique,
        "terminal batches of alice's": len(terminal),
        "outbox": states,
        "receiver modes": dict(Counter(mode for _, mode in receiver.modes)),
        "most under way at once": dict(receiver.most_at_once),
    }
