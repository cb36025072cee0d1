"""`make bench`: the service's figures, each as a ratio against calling the gateway directly over HTTP.

Everything runs on loopback in this process's event loop: the gateway simulator, the gRPC server, and the
clients. Bounded in count; prints a table and exits.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable

import grpc
import httpx
from google.protobuf import struct_pb2
from otari.batch.v1 import batch_service_pb2 as pb
from otari.batch.v1 import batch_service_pb2_grpc

from server.app import BatchServer
from server.config import Settings
from server.simulator.run import running_simulator
from server.simulator.state import SimState

KEY = "sim-key-alice"
GRPC_AUTH = (("authorization", f"Bearer {KEY}"),)
HTTP_AUTH = {"authorization": f"Bearer {KEY}"}
CALLS = 500
CONCURRENCY = 20
RESULT_ITEMS = 10_000


async def _timed(label: str, calls: int, call: Callable[[], Awaitable[object]], concurrency: int) -> float:
    latencies: list[float] = []
    queue = iter(range(calls))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    print(f"  {label:<34} {calls / elapsed:>9.0f}/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    return calls / elapsed


async def main() -> None:
    state = SimState(stage_seconds=3600)
    async with running_simulator(state) as url, httpx.AsyncClient(base_url=url, headers=HTTP_AUTH) as http:
        settings = Settings(gateway_url=url, grpc_listen="127.0.0.1:0", health_interval=60)
        async with (
            BatchServer(settings, gateway_url=url) as server,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            stub = batch_service_pb2_grpc.BatchServiceStub(channel)
            body = struct_pb2.Struct()
            body.update({"messages": [{"role": "user", "content": "benchmark question"}], "max_tokens": 32})
            requests = [pb.BatchRequestItem(custom_id=f"r{i}", body=body) for i in range(RESULT_ITEMS)]
            created = await stub.CreateBatch(
                pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=requests), metadata=GRPC_AUTH
            )
            batch_id = created.batch.id
            state.force(state.batches[batch_id], "completed")
            get = pb.GetBatchRequest(batch_id=batch_id, provider="openai")

            print(f"GetBatch, {CALLS} calls")
            for concurrency in (1, CONCURRENCY):
                direct = await _timed(
                    f"direct HTTP, concurrency {concurrency}",
                    CALLS,
                    lambda: http.get(f"/v1/batches/{batch_id}", params={"provider": "openai"}),
                    concurrency,
                )
                proxied = await _timed(
                    f"gRPC proxy, concurrency {concurrency}",
                    CALLS,
                    lambda: stub.GetBatch(get, metadata=GRPC_AUTH),
                    concurrency,
                )
                print(f"  -> gRPC / direct throughput: {proxied / direct:.2f}")

            print(f"StreamResults of a {RESULT_ITEMS:,}-item completed batch")
            started = time.perf_counter()
            response = await http.get(f"/v1/batches/{batch_id}/results", params={"provider": "openai"})
            items = len(response.json()["results"])
            direct_s = time.perf_counter() - started
            started = time.perf_counter()
            streamed = 0
            async for _ in stub.StreamResults(
                pb.StreamResultsRequest(batch_id=batch_id, provider="openai"), metadata=GRPC_AUTH
            ):
                streamed += 1
            grpc_s = time.perf_counter() - started
            assert streamed == items == RESULT_ITEMS
            print(f"  direct HTTP (one JSON document)    {items / direct_s:>9.0f} items/s")
            print(f"  gRPC stream (one message per item) {streamed / grpc_s:>9.0f} items/s")
            print(f"  -> gRPC / direct throughput: {direct_s / grpc_s:.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (simulator + server + clients): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
