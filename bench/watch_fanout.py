"""1,000 WatchBatch subscribers on 100 live batches: what the gateway sees, how fast changes arrive, what the server
costs. The simulator and the server run in processes of their own; the subscribers run here. Bounded: it ends when
every batch is terminal, or after MAX_SECONDS."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import httpx
from google.protobuf import struct_pb2

from bench.results_cache import _cpu_seconds, _memory_mib, _process
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

AUTH = (("authorization", "Bearer sim-key-alice"),)
BATCHES = 100
SUBSCRIBERS = 1_000
POLL_SECONDS = 0.5
STAGE_SECONDS = 3.0
MAX_SECONDS = 60.0
TRANSITIONS = ("in_progress", "finalizing", "completed")


async def _subscriber(stub: Stub, batch_id: str, arrivals: list[tuple[str, str, float]]) -> float:
    """Follow one batch to its end, noting when each new status arrived; returns how long it followed."""
    started = time.time()
    call = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id), metadata=AUTH, timeout=MAX_SECONDS)
    async for response in call:
        event = response.event
        if event.batch.status != event.previous_status:
            arrivals.append((batch_id, event.batch.upstream_status, time.time()))
    return time.time() - started


async def run() -> None:
    state = Path(tempfile.mkdtemp(prefix="otari-bench-")) / "state.db"
    simulator = ["-m", "otari_batch_grpc.simulator", "--port", "0", "--stage-seconds", str(STAGE_SECONDS)]
    async with _process(simulator, {}, r"simulator at http://127\.0\.0\.1:(\d+)") as (_, sim_port):
        url = f"http://127.0.0.1:{sim_port}"
        env = {
            "GATEWAY_URL": url,
            "STATE_DB": str(state),
            "GRPC_LISTEN": "127.0.0.1:0",
            "WATCH_POLL_MIN": str(POLL_SECONDS),
            "WATCH_POLL_MAX": str(POLL_SECONDS),
        }
        async with (
            httpx.AsyncClient(base_url=url) as http,
            _process(["-m", "otari_batch_grpc.server"], env, r"serving on .*\(port (\d+)\)") as (pid, port),
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            stub = batch_service_pb2_grpc.BatchServiceStub(channel)
            body = struct_pb2.Struct()
            body.update({"messages": [{"role": "user", "content": "hi"}]})
            requests = [pb.BatchRequestItem(custom_id=f"r{i}", body=body) for i in range(20)]
            ids = []
            for _ in range(BATCHES):
                reply = await stub.CreateBatch(
                    pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=requests), metadata=AUTH
                )
                ids.append(reply.batch.id)
            arrivals: list[tuple[str, str, float]] = []
            gets_before = (await http.get("/_simulator/stats")).json()["requests"].get("get", 0)
            cpu_before = _cpu_seconds(pid)
            started = time.time()
            subscribers = [
                asyncio.ensure_future(_subscriber(stub, ids[i % BATCHES], arrivals)) for i in range(SUBSCRIBERS)
            ]
            done, pending = await asyncio.wait(subscribers, timeout=MAX_SECONDS)
            elapsed = time.time() - started
            for task in pending:
                task.cancel()
            cpu = _cpu_seconds(pid) - cpu_before
            _, peak = _memory_mib(pid)
            gets = (await http.get("/_simulator/stats")).json()["requests"].get("get", 0) - gets_before
            timelines = {i: (await http.get(f"/_simulator/batches/{i}/timeline")).json() for i in ids}
    polls = gets - SUBSCRIBERS  # each subscriber's own authorization GET is not polling
    latencies = sorted(at - timelines[batch_id][status] for batch_id, status, at in arrivals if status in TRANSITIONS)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    # Without the service, each subscriber would poll at the same interval for as long as it followed its batch.
    naive = sum(task.result() / POLL_SECONDS for task in done) / elapsed
    print(f"WatchBatch: {SUBSCRIBERS:,} subscribers on {BATCHES} live batches, poll interval {POLL_SECONDS} s")
    print(f"  ran {elapsed:.1f} s until every batch was terminal ({len(done):,} streams ended OK)")
    print(f"  upstream polls: {polls / elapsed:.0f}/s, against {naive:.0f}/s for {SUBSCRIBERS:,} clients polling "
          f"themselves ({naive / (polls / elapsed):.1f}x less); plus one authorizing GET per subscriber")  # fmt: skip
    print(f"  status change -> subscriber: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
          f"(target p99 <= {POLL_SECONDS * 1000 + 100:.0f} ms) over {len(latencies):,} deliveries")  # fmt: skip
    print(f"  server CPU {cpu:.1f} s ({cpu / elapsed * 100:.0f}% of a core), peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(run())
