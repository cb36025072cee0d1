"""Batches of any size (#31), against the direct path at the real gateway's pace (the simulator in its own process,
50 ms a call, 20 at once), each run with a fresh simulator, server and state database (and the direct create on a
simulator of its own, as fresh):

- a 100,000-request batch (1 KiB bodies, as body_json) acknowledged through UploadBatch, vs creating its ten parts
  directly (POST /v1/batches, ten of 10,000) with the concurrency the service allows one caller
  (PART_CREATES_AT_ONCE) (<= 1.3x); the server's peak RSS growth meanwhile (<= 400 MB);
- its first StreamResults, the last result, vs fetching and parsing the ten parts' results directly with that
  same concurrency (<= 1.3x);
- a watched ten-part batch: gateway polls per live part per poll interval, however many subscribers (<= 1), and
  one event per change of the whole (every subscriber the same events, no state twice in a row).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import httpx

from bench import procs
from bench.report import Runs, Sheet, at_most
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc, watch_pb2

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

MODEL = "openai:gpt-4o-mini"
LATENCY, CONCURRENCY = 0.05, 20  # the real gateway's pace
AT_ONCE = 4  # PART_CREATES_AT_ONCE, the service's default
PART = 10_000
CHUNK_BYTES = 4 << 20  # an upload's chunk, as the Python client sends them
TIMEOUT = 600.0
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20))
POLL = 1.0  # the watch run's poll interval (WATCH_POLL_MIN = WATCH_POLL_MAX)


@dataclass(frozen=True)
class Sizes:
    runs: int
    requests: int
    subscribers: int
    watch_seconds: float


FULL = Sizes(runs=3, requests=100_000, subscribers=50, watch_seconds=12.0)
QUICK = Sizes(runs=1, requests=20_000, subscribers=10, watch_seconds=6.0)


def _body(i: int) -> str:
    """About 1 KiB of JSON."""
    return json.dumps({"messages": [{"role": "user", "content": f"{i}: " + "what is the capital of France? " * 32}]})


def _items(n: int) -> list[pb.BatchRequestItem]:
    return [pb.BatchRequestItem(custom_id=f"r{i}", body_json=_body(i)) for i in range(n)]


async def _direct_create(http: httpx.AsyncClient, requests: list[dict[str, Any]]) -> float:
    """The parts made straight at the gateway, AT_ONCE at a time, each body encoded as it goes (as a client holding
    the requests does): seconds to the last one's answer."""
    limit = asyncio.Semaphore(AT_ONCE)

    async def one(part: list[dict[str, Any]]) -> str:
        async with limit:
            body = json.dumps({"model": MODEL, "requests": part}).encode()
            response = await http.post("/v1/batches", content=body, headers={"content-type": "application/json"})
            response.raise_for_status()
            return str(response.json()["id"])

    started = time.perf_counter()
    await asyncio.gather(*(one(requests[start : start + PART]) for start in range(0, len(requests), PART)))
    return time.perf_counter() - started


async def _upload(stub: BatchServiceAsyncStub, items: list[pb.BatchRequestItem]) -> tuple[Any, float]:
    """UploadBatch, in chunks of CHUNK_BYTES: the batch, and seconds to its acknowledgement."""

    async def messages() -> AsyncIterator[pb.UploadBatchRequest]:
        yield pb.UploadBatchRequest(header=pb.CreateBatchRequest(model=MODEL))
        chunk: list[pb.BatchRequestItem] = []
        size = 0
        for item in items:
            chunk.append(item)
            size += item.ByteSize()
            if size >= CHUNK_BYTES:
                yield pb.UploadBatchRequest(chunk=pb.RequestChunk(requests=chunk))
                chunk, size = [], 0
        if chunk:
            yield pb.UploadBatchRequest(chunk=pb.RequestChunk(requests=chunk))

    started = time.perf_counter()
    reply = await stub.UploadBatch(messages(), metadata=procs.GRPC_AUTH, timeout=TIMEOUT)
    return reply.batch, time.perf_counter() - started


async def _direct_results(http: httpx.AsyncClient, part_ids: list[str]) -> float:
    """The parts' results fetched and parsed straight from the gateway, AT_ONCE at a time."""
    limit = asyncio.Semaphore(AT_ONCE)

    async def one(batch_id: str) -> int:
        async with limit:
            response = await http.get(f"/v1/batches/{batch_id}/results", params={"provider": "openai"})
            response.raise_for_status()
            return len(json.loads(response.content)["results"])

    started = time.perf_counter()
    await asyncio.gather(*(one(b) for b in part_ids))
    return time.perf_counter() - started


async def _stream(stub: BatchServiceAsyncStub, batch_id: str, n: int) -> float:
    started = time.perf_counter()
    count = 0
    last = ""
    request = pb.StreamResultsRequest(batch_id=batch_id)
    async for message in stub.StreamResults(request, metadata=procs.GRPC_AUTH, timeout=TIMEOUT):
        count += len(message.results)
        if message.results:
            last = message.results[-1].custom_id
    if count != n or last != f"r{n - 1}":
        raise RuntimeError(f"StreamResults: {count:,} results ending {last!r}, expected {n:,} ending r{n - 1}")
    return time.perf_counter() - started


def _http(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=procs.HTTP_AUTH, timeout=httpx.Timeout(TIMEOUT)
    )


async def _big(sizes: Sizes, runs: Runs) -> None:
    items = _items(sizes.requests)
    requests = [{"custom_id": i.custom_id, "body": json.loads(i.body_json)} for i in items]
    with procs.workdir() as work:
        # Each way on a simulator of its own: one that holds a hundred thousand requests already (as Python objects)
        # makes every later create slower (its garbage collector walks them all), which the real gateway does not.
        with procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY, name="direct") as sim:
            async with _http(sim.port) as http:
                direct_create = await _direct_create(http, requests)
        with procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY) as sim:
            async with _http(sim.port) as http:
                with procs.server(work, sim.port) as srv:
                    await _through_service(srv, http, items, direct_create, runs)


async def _through_service(
    srv: procs.Child, http: httpx.AsyncClient, items: list[pb.BatchRequestItem], direct_create: float, runs: Runs
) -> None:
    """The batch uploaded (vs `direct_create`, seconds), its parts completed, and its first StreamResults (vs the
    parts' results fetched directly)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}", options=CHANNEL_OPTIONS) as channel:
        stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)
        await _upload(stub, items[:10])  # the code path and the channel, warm
        before, _ = procs.memory_mib(srv.pid)
        batch, create = await _upload(stub, items)
        _, peak = procs.memory_mib(srv.pid)
        runs.add("create_direct", direct_create * 1000)
        runs.add("create_grpc", create * 1000)
        runs.add("create_ratio", create / direct_create)
        runs.add("create_rss", max(0.0, peak - before))
        part_ids = [p.id for p in batch.parts]
        if len(part_ids) != -(-len(items) // PART):
            raise RuntimeError(f"{len(part_ids)} parts, expected {-(-len(items) // PART)}")
        for part_id in part_ids:
            await http.post(f"/_simulator/batches/{part_id}/status", json={"status": "completed"})
        direct_results = await _direct_results(http, part_ids)
        first = await _stream(stub, batch.id, len(items))
        runs.add("results_direct", direct_results * 1000)
        runs.add("results_grpc", first * 1000)
        runs.add("results_ratio", first / direct_results)


async def _watched(sizes: Sizes, runs: Runs) -> None:
    """Ten parts of 100 requests, live for the whole run; `subscribers` WatchBatch streams on the batch."""
    items = _items(10 * 100)
    settings = {"WATCH_POLL_MIN": str(POLL), "WATCH_POLL_MAX": str(POLL), "PART_MAX_REQUESTS": "100"}
    with procs.workdir() as work, procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY) as sim:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", headers=procs.HTTP_AUTH) as http:
            with procs.server(work, sim.port, **settings) as srv:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}", options=CHANNEL_OPTIONS) as channel:
                    stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)
                    batch = (
                        await stub.CreateBatch(
                            pb.CreateBatchRequest(model=MODEL, requests=items), metadata=procs.GRPC_AUTH
                        )
                    ).batch
                    seen: list[list[tuple[int, int]]] = [[] for _ in range(sizes.subscribers)]

                    async def follow(events: list[tuple[int, int]]) -> None:
                        call = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=procs.GRPC_AUTH)
                        async for response in call:
                            event = response.event
                            if event.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
                                c = event.batch.request_counts
                                events.append((event.batch.status, c.completed))

                    tasks = [asyncio.create_task(follow(events)) for events in seen]
                    await asyncio.sleep(2 * POLL)  # every stream joined, the loop polling
                    gets = (await http.get("/_simulator/stats")).json()["requests"].get("get", 0)
                    started = time.monotonic()
                    for part in batch.parts[:5]:  # half the parts end, one each while
                        await asyncio.sleep(sizes.watch_seconds / 6)
                        await http.post(f"/_simulator/batches/{part.id}/status", json={"status": "completed"})
                    await asyncio.sleep(sizes.watch_seconds / 6)
                    elapsed = time.monotonic() - started
                    polled = (await http.get("/_simulator/stats")).json()["requests"].get("get", 0) - gets
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
    live_part_intervals = 10 * elapsed / POLL  # (at most: half of them ended along the way)
    runs.add("polls_per_part_interval", polled / live_part_intervals)
    first = seen[0]
    same = all(events == first for events in seen)
    repeats = sum(1 for a, b in itertools.pairwise(first) if a == b)
    runs.add("events_not_per_whole_change", float(0 if same and repeats == 0 and len(first) >= 2 else 1))
    runs.add("events", float(len(first)))


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    n = f"{sizes.requests // 1000}k"
    sheet.section(f"Batches of any size ({sizes.requests:,} requests, ten parts), median of {sizes.runs} runs")
    runs = Runs()
    for _ in range(sizes.runs):
        with runs.measuring("create_ratio", "create_rss", "results_ratio"):
            await _big(sizes, runs)
        with runs.measuring("polls_per_part_interval", "events_not_per_whole_change"):
            await _watched(sizes, runs)

    sheet.figure(
        f"parts.create_{n}.ack.vs_direct_parts",
        runs,
        "create_ratio",
        "x",
        at_most(1.3),
        note=f"UploadBatch acknowledged {runs.shown('create_grpc', 'ms')}, ten parts created directly "
        f"{AT_ONCE} at once {runs.shown('create_direct', 'ms')}",
    )
    sheet.figure(f"parts.create_{n}.server_rss_growth", runs, "create_rss", "MiB", at_most(400.0))
    sheet.figure(
        f"parts.first_stream_{n}.last_result.vs_direct_parts",
        runs,
        "results_ratio",
        "x",
        at_most(1.3),
        note=f"last result {runs.shown('results_grpc', 'ms')}, ten parts' results fetched and parsed directly "
        f"{AT_ONCE} at once {runs.shown('results_direct', 'ms')}",
    )
    sheet.figure(
        "parts.watched_ten_parts.polls_per_live_part_per_interval",
        runs,
        "polls_per_part_interval",
        "",
        at_most(1.0),
        note=f"{sizes.subscribers} subscribers, poll interval {POLL:g} s",
    )
    sheet.figure(
        "parts.watched_ten_parts.events_not_one_per_whole_change",
        runs,
        "events_not_per_whole_change",
        "",
        at_most(0.0),
        note=f"0: every subscriber the same {runs.shown('events', 'events')}, no state twice in a row",
    )
