"""`make bench`: the service's figures, as ratios against calling the gateway directly over HTTP, then the
results cache (bench/results_cache.py) and status subscriptions (bench/watch_fanout.py).

Everything runs on loopback in this process's event loop: the gateway simulator, the gRPC server, and the
clients. Bounded in count; prints a table and exits.
"""

from __future__ import annotations

import asyncio
import functools
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import httpx
from google.protobuf import struct_pb2

from bench import results_cache, watch_fanout
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.config import Settings
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

KEY = "sim-key-alice"
GRPC_AUTH = (("authorization", f"Bearer {KEY}"),)
HTTP_AUTH = {"authorization": f"Bearer {KEY}"}
CALLS = 500
CONCURRENCY = 20
BATCH_REQUESTS = 100


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
        state_db = Path(tempfile.mkdtemp(prefix="otari-bench-")) / "state.db"
        settings = Settings(gateway_url=url, grpc_listen="127.0.0.1:0", health_interval=60, state_db=state_db)
        async with (
            BatchServer(settings, gateway_url=url) as server,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            stub = batch_service_pb2_grpc.BatchServiceStub(channel)
            body = struct_pb2.Struct()
            body.update({"messages": [{"role": "user", "content": "benchmark question"}], "max_tokens": 32})
            requests = [pb.BatchRequestItem(custom_id=f"r{i}", body=body) for i in range(BATCH_REQUESTS)]
            created = await stub.CreateBatch(
                pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=requests), metadata=GRPC_AUTH
            )
            batch_id = created.batch.id
            live = await stub.CreateBatch(
                pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=requests[:1]), metadata=GRPC_AUTH
            )
            state.force(state.batches[batch_id], "completed")

            for label, target in (("a live batch (proxied)", live.batch.id), ("a terminal batch (registry)", batch_id)):
                get = pb.GetBatchRequest(batch_id=target, provider="openai")
                print(f"GetBatch of {label}, {CALLS} calls")
                for concurrency in (1, CONCURRENCY):
                    direct = await _timed(
                        f"direct HTTP, concurrency {concurrency}",
                        CALLS,
                        functools.partial(http.get, f"/v1/batches/{target}", params={"provider": "openai"}),
                        concurrency,
                    )
                    proxied = await _timed(
                        f"gRPC, concurrency {concurrency}",
                        CALLS,
                        functools.partial(stub.GetBatch, get, metadata=GRPC_AUTH),
                        concurrency,
                    )
                    print(f"  -> gRPC / direct throughput: {proxied / direct:.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (simulator + server + clients): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
    asyncio.run(results_cache.run())
    asyncio.run(watch_fanout.run())
