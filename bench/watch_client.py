"""One subscriber process of the watch fan-out bench: `python -m bench.watch_client ...` (started by
bench/watch_fanout.py, several at once, so the client side is not what the bench measures).

Reads the batch ids (a JSON list, one line) from stdin, then opens `--count` WatchBatch streams over
`--channels` channels; subscriber j follows ids[(offset + j) % len(ids)]. Prints `READY <ok> <failed>` once every
stream has its snapshot (or failed), records when each status change arrived (this machine's wall clock, which the
simulator shares), and when every stream has ended (or at `--deadline`) writes them as JSON to `--out` and prints
`DONE`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc, watch_pb2

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

AUTH = (("authorization", "Bearer sim-key-alice"),)
# (batch id, upstream status, arrived at, observed at by the service), wall-clock seconds
Arrival = tuple[str, str, float, float]


class _Tally:
    def __init__(self, count: int) -> None:
        self.count = count
        self.ready = 0
        self.failed_before_ready = 0
        self.arrivals: list[Arrival] = []
        self.errors: Counter[str] = Counter()
        self.ended_ok = 0
        self.all_ready = asyncio.Event()

    def settled(self, ok: bool) -> None:
        if ok:
            self.ready += 1
        else:
            self.failed_before_ready += 1
        if self.ready + self.failed_before_ready == self.count:
            self.all_ready.set()


async def _follow(
    stub: BatchServiceAsyncStub, batch_id: str, tally: _Tally, gate: asyncio.Semaphore, deadline: float
) -> None:
    snapshot = False
    await gate.acquire()
    try:
        call = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id), metadata=AUTH, timeout=deadline)
        async for response in call:
            now = time.time()
            event = response.event
            if not snapshot:
                snapshot = True
                gate.release()
                tally.settled(True)
                continue
            if event.kind == watch_pb2.BATCH_EVENT_KIND_CHANGE and event.batch.status != event.previous_status:
                observed = event.observed_at.seconds + event.observed_at.nanos / 1e9
                tally.arrivals.append((batch_id, event.batch.upstream_status, now, observed))
        tally.ended_ok += 1
    except grpc.aio.AioRpcError as error:
        tally.errors[error.code().name] += 1
    finally:
        if not snapshot:
            gate.release()
            tally.settled(False)


async def _main(args: argparse.Namespace, ids: list[str]) -> dict[str, object]:
    tally = _Tally(args.count)
    gate = asyncio.Semaphore(args.connect_concurrency)
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{args.port}") for _ in range(args.channels)]
    try:
        stubs: list[BatchServiceAsyncStub] = [batch_service_pb2_grpc.BatchServiceStub(c) for c in channels]
        tasks = [
            asyncio.ensure_future(
                _follow(stubs[j % len(stubs)], ids[(args.offset + j) % len(ids)], tally, gate, args.deadline)
            )
            for j in range(args.count)
        ]
        await asyncio.wait_for(tally.all_ready.wait(), args.deadline)
        print(f"READY {tally.ready} {tally.failed_before_ready}", flush=True)
        _, pending = await asyncio.wait(tasks, timeout=args.deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            tally.errors["UNFINISHED"] += len(pending)
    finally:
        for channel in channels:
            await channel.close()
    return {"arrivals": tally.arrivals, "errors": dict(tally.errors), "ended_ok": tally.ended_ok}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.watch_client", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        ids = json.loads(sys.stdin.readline())  # the parent sends them once the batches exist
        out = asyncio.run(_main(args, ids))
        Path(args.out).write_text(json.dumps(out))
        print("DONE", flush=True)
    except Exception as error:
        print(f"watch_client failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
