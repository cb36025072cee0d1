"""StreamResults through the gateway (first call) vs from the results cache (repeated calls), with the server's
memory, each server and the simulator in a process of its own. Bounded: a few streams, then everything stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import httpx
from google.protobuf import struct_pb2

from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

AUTH = (("authorization", "Bearer sim-key-alice"),)
ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def _process(args: list[str], env: dict[str, str], ready: str) -> AsyncIterator[tuple[int, int]]:
    """Start `python -m ...`; yields (pid, port) once `ready` (a regex with the port as group 1) is printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            if not line:
                raise RuntimeError(f"{args} exited before it was ready")
            if match := re.search(ready, line):
                break
        drain = asyncio.ensure_future(process.stdout.read())
        yield process.pid, int(match.group(1))
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
        drain.cancel()


def _memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, peak / 1024


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stream(stub: Stub, batch_id: str) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    async for _ in stub.StreamResults(pb.StreamResultsRequest(batch_id=batch_id), metadata=AUTH):
        count += 1
    return count, time.perf_counter() - started


async def _create(stub: Stub, http: httpx.AsyncClient, n: int) -> str:
    body = struct_pb2.Struct()
    body.update({"messages": [{"role": "user", "content": "what is the capital of France? " * 4}], "max_tokens": 64})
    requests = [pb.BatchRequestItem(custom_id=f"r{i}", body=body) for i in range(n)]
    reply = await stub.CreateBatch(pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=requests), metadata=AUTH)
    (await http.post(f"/_simulator/batches/{reply.batch.id}/status", json={"status": "completed"})).raise_for_status()
    return str(reply.batch.id)


async def run(items: int = 10_000, small: int = 1_000) -> None:
    state = Path(tempfile.mkdtemp(prefix="otari-bench-")) / "state.db"
    simulator = ["-m", "otari_batch_grpc.simulator", "--port", "0", "--stage-seconds", "3600"]
    async with _process(simulator, {}, r"simulator at http://127\.0\.0\.1:(\d+)") as (_, sim_port):
        url = f"http://127.0.0.1:{sim_port}"
        env = {"GATEWAY_URL": url, "STATE_DB": str(state), "GRPC_LISTEN": "127.0.0.1:0", "LOG_LEVEL": "INFO"}
        ready = r"serving on .*\(port (\d+)\)"
        async with httpx.AsyncClient(base_url=url) as http:
            async with (
                _process(["-m", "otari_batch_grpc.server"], env, ready) as (pid, port),
                grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
            ):
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                big = await _create(stub, http, items)
                little = await _create(stub, http, small)
                cpu = _cpu_seconds(pid)
                n, through_gateway = await _stream(stub, big)
                gateway_cpu = _cpu_seconds(pid) - cpu
                _, peak_after_gateway = _memory_mib(pid)
                cpu = _cpu_seconds(pid)
                cached = [(await _stream(stub, big))[1] for _ in range(3)]
                cached_cpu = (_cpu_seconds(pid) - cpu) / 3
            print(f"StreamResults of a completed {n:,}-item batch (server and simulator in their own processes)")
            print(f"  first call, through the gateway  {n / through_gateway:>9.0f} items/s  ({through_gateway:.2f} s)")
            best = min(cached)
            print(f"  repeated call, from the cache    {n / best:>9.0f} items/s  ({best:.2f} s, best of 3)")
            print(f"  -> cache / gateway speed: {through_gateway / best:.1f}x (one message per item: both paths share")
            print("     grpcio's per-message cost, which bounds the cached path; the simulator answers instantly)")
            print(f"  server CPU per stream: {gateway_cpu:.2f} s through the gateway, {cached_cpu:.2f} s from the cache"
                  f" ({gateway_cpu / max(cached_cpu, 1e-3):.1f}x less)")  # fmt: skip
            print(f"  server peak RSS after the gateway path: {peak_after_gateway:.0f} MiB")
            # A fresh server on the same database: memory while streaming only from the cache, small then large.
            async with (
                _process(["-m", "otari_batch_grpc.server"], env, ready) as (pid, port),
                grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
            ):
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                await _stream(stub, little)
                _, peak_small = _memory_mib(pid)
                await _stream(stub, big)
                _, peak_big = _memory_mib(pid)
            print(f"  cache-only server peak RSS: {peak_small:.0f} MiB after {small:,} items, "
                  f"{peak_big:.0f} MiB after {n:,} items (+{peak_big - peak_small:.1f} MiB)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(run())
