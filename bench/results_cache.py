"""Results and big batches against the direct path, each run with a fresh simulator, server and state database:

- CreateBatch of N requests vs POST /v1/batches of the same N (<= 1.3x);
- the first StreamResults of a completed N-item batch (through the gateway), time to the last item, vs GET
  /v1/batches/{id}/results + json parse (<= 1.5x); time to the first item vs that direct total (<= 0.3x), the
  direct GET's first byte beside it (the gateway, like the simulator, sends nothing before its whole document);
- StreamResults again, from the service's cache: >= 10x faster than the direct GET + parse, and >= 100k results/s
  into this (Python) client;
- the server's peak RSS growth while streaming N items vs N/10 items, in fresh servers (<= 2x): memory must not
  follow the batch size. Once through the gateway (first stream), once from the cache (a fresh server on the
  same database).

The wire shape: StreamResultsResponse carries `repeated BatchResult results` (a chunk); items are counted as
len(results) per message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx

from bench import procs
from bench.report import Runs, Sheet, at_least, at_most
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

MODEL = "openai:gpt-4o-mini"
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20))
HTTP_TIMEOUT = httpx.Timeout(300.0)
STREAM_TIMEOUT = 300.0
CREATE_ROUNDS = 4
STREAMED = 2  # batches of each path streamed
MIN_GROWTH_MIB = 1.0  # below this, growth is allocator noise: the ratio's denominator is at least this


@dataclass(frozen=True)
class Sizes:
    runs: int
    items: int
    small: int


FULL = Sizes(runs=3, items=10_000, small=1_000)
QUICK = Sizes(runs=3, items=2_000, small=200)


def _content(i: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"question {i}: what is the capital of France? " * 4}],
        "max_tokens": 64,
    }


def _payload(n: int) -> dict[str, Any]:
    return {"model": MODEL, "requests": [{"custom_id": f"r{i}", "body": _content(i)} for i in range(n)]}


def _message(n: int) -> pb.CreateBatchRequest:
    """As the Python client sends it: each body as JSON text (body_json)."""
    items = [pb.BatchRequestItem(custom_id=f"r{i}", body_json=json.dumps(_content(i))) for i in range(n)]
    return pb.CreateBatchRequest(model=MODEL, requests=items)


async def _direct_create(http: httpx.AsyncClient, payload: dict[str, Any]) -> tuple[str, float]:
    started = time.perf_counter()
    response = await http.post("/v1/batches", json=payload)
    response.raise_for_status()
    elapsed = time.perf_counter() - started
    return str(response.json()["id"]), elapsed


async def _grpc_create(stub: BatchServiceAsyncStub, message: pb.CreateBatchRequest) -> tuple[str, float]:
    started = time.perf_counter()
    reply = await stub.CreateBatch(message, metadata=procs.GRPC_AUTH, timeout=STREAM_TIMEOUT)
    return str(reply.batch.id), time.perf_counter() - started


async def _complete(http: httpx.AsyncClient, batch_id: str) -> None:
    (await http.post(f"/_simulator/batches/{batch_id}/status", json={"status": "completed"})).raise_for_status()


async def _direct_results(http: httpx.AsyncClient, batch_id: str) -> tuple[int, float, float]:
    """(items, seconds to the first byte, seconds to the parsed document)."""
    started = time.perf_counter()
    first = 0.0
    chunks: list[bytes] = []
    async with http.stream("GET", f"/v1/batches/{batch_id}/results", params={"provider": "openai"}) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            if not chunks:
                first = time.perf_counter() - started
            chunks.append(chunk)
    document = json.loads(b"".join(chunks))
    return len(document["results"]), first, time.perf_counter() - started


async def _stream(stub: BatchServiceAsyncStub, batch_id: str) -> tuple[int, float, float]:
    """(items, seconds to the first item, seconds to the last item)."""
    started = time.perf_counter()
    first = 0.0
    count = 0
    request = pb.StreamResultsRequest(batch_id=batch_id, provider="openai")
    async for message in stub.StreamResults(request, metadata=procs.GRPC_AUTH, timeout=STREAM_TIMEOUT):
        if message.results and not count:
            first = time.perf_counter() - started
        count += len(message.results)
    return count, first, time.perf_counter() - started


def _expect(n: int, got: int, what: str) -> None:
    if got != n:
        raise RuntimeError(f"{what}: {got:,} items, expected {n:,}")


async def _run(sizes: Sizes, runs: Runs) -> None:
    with procs.workdir() as work, procs.simulator(work) as sim:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{sim.port}", headers=procs.HTTP_AUTH, timeout=HTTP_TIMEOUT
        ) as http:
            with procs.server(work, sim.port) as srv:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}", options=CHANNEL_OPTIONS) as channel:
                    stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)
                    await _main_figures(sizes, runs, http, stub)
            with runs.measuring("rss_gateway_ratio", "rss_cache_ratio"):
                await _memory(sizes, runs, http, work, sim.port)


async def _main_figures(sizes: Sizes, runs: Runs, http: httpx.AsyncClient, stub: BatchServiceAsyncStub) -> None:
    n = sizes.items
    payload, message = _payload(n), _message(n)
    direct_ids: list[str] = []
    grpc_ids: list[str] = []
    with runs.measuring("create_ratio", "create_direct", "create_grpc"):
        await _direct_create(http, _payload(10))  # warm both paths
        await _grpc_create(stub, _message(10))
        direct_times, grpc_times = [], []
        for _ in range(CREATE_ROUNDS):  # alternating; the best of each (either path can hit a noisy moment)
            batch_id, seconds = await _direct_create(http, payload)
            direct_ids.append(batch_id)
            direct_times.append(seconds)
            batch_id, seconds = await _grpc_create(stub, message)
            grpc_ids.append(batch_id)
            grpc_times.append(seconds)
        del direct_ids[STREAMED:], grpc_ids[STREAMED:]  # the batches whose results are streamed below
        runs.add("create_direct", min(direct_times) * 1000)
        runs.add("create_grpc", min(grpc_times) * 1000)
        runs.add("create_ratio", min(grpc_times) / min(direct_times))
    stream_names = ("first_ratio", "first_item_ratio", "cache_speedup", "cache_rate", "direct_total", "direct_ttfb")
    with runs.measuring(*stream_names, "first_total", "first_item", "cache_total"):
        if not direct_ids or not grpc_ids:
            raise RuntimeError("no batches: CreateBatch failed")
        for batch_id in (*direct_ids, *grpc_ids):
            await _complete(http, batch_id)
        direct = []
        for batch_id in direct_ids:
            got, ttfb, total = await _direct_results(http, batch_id)
            _expect(n, got, "direct GET results")
            direct.append((total, ttfb))
        direct_total, direct_ttfb = min(direct)
        runs.add("direct_total", direct_total * 1000)
        runs.add("direct_ttfb", direct_ttfb * 1000)
        first = []
        for batch_id in grpc_ids:  # the first stream of each: through the gateway
            got, first_item, total = await _stream(stub, batch_id)
            _expect(n, got, "first StreamResults")
            first.append((total, first_item))
        first_total, first_item = min(first)
        runs.add("first_total", first_total * 1000)
        runs.add("first_item", first_item * 1000)
        runs.add("first_ratio", first_total / direct_total)
        runs.add("first_item_ratio", first_item / direct_total)
        cached = []
        for _ in range(3):
            got, _, total = await _stream(stub, grpc_ids[0])
            _expect(n, got, "repeated StreamResults")
            cached.append(total)
        cache_total = min(cached)
        runs.add("cache_total", cache_total * 1000)
        runs.add("cache_speedup", direct_total / cache_total)
        runs.add("cache_rate", n / cache_total)


async def _memory(sizes: Sizes, runs: Runs, http: httpx.AsyncClient, work: Path, gateway_port: int) -> None:
    """Peak RSS growth of a fresh server streaming the small batch, then another streaming the big one; then the
    same from the cache, in fresh servers on the same databases."""
    warm_id, _ = await _direct_create(http, _payload(10))
    small_id, _ = await _direct_create(http, _payload(sizes.small))
    big_id, _ = await _direct_create(http, _payload(sizes.items))
    for batch_id in (warm_id, small_id, big_id):
        await _complete(http, batch_id)
    growth: dict[tuple[str, str], float] = {}
    for path in ("gateway", "cache"):  # the cache pass reuses the databases the gateway pass filled
        for label, batch_id, n in (("small", small_id, sizes.small), ("big", big_id, sizes.items)):
            name = f"mem-{label}"
            with procs.server(work, gateway_port, db=f"{name}.db", name=f"{name}-{path}") as srv:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}", options=CHANNEL_OPTIONS) as channel:
                    stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)
                    await _stream(stub, warm_id)  # the code path and the channel, warm
                    before, _ = procs.memory_mib(srv.pid)
                    got, _, _ = await _stream(stub, batch_id)
                    _expect(n, got, f"StreamResults ({path}) in a fresh server")
                    _, peak = procs.memory_mib(srv.pid)
            growth[path, label] = max(0.0, peak - before)
    for path in ("gateway", "cache"):
        small, big = growth[path, "small"], growth[path, "big"]
        runs.add(f"rss_{path}_small", small)
        runs.add(f"rss_{path}_big", big)
        runs.add(f"rss_{path}_ratio", big / max(small, MIN_GROWTH_MIB))


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    n, s = f"{sizes.items // 1000}k", f"{sizes.small / 1000:g}k"
    sheet.section(f"Results and big batches ({sizes.items:,} items), median of {sizes.runs} runs")
    runs = Runs()
    for _ in range(sizes.runs):
        with runs.measuring("create_ratio", "first_ratio", "cache_speedup", "rss_gateway_ratio"):
            await _run(sizes, runs)

    sheet.figure(
        f"results.create_{n}.vs_direct_post",
        runs,
        "create_ratio",
        "x",
        at_most(1.3),
        note=f"CreateBatch {runs.shown('create_grpc', 'ms')}, direct POST {runs.shown('create_direct', 'ms')}",
    )
    sheet.figure(
        f"results.first_stream_{n}.last_item.vs_direct",
        runs,
        "first_ratio",
        "x",
        at_most(1.5),
        note=f"last item {runs.shown('first_total', 'ms')}, direct GET+parse {runs.shown('direct_total', 'ms')}",
    )
    sheet.figure(
        f"results.first_stream_{n}.first_item.vs_direct_total",
        runs,
        "first_item_ratio",
        "x",
        at_most(0.3),
        note=f"first item {runs.shown('first_item', 'ms')}, direct GET+parse {runs.shown('direct_total', 'ms')}, "
        f"first byte {runs.shown('direct_ttfb', 'ms')}",
    )
    sheet.figure(
        f"results.cached_stream_{n}.speedup_vs_direct",
        runs,
        "cache_speedup",
        "x",
        at_least(10),
        note=f"cached stream {runs.shown('cache_total', 'ms')}, direct GET+parse {runs.shown('direct_total', 'ms')}",
    )
    sheet.figure(f"results.cached_stream_{n}.rate", runs, "cache_rate", "results/s", at_least(100_000))
    for path in ("gateway", "cache"):
        sheet.figure(
            f"results.rss_growth.{path}.{n}_vs_{s}",
            runs,
            f"rss_{path}_ratio",
            "x",
            at_most(2.0),
            note=f"{runs.shown(f'rss_{path}_big', 'MiB', 1)} vs {runs.shown(f'rss_{path}_small', 'MiB', 1)}, "
            f"floor {MIN_GROWTH_MIB:g} MiB",
        )
