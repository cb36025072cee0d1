"""#9: replicas on one PostgreSQL, against the single SQLite process, in one run:

- GetBatch p50 (concurrency 1, no provider named: the store says which) on a PostgreSQL store vs a SQLite one
  (<= 1.2x);
- gateway polls per second with SUBSCRIBERS watch streams over BATCHES live batches spread over 3 replicas vs the
  same streams on 1 replica (<= 1.1x): one poll loop per batch across the fleet;
- lease takeover after kill -9 of the replica polling a batch: seconds until another one holds its lease
  (<= WATCH_LEASE_SECONDS + one poll interval).

Each run: a fresh simulator, fresh databases (a PostgreSQL database made for the run and dropped after it, at
TEST_DATABASE_URL's server), fresh server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import httpx

from bench import procs
from bench.getbatch import _latencies
from bench.report import Runs, Sheet, at_most, percentile
from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RUNS = 3
CALLS = 400
BATCHES = 30
SUBSCRIBERS = 300
POLL_SECONDS = 0.5  # fixed (min = max), so the polls have a nominal rate: BATCHES / POLL_SECONDS
WINDOW_SECONDS = 5.0
LEASE_SECONDS = 2.0
WATCH = {"WATCH_POLL_MIN": str(POLL_SECONDS), "WATCH_POLL_MAX": str(POLL_SECONDS)}


@contextlib.asynccontextmanager
async def database() -> AsyncIterator[str]:
    name = f"otari_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urllib.parse.urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.contextmanager
def servers(work: Path, gateway_port: int, n: int, label: str, **settings: str) -> Iterator[list[procs.Child]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(procs.server(work, gateway_port, db=f"{label}-{i}.db", name=f"{label}-{i}", **settings))
            for i in range(n)
        ]


def _stub(channel: grpc.aio.Channel) -> BatchServiceAsyncStub:
    return batch_service_pb2_grpc.BatchServiceStub(channel)


async def _create(stub: BatchServiceAsyncStub) -> str:
    item = pb.BatchRequestItem(custom_id="r0", body_json='{"messages": [{"role": "user", "content": "q"}]}')
    reply = await stub.CreateBatch(
        pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=[item]), metadata=procs.GRPC_AUTH
    )
    return reply.batch.id


async def _getbatch_p50(work: Path, gateway_port: int, store: str, label: str) -> float:
    settings = {"STATE_DB": store} if store.startswith("postgresql") else {}
    with procs.server(work, gateway_port, db=f"{label}.db", name=f"getbatch-{label}", **settings) as srv:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            stub = _stub(channel)
            batch_id = await _create(stub)
            call = functools.partial(stub.GetBatch, pb.GetBatchRequest(batch_id=batch_id), metadata=procs.GRPC_AUTH)
            await _latencies(100, 1, call)
            return percentile(await _latencies(CALLS, 1, call), 50) * 1000


async def _polls(sim: httpx.AsyncClient, stubs: list[BatchServiceAsyncStub]) -> float:
    """Gateway GETs per second while SUBSCRIBERS streams watch BATCHES live batches, spread over `stubs`."""
    ids = [await _create(stubs[0]) for _ in range(BATCHES)]
    calls = [
        stubs[i % len(stubs)].WatchBatch(pb.WatchBatchRequest(batch_id=ids[i % BATCHES]), metadata=procs.GRPC_AUTH)
        for i in range(SUBSCRIBERS)
    ]
    try:
        for call in calls:
            await call.read()  # the snapshot: subscribed
        await asyncio.sleep(2 * POLL_SECONDS)
        before = (await sim.get("/_simulator/stats")).json()["requests"].get("get", 0)
        await asyncio.sleep(WINDOW_SECONDS)
        after = (await sim.get("/_simulator/stats")).json()["requests"].get("get", 0)
        return float(after - before) / WINDOW_SECONDS
    finally:
        for call in calls:
            call.cancel()


def _replica_names(children: list[procs.Child]) -> dict[str, procs.Child]:
    names = {}
    for child in children:
        for line in child.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                message = json.loads(line).get("message", "")
                if message.startswith("replica "):
                    names[message.split()[1].rstrip(":")] = child
    return names


async def _holders(url: str) -> list[str]:
    conn = await asyncpg.connect(url, server_settings={"search_path": POSTGRES_SCHEMA})
    try:
        return [r["holder"] for r in await conn.fetch("SELECT holder FROM leases")]
    finally:
        await conn.close()


async def _until(done: Callable[[list[str]], bool], url: str, *, within: float = 60.0) -> list[str]:
    """The lease holders once `done` says so (polled every 20 ms; RuntimeError after `within` seconds)."""
    for _ in range(int(within / 0.02)):
        if done(holders := await _holders(url)):
            return holders
        await asyncio.sleep(0.02)
    raise RuntimeError("the leases never got there")


async def _takeover(work: Path, gateway_port: int, url: str) -> float:
    settings = {**WATCH, "STATE_DB": url, "WATCH_LEASE_SECONDS": str(LEASE_SECONDS)}
    with servers(work, gateway_port, 2, "takeover", **settings) as children:
        async with contextlib.AsyncExitStack() as stack:
            channels = [
                await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{c.port}")) for c in children
            ]
            stubs = [_stub(c) for c in channels]
            batch_id = await _create(stubs[0])
            calls = [s.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id), metadata=procs.GRPC_AUTH) for s in stubs]
            for call in calls:
                await call.read()
            holders = await _until(lambda found: bool(found), url)
            holder = _replica_names(children)[holders[0].partition("/")[0]]  # "<replica>/<its poll loop>"
            killed = time.monotonic()
            holder.process.kill()
            holder.process.wait()
            await _until(lambda found: bool(found) and found != holders, url)
            for call in calls:
                call.cancel()
            return time.monotonic() - killed


async def _run(runs: Runs) -> None:
    with procs.workdir() as work, procs.simulator(work) as sim:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", headers=procs.HTTP_AUTH) as http:
            with runs.measuring("getbatch_ratio", "getbatch_sqlite", "getbatch_postgres"):
                async with database() as url:
                    sqlite = await _getbatch_p50(work, sim.port, str(work / "g.db"), "sqlite")
                    postgres = await _getbatch_p50(work, sim.port, url, "postgres")
                runs.add("getbatch_sqlite", sqlite)
                runs.add("getbatch_postgres", postgres)
                runs.add("getbatch_ratio", postgres / sqlite)
            with runs.measuring("polls_ratio", "polls_one", "polls_three"):
                rates = {}
                for n in (1, 3):
                    async with database() as url:
                        with servers(work, sim.port, n, f"polls-{n}", STATE_DB=url, **WATCH) as children:
                            async with contextlib.AsyncExitStack() as stack:
                                channels = [
                                    await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{c.port}"))
                                    for c in children
                                ]
                                rates[n] = await _polls(http, [_stub(c) for c in channels])
                runs.add("polls_one", rates[1])
                runs.add("polls_three", rates[3])
                runs.add("polls_ratio", rates[3] / rates[1])
            with runs.measuring("takeover"):
                async with database() as url:
                    runs.add("takeover", await _takeover(work, sim.port, url))


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sheet.section(f"Replicas on one PostgreSQL (#9), median of {RUNS} runs")
    runs = Runs()
    for _ in range(RUNS):
        await _run(runs)

    def med(key: str) -> str:
        values = sorted(runs.values.get(key, []))
        return f"{values[len(values) // 2]:.2f}" if values else "?"

    sheet.figure(
        "replicas.getbatch_p50.postgres_vs_sqlite",
        runs,
        "getbatch_ratio",
        "x",
        at_most(1.2),
        note=f"p50 PostgreSQL {med('getbatch_postgres')} ms, SQLite {med('getbatch_sqlite')} ms",
    )
    sheet.figure(
        "replicas.polls.3_vs_1",
        runs,
        "polls_ratio",
        "x",
        at_most(1.1),
        note=f"{SUBSCRIBERS} subscribers on {BATCHES} batches: {med('polls_three')} polls/s on 3 replicas, "
        f"{med('polls_one')} on 1 (nominal {BATCHES / POLL_SECONDS:.0f})",
    )
    sheet.figure(
        "replicas.lease_takeover_after_kill_9",
        runs,
        "takeover",
        "s",
        at_most(LEASE_SECONDS + POLL_SECONDS),
        note=f"lease {LEASE_SECONDS:g} s, poll interval {POLL_SECONDS:g} s",
    )
