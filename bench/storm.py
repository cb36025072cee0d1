"""Subscriptions at fleet scale (#20), against a simulator as slow as the real gateway (LATENCY a request, at most
CONCURRENCY at once), each part in fresh processes, median of 3 runs:

- storm: BATCHES live batches made through the service, then SUBSCRIBERS WatchBatch streams of one key opened at
  once (client processes of their own, 500 opening at a time in each): the longest any waited from its open to its
  snapshot (and the time until all had one), and the gateway GETs meanwhile; then the service restarts (the same
  state database) and every subscriber resumes with its token: the same figures. Polls go on as usual
  (WATCH_POLL_MIN 1 s, a loop's first one interval after it starts); "gateway calls" are the storm's: the GETs the
  simulator answered meanwhile less the service's own polls (its otari_batch_grpc_watch_polls_total), which are
  printed beside them.
- shared reads: 300 concurrent GetBatch of one live batch (watched by nobody, so no poll reads it) by one caller:
  all OK, and the GETs of that batch they cost.
- isolation: while one key holds HELD streams, another caller's GetBatch of its finished batch (answered by the
  service) and of its live batch (a gateway read), 100 of each, one at a time; the live one against the gateway's
  own latency, a direct GET measured beside it. The per-caller gateway limit is the default (8 in flight): what
  keeps one caller's polls from taking every gateway slot.
- idle: IDLE streams opened and left idle: the server's RSS growth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import procs
from bench.report import Runs, Sheet, at_most, percentile
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

LATENCY, CONCURRENCY = 0.05, 20
CLIENT_STREAMS = 2_500  # streams per client process
SNAPSHOT_TARGET_S = 2.0
RESUME_TARGET_S = 2.0
SHARED_READS = 300
SHARED_CALLS_TARGET = 10
TERMINAL_P99_TARGET_MS = 100.0
LIVE_OVER_GATEWAY_TARGET_MS = 50.0
RSS_TARGET_MIB = 300.0
BOB = (("authorization", "Bearer sim-key-bob"),)


@dataclass(frozen=True)
class Sizes:
    runs: int
    batches: int
    subscribers: int
    held: int
    idle: int


FULL = Sizes(runs=3, batches=500, subscribers=5_000, held=2_000, idle=10_000)
QUICK = Sizes(runs=3, batches=100, subscribers=1_000, held=500, idle=2_000)


async def _create(stub: BatchServiceAsyncStub, n: int, metadata: tuple[tuple[str, str], ...]) -> list[str]:
    request = pb.CreateBatchRequest(
        model="openai:gpt-4o-mini",
        requests=[pb.BatchRequestItem(custom_id="r0", body_json='{"messages": [{"role": "user", "content": "hi"}]}')],
    )
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> str:
        async with gate:
            return (await stub.CreateBatch(request, metadata=metadata, timeout=60)).batch.id

    return list(await asyncio.gather(*(one() for _ in range(n))))


class Clients:
    """Subscriber processes (bench/storm_client.py), steered over stdin, CLIENT_STREAMS streams each."""

    def __init__(self, work: Path, port: int, count: int, key: str = procs.KEY) -> None:
        self.work, self.port, self.count, self.key = work, port, count, key
        self.processes: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Clients:
        n = max(1, math.ceil(self.count / CLIENT_STREAMS))
        for k in range(n):
            count = self.count // n + (1 if k < self.count % n else 0)
            argv = ["-m", "bench.storm_client", "--port", str(self.port), "--count", str(count)]
            argv += ["--offset", str(k * (self.count // n)), "--key", self.key]
            with (self.work / f"storm-client-{k}.log").open("wb") as log:
                self.processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        *argv,
                        cwd=procs.ROOT,
                        env=procs.clean_env(),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=log,
                    )
                )
        return self

    async def __aexit__(self, *_: object) -> None:
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, BrokenPipeError, ConnectionResetError):
                    await self.send({"stop": True})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()  # by its PID: exactly this child
                await process.wait()

    async def send(self, order: dict[str, Any]) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write((json.dumps(order) + "\n").encode())
            await process.stdin.drain()

    async def phase(self, order: dict[str, Any], word: str, within: float = 120.0) -> tuple[float, float]:
        """Send the order to every client: the longest any stream waited from its open to its first event, and the
        time until every stream had one (seconds, the slowest client's)."""
        await self.send(order)
        slowest = everyone = 0.0
        for process in self.processes:
            assert process.stdout is not None
            async with asyncio.timeout(within):
                while not (line := (await process.stdout.readline()).decode()).startswith(word):
                    if not line:
                        raise RuntimeError(f"a subscriber process exited ({await process.wait()}) before {word}")
            _, ok, failed, waited, all_of_them = line.split()
            if int(failed):
                raise RuntimeError(f"{failed} of {int(ok) + int(failed)} streams failed before their first event")
            slowest, everyone = max(slowest, float(waited)), max(everyone, float(all_of_them))
        return slowest, everyone


async def _polls(http: httpx.AsyncClient, url: str) -> int:
    """Polls the service's watch hub has made (every outcome), from its /metrics. A poll is counted after its GET
    reached the simulator, so polls are read before GETs at the end of a phase (and after them at its start): a
    poll in flight then counts as a call, never as a negative one."""
    text = (await http.get(url)).raise_for_status().text
    return sum(
        int(sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "otari_batch_grpc_watch_polls"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


async def _gets(http: httpx.AsyncClient, batch_id: str | None = None) -> int:
    """GETs the simulator answered: of every batch, or of one."""
    stats: dict[str, Any] = (await http.get("/_simulator/stats")).raise_for_status().json()
    return int(stats["requests"].get("get", 0) if batch_id is None else stats["reads"].get(batch_id, 0))


@contextlib.asynccontextmanager
async def _stub(port: int) -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield batch_service_pb2_grpc.BatchServiceStub(channel)


async def _storm(sizes: Sizes, runs: Runs) -> None:
    with procs.workdir() as work, procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY) as sim:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", timeout=30.0) as http,
            contextlib.AsyncExitStack() as stack,
        ):
            with procs.server(work, sim.port, METRICS_ADDRESS="127.0.0.1:0") as srv:
                metrics = procs.metrics_url(srv)
                clients = await stack.enter_async_context(Clients(work, srv.port, sizes.subscribers))
                async with _stub(srv.port) as stub:
                    ids = await _create(stub, sizes.batches, procs.GRPC_AUTH)
                    before, polled = await _gets(http), await _polls(http, metrics)
                    slowest, everyone = await clients.phase({"ids": ids}, "SNAPSHOTS")
                    polls, gets = await _polls(http, metrics) - polled, await _gets(http) - before
                    runs.add("storm_s", slowest)
                    runs.add("storm_all_s", everyone)
                    runs.add("storm_calls", float(gets - polls))
                    runs.add("storm_polls", float(polls))
                    (unwatched,) = await _create(stub, 1, procs.GRPC_AUTH)  # its GETs are the reads' alone (no poll)
                    before = await _gets(http, unwatched)
                    read = pb.GetBatchRequest(batch_id=unwatched)
                    replies = await asyncio.gather(
                        *(stub.GetBatch(read, metadata=procs.GRPC_AUTH, timeout=60) for _ in range(SHARED_READS)),
                        return_exceptions=True,
                    )
                    runs.add("shared_failed", float(sum(isinstance(r, BaseException) for r in replies)))
                    runs.add("shared_calls", float(await _gets(http, unwatched) - before))
                procs.stop(srv.process)  # the restart: the clients' streams end UNAVAILABLE
            with procs.server(work, sim.port, name="server-restarted", METRICS_ADDRESS="127.0.0.1:0") as again:
                metrics = procs.metrics_url(again)
                before, polled = await _gets(http), await _polls(http, metrics)
                slowest, everyone = await clients.phase({"resume": again.port}, "RESUMED")
                polls, gets = await _polls(http, metrics) - polled, await _gets(http) - before
                runs.add("resume_s", slowest)
                runs.add("resume_all_s", everyone)
                runs.add("resume_calls", float(gets - polls))
                runs.add("resume_polls", float(polls))


async def _isolation(sizes: Sizes, runs: Runs) -> None:
    settings = {"LIMIT_UPSTREAM_PER_CALLER": "8", "LIMIT_UPSTREAM_QUEUE_PER_CALLER": "100000"}
    with (
        procs.workdir() as work,
        procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY) as sim,
        procs.server(work, sim.port, **settings) as srv,
    ):
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", timeout=30.0) as http,
            _stub(srv.port) as stub,
        ):
            ids = await _create(stub, sizes.batches, procs.GRPC_AUTH)
            done, live = await _create(stub, 2, BOB)
            (await http.post(f"/_simulator/batches/{done}/status", json={"status": "completed"})).raise_for_status()
            await stub.GetBatch(pb.GetBatchRequest(batch_id=done), metadata=BOB)  # now known to be finished
            async with Clients(work, srv.port, sizes.held) as clients:
                await clients.phase({"ids": ids}, "SNAPSHOTS")
                terminal, alive, direct = [], [], []
                headers = {"authorization": "Bearer sim-key-bob"}
                for _ in range(100):
                    started = time.perf_counter()
                    await stub.GetBatch(pb.GetBatchRequest(batch_id=done), metadata=BOB, timeout=30)
                    terminal.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    await stub.GetBatch(pb.GetBatchRequest(batch_id=live), metadata=BOB, timeout=30)
                    alive.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    (
                        await http.get(f"/v1/batches/{live}", params={"provider": "openai"}, headers=headers)
                    ).raise_for_status()
                    direct.append(time.perf_counter() - started)
    runs.add("terminal_p99", percentile(terminal, 99) * 1000)
    runs.add("live_p99", percentile(alive, 99) * 1000)
    runs.add("direct_p99", percentile(direct, 99) * 1000)
    runs.add("live_over_direct", (percentile(alive, 99) - percentile(direct, 99)) * 1000)


async def _idle(sizes: Sizes, runs: Runs) -> None:
    with (
        procs.workdir() as work,
        procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY) as sim,
        procs.server(work, sim.port) as srv,
    ):
        async with _stub(srv.port) as stub:
            ids = await _create(stub, sizes.batches, procs.GRPC_AUTH)
            await asyncio.sleep(1.0)
            before, _ = procs.memory_mib(srv.pid)
            async with Clients(work, srv.port, sizes.idle) as clients:
                await clients.phase({"ids": ids}, "SNAPSHOTS", within=300.0)
                await asyncio.sleep(3.0)  # idle: polls only
                after, _ = procs.memory_mib(srv.pid)
    runs.add("rss_growth", after - before)


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    sheet.section(
        f"Subscriptions at fleet scale: simulator at {LATENCY * 1000:.0f} ms a request, {CONCURRENCY} at a time; "
        f"{sizes.subscribers:,} subscribers on {sizes.batches} live batches; median of {sizes.runs} runs"
    )
    runs = Runs()
    parts = {
        _storm: (
            "storm_s",
            "storm_all_s",
            "storm_calls",
            "storm_polls",
            "shared_failed",
            "shared_calls",
            "resume_s",
            "resume_all_s",
            "resume_calls",
            "resume_polls",
        ),
        _isolation: ("terminal_p99", "live_p99", "direct_p99", "live_over_direct"),
        _idle: ("rss_growth",),
    }
    for _ in range(sizes.runs):
        for part, keys in parts.items():
            with runs.measuring(*keys):
                await part(sizes, runs)
    s = f"{sizes.subscribers}_subs"
    sheet.figure(
        f"storm.{s}.slowest_snapshot_after_open",
        runs,
        "storm_s",
        "s",
        at_most(SNAPSHOT_TARGET_S),
        note=f"all {sizes.subscribers:,} had theirs {_median(runs, 'storm_all_s'):.2f} s after the first opened",
    )
    sheet.figure(
        f"storm.{s}.gateway_calls",
        runs,
        "storm_calls",
        "calls",
        at_most(sizes.batches),
        note=f"the service's own polls meanwhile: {_median(runs, 'storm_polls'):.0f}",
    )
    sheet.figure(
        f"storm.{s}.after_restart.slowest_resume",
        runs,
        "resume_s",
        "s",
        at_most(RESUME_TARGET_S),
        note=f"all resumed {_median(runs, 'resume_all_s'):.2f} s after the first reopened",
    )
    sheet.figure(
        f"storm.{s}.after_restart.gateway_calls",
        runs,
        "resume_calls",
        "calls",
        at_most(sizes.batches),
        note=f"the service's own polls meanwhile: {_median(runs, 'resume_polls'):.0f}",
    )
    sheet.figure(f"storm.shared_reads_{SHARED_READS}.failed", runs, "shared_failed", "calls", at_most(0))
    sheet.figure(
        f"storm.shared_reads_{SHARED_READS}.gateway_calls", runs, "shared_calls", "calls", at_most(SHARED_CALLS_TARGET)
    )
    h = f"{sizes.held}_streams_held"
    sheet.figure(f"isolation.{h}.other_terminal_get_p99", runs, "terminal_p99", "ms", at_most(TERMINAL_P99_TARGET_MS))
    sheet.figure(
        f"isolation.{h}.other_live_get_p99_over_gateway",
        runs,
        "live_over_direct",
        "ms",
        at_most(LIVE_OVER_GATEWAY_TARGET_MS),
        note=f"live p99 {_median(runs, 'live_p99'):.0f} ms, the gateway's own p99 {_median(runs, 'direct_p99'):.0f} ms",
    )
    sheet.figure(f"idle.{sizes.idle}_subs.server_rss_growth", runs, "rss_growth", "MiB", at_most(RSS_TARGET_MIB))


def _median(runs: Runs, key: str) -> float:
    values = sorted(runs.values.get(key, []))
    return values[len(values) // 2] if values else math.nan
