"""#12: what the service adds to GetBatch of a live batch (always proxied to the gateway): its p50 minus the p50 of
the same GET straight to the gateway, at concurrency 1 (the target), 20 and 100 (shown).

Each run: a fresh simulator, server and state database; this process is the load client (httpx and grpc.aio).
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import httpx
from google.protobuf import struct_pb2

from bench import procs
from bench.report import Runs, Sheet, at_most, percentile
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

CONCURRENCY = (1, 20, 100)
TARGET_MS = 1.5  # #22: the direct call + 1.5 ms (a live read waits 50-80 ms for the real gateway)


@dataclass(frozen=True)
class Sizes:
    runs: int
    warmup: int
    calls: dict[int, int]  # per concurrency


FULL = Sizes(runs=3, warmup=200, calls={1: 500, 20: 2000, 100: 3000})
QUICK = Sizes(runs=3, warmup=50, calls={1: 150, 20: 400, 100: 600})


async def _latencies(calls: int, concurrency: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    latencies: list[float] = []
    todo = iter(range(calls))

    async def worker() -> None:
        for _ in todo:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _run(sizes: Sizes, runs: Runs) -> None:
    with procs.workdir() as work, procs.simulator(work) as sim, procs.server(work, sim.port) as srv:
        limits = httpx.Limits(max_connections=max(CONCURRENCY), max_keepalive_connections=max(CONCURRENCY))
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", headers=procs.HTTP_AUTH, limits=limits) as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
        ):
            stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)
            body = struct_pb2.Struct()
            body.update({"messages": [{"role": "user", "content": "benchmark question"}], "max_tokens": 32})
            item = pb.BatchRequestItem(custom_id="r0", body=body)
            request = pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=[item])
            created = await stub.CreateBatch(request, metadata=procs.GRPC_AUTH)
            batch_id = created.batch.id  # live: the simulator's stage is an hour, so every GetBatch is proxied

            async def direct() -> None:
                (await http.get(f"/v1/batches/{batch_id}", params={"provider": "openai"})).raise_for_status()

            proxied = functools.partial(
                stub.GetBatch, pb.GetBatchRequest(batch_id=batch_id, provider="openai"), metadata=procs.GRPC_AUTH
            )
            await _latencies(sizes.warmup, 10, direct)
            await _latencies(sizes.warmup, 10, proxied)
            for concurrency in CONCURRENCY:
                with runs.measuring(f"overhead_c{concurrency}", f"direct_c{concurrency}", f"grpc_c{concurrency}"):
                    n = sizes.calls[concurrency]
                    d = percentile(await _latencies(n, concurrency, direct), 50) * 1000
                    g = percentile(await _latencies(n, concurrency, proxied), 50) * 1000
                    runs.add(f"direct_c{concurrency}", d)
                    runs.add(f"grpc_c{concurrency}", g)
                    runs.add(f"overhead_c{concurrency}", g - d)


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    sheet.section(f"GetBatch of a live batch (#12): service p50 - direct HTTP p50, median of {sizes.runs} runs")
    runs = Runs()
    for _ in range(sizes.runs):
        with runs.measuring(*(f"{k}_c{c}" for c in CONCURRENCY for k in ("overhead", "direct", "grpc"))):
            await _run(sizes, runs)
    for concurrency in CONCURRENCY:
        target = at_most(TARGET_MS) if concurrency == 1 else None
        sheet.figure(
            f"getbatch.live.added_p50.c{concurrency}",
            runs,
            f"overhead_c{concurrency}",
            "ms",
            target,
            note=_context(runs, concurrency),
        )


def _context(runs: Runs, concurrency: int) -> str:
    d = runs.values.get(f"direct_c{concurrency}")
    g = runs.values.get(f"grpc_c{concurrency}")
    if not d or not g:
        return ""
    return f"p50 direct {statistics.median(d):.2f} ms, service {statistics.median(g):.2f} ms"
