"""WatchBatch fan-out: N subscribers over 100 live batches (N = 1,000 and, without --quick, 10,000), the 100 status
changes within SPREAD seconds (one: a burst).

Each run: a fresh simulator (its stage an hour, so nothing moves until the bench says so; as slow as the real
gateway: 50 ms a request, 20 at a time), a fresh server polling
every POLL_SECONDS (WATCH_POLL_MIN = WATCH_POLL_MAX: a fixed interval, so the gateway load has a nominal value),
100 batches created through the service SPREAD seconds apart, then the subscribers, in CLIENT processes of their
own. Once every subscriber has its snapshot and a warm-up has passed, the steady phase:

- the bench sets the simulator's stage length so that each batch turns in_progress LEAD + (its creation offset)
  seconds from now: 100 status changes spread over SPREAD seconds, each at an exact instant of the simulator's
  clock (GET /_simulator/batches/{id}/timeline);
- delivery latency = when the change reached a subscriber (its process's wall clock, the same clock on this
  machine) - when the simulator changed the batch. A change a subscriber never got counts as infinitely late;
- server CPU = /proc/<pid>/stat user+system over the steady phase / its wall time (100% = one core);
- polls = GETs the simulator counted (/_simulator/stats) over the steady phase, against 100 / POLL_SECONDS per
  second.

The latency target (p99 <= 600 ms) includes the wait for the next poll (up to POLL_SECONDS = 500 ms): what the
service itself adds (fan-out, after the poll saw the change) is shown too, from each event's observed_at.
Then every batch is forced to completed, the streams end OK, and everything stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
from google.protobuf import struct_pb2

from bench import procs
from bench.report import Runs, Sheet, Target, at_most, percentile, within
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

BATCHES = 100
POLL_SECONDS = 0.5
LEAD = 1.0  # steady phase before the first change
TAIL = POLL_SECONDS + 1.0  # after the last change: its poll, its fan-out
TARGETED = 1_000  # the subscriber count the CPU and polls targets are for
# p99 change -> subscriber, by subscriber count
P99_TARGET_MS = {1_000: 600.0, 10_000: 1_000.0}
CPU_TARGET_PCT = 50.0
LATENCY, CONCURRENCY = 0.05, 20  # the simulator: as slow as the real gateway
POLL_TOLERANCE = 0.10
READY_TIMEOUT = 180.0
END_TIMEOUT = 60.0
CLIENT_DEADLINE = 420.0


@dataclass(frozen=True)
class Sizes:
    runs: int
    subscribers: tuple[int, ...]
    spread: float  # seconds over which the 100 changes happen
    warmup: float


FULL = Sizes(runs=3, subscribers=(1_000, 10_000), spread=1.0, warmup=3.0)
QUICK = Sizes(runs=3, subscribers=(1_000,), spread=1.0, warmup=1.0)


def _clients(subscribers: int) -> int:
    return 1 if subscribers <= 200 else 2 if subscribers <= 2_000 else 4


async def _create(stub: BatchServiceAsyncStub, spread: float) -> list[str]:
    body = struct_pb2.Struct()
    body.update({"messages": [{"role": "user", "content": "hi"}]})
    request = pb.CreateBatchRequest(
        model="openai:gpt-4o-mini", requests=[pb.BatchRequestItem(custom_id="r0", body=body)]
    )
    started = time.monotonic()

    async def one(i: int) -> str:  # each at its own instant, not after the one before (a create takes 50 ms)
        await asyncio.sleep(max(0.0, started + i * spread / BATCHES - time.monotonic()))
        return (await stub.CreateBatch(request, metadata=procs.GRPC_AUTH, timeout=60)).batch.id

    return list(await asyncio.gather(*(one(i) for i in range(BATCHES))))


@dataclass
class _Client:
    process: asyncio.subprocess.Process
    out: Path


async def _start_clients(work: Path, port: int, subscribers: int) -> list[_Client]:
    """The subscriber processes, started early (their imports overlap the batches' creation); they wait for the
    batch ids on stdin."""
    n = _clients(subscribers)
    clients: list[_Client] = []
    offset = 0
    for k in range(n):
        count = subscribers // n + (1 if k < subscribers % n else 0)
        out = work / f"client-{k}.json"
        argv = ["-m", "bench.watch_client", "--port", str(port), "--count", str(count), "--offset", str(offset)]
        argv += ["--channels", str(max(1, math.ceil(count / 250))), "--deadline", str(CLIENT_DEADLINE)]
        argv += ["--out", str(out)]
        with (work / f"client-{k}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                cwd=procs.ROOT,
                env=procs.clean_env(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        clients.append(_Client(process, out))
        offset += count
    return clients


async def _send_ids(clients: list[_Client], ids: list[str]) -> None:
    line = (json.dumps(ids) + "\n").encode()
    for client in clients:
        assert client.process.stdin is not None
        client.process.stdin.write(line)
        await client.process.stdin.drain()
        client.process.stdin.close()


async def _line(client: _Client, word: str, within_seconds: float) -> str:
    assert client.process.stdout is not None
    async with asyncio.timeout(within_seconds):
        while True:
            line = (await client.process.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"a subscriber process exited ({await client.process.wait()}) before {word}")
            if line.startswith(word):
                return line


async def _stop_clients(clients: list[_Client]) -> None:
    for client in clients:
        if client.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                client.process.kill()  # by its PID: Process.kill signals exactly this child
            await client.process.wait()


async def _run(subscribers: int, sizes: Sizes, runs: Runs) -> None:
    settings = {"WATCH_POLL_MIN": str(POLL_SECONDS), "WATCH_POLL_MAX": str(POLL_SECONDS)}
    with (
        procs.workdir() as work,
        procs.simulator(work, latency=LATENCY, concurrency=CONCURRENCY) as sim,
        procs.server(work, sim.port, **settings) as srv,
    ):
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", timeout=30.0) as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
        ):
            stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(channel)
            clients = await _start_clients(work, srv.port, subscribers)
            try:
                ids = await _create(stub, sizes.spread)
                connect_started = time.monotonic()
                await _send_ids(clients, ids)
                ready = [await _line(c, "READY", READY_TIMEOUT) for c in clients]
                failed = sum(int(line.split()[2]) for line in ready)
                if failed:
                    raise RuntimeError(f"{failed} of {subscribers} subscribers failed before their snapshot")
                runs.add(f"connect_{subscribers}", time.monotonic() - connect_started)
                await asyncio.sleep(sizes.warmup)
                ours = [sim.pid, os.getpid(), *(c.process.pid for c in clients)]
                measured = await _steady(http, srv.pid, ours, ids)
                for batch_id in ids:  # end every stream: terminal
                    r = await http.post(f"/_simulator/batches/{batch_id}/status", json={"status": "completed"})
                    r.raise_for_status()
                for client in clients:
                    await _line(client, "DONE", END_TIMEOUT)
                    await asyncio.wait_for(client.process.wait(), END_TIMEOUT)
            finally:
                await _stop_clients(clients)
            outs = [json.loads(c.out.read_text()) for c in clients]
    _settle(subscribers, measured, outs, runs)


@dataclass
class _Steady:
    seconds: float
    cpu: float
    polls: int
    changed_at: dict[str, float]  # batch id -> when the simulator turned it in_progress
    others: float  # user CPU seconds every process but the bench's own used meanwhile (another job on the machine)


async def _steady(http: httpx.AsyncClient, pid: int, ours: list[int], ids: list[str]) -> _Steady:
    async def gets() -> int:
        stats: dict[str, Any] = (await http.get("/_simulator/stats")).raise_for_status().json()
        return int(stats["requests"].get("get", 0))

    created = {i: float((await http.get(f"/_simulator/batches/{i}/timeline")).json()["validating"]) for i in ids}
    gets0, cpu0, wall0 = await gets(), procs.cpu_seconds(pid), time.time()
    ours = [*ours, pid]
    busy0, ours0 = procs.machine_user_seconds(), procs.user_of(ours)
    stage = wall0 + LEAD - min(created.values())
    (await http.post("/_simulator/clock", json={"stage_seconds": stage})).raise_for_status()
    changed_at = {i: c + stage for i, c in created.items()}
    await asyncio.sleep(max(changed_at.values()) + TAIL - time.time())
    cpu1, wall1 = procs.cpu_seconds(pid), time.time()
    others = procs.machine_user_seconds() - busy0 - (procs.user_of(ours) - ours0)
    gets1 = await gets()
    timeline = {i: float((await http.get(f"/_simulator/batches/{i}/timeline")).json()["in_progress"]) for i in ids}
    drift = max(abs(timeline[i] - changed_at[i]) for i in ids)
    if drift > 1e-3:
        raise RuntimeError(f"the simulator's timeline is not the one the bench set ({drift:.3f} s off)")
    return _Steady(wall1 - wall0, cpu1 - cpu0, gets1 - gets0, timeline, max(0.0, others))


def _settle(subscribers: int, steady: _Steady, outs: list[dict[str, Any]], runs: Runs) -> None:
    latencies: list[float] = []
    fanout: list[float] = []
    for out in outs:
        for batch_id, status, arrived, observed in out["arrivals"]:
            if status == "in_progress":
                latencies.append(arrived - steady.changed_at[batch_id])
                fanout.append(arrived - observed)
    missing = subscribers - len(latencies)
    latencies += [math.inf] * max(0, missing)
    errors: dict[str, int] = {}
    for out in outs:
        for code, n in out["errors"].items():
            errors[code] = errors.get(code, 0) + n
    if errors:
        print(f"   ({subscribers} subscribers: streams that did not end OK: {errors})", flush=True)
    nominal = BATCHES / POLL_SECONDS * steady.seconds
    runs.add(f"p99_{subscribers}", percentile(latencies, 99) * 1000)
    runs.add(f"p50_{subscribers}", percentile(latencies, 50) * 1000)
    runs.add(f"fanout_p99_{subscribers}", percentile(fanout, 99) * 1000)
    runs.add(f"missing_{subscribers}", float(missing))
    runs.add(f"cpu_{subscribers}", steady.cpu / steady.seconds * 100)
    runs.add(f"others_{subscribers}", steady.others / steady.seconds * 100)
    runs.add(f"polls_{subscribers}", steady.polls / nominal)


async def bench(sheet: Sheet, *, quick: bool) -> None:
    sizes = QUICK if quick else FULL
    sheet.section(
        f"WatchBatch fan-out over {BATCHES} live batches, poll every {POLL_SECONDS:g} s, "
        f"{sizes.spread:g} s of status changes, simulator {LATENCY * 1000:.0f} ms a request and {CONCURRENCY} at a "
        f"time, median of {sizes.runs} runs"
    )
    for subscribers in sizes.subscribers:
        runs = Runs()
        keys = [f"{k}_{subscribers}" for k in ("p99", "p50", "fanout_p99", "missing", "cpu", "others", "polls")]
        for _ in range(sizes.runs):
            with runs.measuring(*keys):
                await _run(subscribers, sizes, runs)
        targeted = subscribers == TARGETED

        def median(key: str, runs: Runs = runs, subscribers: int = subscribers) -> float:
            values = runs.values.get(f"{key}_{subscribers}")
            return statistics.median(values) if values else math.nan

        s = f"{subscribers}"
        sheet.figure(
            f"watch.{s}_subs.p99_change_to_subscriber",
            runs,
            f"p99_{subscribers}",
            "ms",
            at_most(P99_TARGET_MS[subscribers]) if subscribers in P99_TARGET_MS else None,
            note=f"p50 {median('p50'):.0f} ms; undelivered {median('missing'):.0f}",
        )
        sheet.figure(f"watch.{s}_subs.p99_service_fanout", runs, f"fanout_p99_{subscribers}", "ms", None)
        sheet.figure(
            f"watch.{s}_subs.server_cpu_steady",
            runs,
            f"cpu_{subscribers}",
            "%core",
            _aim(at_most(CPU_TARGET_PCT), targeted),
            note=f"other jobs on this machine meanwhile: {median('others'):.0f} %core user time",
        )
        sheet.figure(
            f"watch.{s}_subs.polls_vs_nominal",
            runs,
            f"polls_{subscribers}",
            "x",
            _aim(within(1.0, POLL_TOLERANCE), targeted),
            note=f"nominal {BATCHES / POLL_SECONDS:.0f}/s; subscribers connected in {median('connect'):.1f} s",
        )


def _aim(target: Target, targeted: bool) -> Target | None:
    """The target, at the subscriber count it is for; the scaling curve's other points are shown without one."""
    return target if targeted else None
