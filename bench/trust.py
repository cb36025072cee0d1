"""#29: what the trust window saves the gateway, and so what shortening it costs: the gateway calls one workload makes
under OWNER_TRUST_SECONDS 300 (the default), 30 and 0 (every call served from state asks the gateway first).

The workload, for `seconds` each: ten keys of one user (ten callers to the service) each read a completed batch once
a second as a client that polls does (GetBatch, StreamResults from the cache, WaitBatch, ListBatches' second page),
and each keeps two streams open: a WatchBatch of one live batch they all follow, and a WatchBatches of the completed
batch (idle). Figures are calls a minute the simulator answered (INFO: the cost is the operator's trade, said in the
README's Security section).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import httpx

from bench import procs
from bench.report import Runs, Sheet
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

WINDOWS = (300, 30, 0)
CALLERS = 10
MASTER = {"authorization": "Bearer sim-master-key"}


@dataclass(frozen=True)
class Sizes:
    seconds: float


FULL = Sizes(seconds=60.0)
QUICK = Sizes(seconds=12.0)


async def _reader(stub: Stub, md: tuple[tuple[str, str]], done: str, page_token: str, until: float) -> None:
    while time.monotonic() < until:
        await stub.GetBatch(pb.GetBatchRequest(batch_id=done), metadata=md)
        async for _ in stub.StreamResults(pb.StreamResultsRequest(batch_id=done), metadata=md):
            pass
        await stub.WaitBatch(pb.WaitBatchRequest(batch_id=done), metadata=md)
        await stub.ListBatches(pb.ListBatchesRequest(page_size=1, page_token=page_token), metadata=md)
        await asyncio.sleep(max(0.0, min(1.0, until - time.monotonic())))


async def _calls(http: httpx.AsyncClient) -> Counter[str]:
    """The simulator's requests so far, by route ("get", "list": key checks among them, "results", ...)."""
    stats = (await http.get("/_simulator/stats")).json()
    return Counter({op: int(n) for op, n in stats["requests"].items()})


async def _run(sizes: Sizes, runs: Runs, window: int) -> None:
    with (
        procs.workdir() as work,
        procs.simulator(work) as sim,
        procs.server(work, sim.port, OWNER_TRUST_SECONDS=str(window)) as srv,
    ):
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}") as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
        ):
            stub: Stub = batch_service_pb2_grpc.BatchServiceStub(channel)
            calls = await _workload(stub, http, sizes.seconds)
            per_minute = 60.0 / sizes.seconds
            runs.add(f"calls_{window}", calls.total() * per_minute)
            for op, n in calls.items():
                runs.add(f"calls_{window}_{op}", n * per_minute)


async def _workload(stub: Stub, http: httpx.AsyncClient, seconds: float) -> Counter[str]:
    """The gateway calls the workload made in `seconds`, once every caller holds its streams."""
    keys = []
    for _ in range(CALLERS):
        made = await http.post("/v1/keys", json={"user_id": "bench"}, headers=MASTER)
        keys.append((("authorization", f"Bearer {made.raise_for_status().json()['key']}"),))
    item = pb.BatchRequestItem(custom_id="r0", body_json='{"messages": [{"role": "user", "content": "hi"}]}')
    create = pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=[item])
    live = (await stub.CreateBatch(create, metadata=keys[0])).batch.id
    done = (await stub.CreateBatch(create, metadata=keys[0])).batch.id
    await http.post(f"/_simulator/batches/{done}/status", json={"status": "completed"})
    streams: list[Any] = []
    pages: list[str] = []
    for md in keys:  # each caller shown both batches, its first page listed, its streams open: then the measure
        await stub.GetBatch(pb.GetBatchRequest(batch_id=live, provider="openai"), metadata=md)
        await stub.GetBatch(pb.GetBatchRequest(batch_id=done, provider="openai"), metadata=md)
        pages.append((await stub.ListBatches(pb.ListBatchesRequest(page_size=1), metadata=md)).next_page_token)
        streams.append(stub.WatchBatch(pb.WatchBatchRequest(batch_id=live), metadata=md))
        streams.append(stub.WatchBatches(pb.WatchBatchesRequest(batch_ids=[done]), metadata=md))
    async for _ in stub.StreamResults(pb.StreamResultsRequest(batch_id=done), metadata=keys[0]):
        pass  # fetched once: cached from now on
    for call in streams:
        await call.read()
    before = await _calls(http)
    until = time.monotonic() + seconds
    try:
        await asyncio.gather(*(_reader(stub, md, done, page, until) for md, page in zip(keys, pages, strict=True)))
    finally:
        for call in streams:
            call.cancel()
    return await _calls(http) - before


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    sheet.section(
        f"What the trust window saves (#29): gateway calls a minute of {CALLERS} callers reading and watching, "
        f"{sizes.seconds:.0f} s per window"
    )
    runs = Runs()
    for window in WINDOWS:
        with runs.measuring(f"calls_{window}"):
            await _run(sizes, runs, window)
    default = runs.values.get(f"calls_{WINDOWS[0]}", [0.0])[0]
    for window in WINDOWS:
        values = runs.values.get(f"calls_{window}", [])
        routes = sorted(k.rpartition("_")[2] for k in runs.values if k.startswith(f"calls_{window}_"))
        note = ", ".join(f"{op} {runs.values[f'calls_{window}_{op}'][0]:,.0f}" for op in routes)
        if values and default and window != WINDOWS[0]:
            note += f"; {values[0] / default:.1f}x the default's"
        sheet.figure(
            f"trust.gateway_calls_per_minute.window_{window}s", runs, f"calls_{window}", "/min", None, note=note
        )
