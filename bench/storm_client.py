"""Subscribers arriving at once, in a process of their own: `python -m bench.storm_client ...` (started by
bench/storm.py, several at once, so the client side is not what the bench measures).

Steered by JSON lines on stdin:
- {"ids": [...]}: open `--count` WatchBatch streams, OPENING at a time, subscriber j on ids[(offset + j) % len(ids)];
  print `SNAPSHOTS <ok> <failed> <slowest> <all>` once each has its first event (slowest: the longest any stream
  waited from its open to its first event; all: from the first open to the last first event, seconds);
- {"resume": PORT}: the server was restarted (the streams ended): reopen each with the last resume_token it got,
  at PORT, the same way; print `RESUMED <ok> <failed> <slowest> <all>` once each has its first event again;
- {"stop": true}: cancel every stream and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING

import grpc

from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

CHANNEL_STREAMS = 250  # streams per channel (one HTTP/2 connection each)
# Streams being opened at once per process, each waiting for its first event: what a client's channel pool does.
# (grpc-core cancels some of thousands of streams opened on a fresh connection in one go.)
OPENING = 500


class Subscriber:
    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.token = ""
        self.first: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waited = 0.0  # seconds from its open to its first event

    async def follow(self, stub: BatchServiceAsyncStub, key: str, opening: asyncio.Semaphore) -> None:
        """Until the stream ends (the server stops, or this process is told to stop)."""
        request = pb.WatchBatchRequest(batch_id=self.batch_id, resume_token=self.token)
        metadata = (("authorization", f"Bearer {key}"),)
        await opening.acquire()
        opened = time.monotonic()
        try:
            async for response in stub.WatchBatch(request, metadata=metadata):
                if response.event.resume_token:
                    self.token = response.event.resume_token
                if not self.first.done():
                    self.waited = time.monotonic() - opened
                    self.first.set_result(True)
                    opening.release()
        except grpc.aio.AioRpcError as error:
            if not self.first.done():  # failed before its first event: say why
                print(
                    f"stream failed after {time.monotonic() - opened:.1f} s: {error.code().name}: {error.details()} "
                    f"{error.debug_error_string()}",
                    file=sys.stderr,
                    flush=True,
                )
        except Exception as error:
            if not self.first.done():
                print(f"stream failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        else:
            if not self.first.done():
                print("stream ended, with no error, before its first event", file=sys.stderr, flush=True)
        finally:
            if not self.first.done():
                self.first.set_result(False)
                opening.release()


async def _open(
    subscribers: list[Subscriber], port: int, key: str
) -> tuple[list[asyncio.Task[None]], list[grpc.aio.Channel]]:
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, len(subscribers) // CHANNEL_STREAMS))
    ]
    stubs: list[BatchServiceAsyncStub] = [batch_service_pb2_grpc.BatchServiceStub(c) for c in channels]
    await asyncio.gather(*(c.channel_ready() for c in channels))
    opening = asyncio.Semaphore(OPENING)
    tasks = [asyncio.ensure_future(s.follow(stubs[j % len(stubs)], key, opening)) for j, s in enumerate(subscribers)]
    return tasks, channels


async def _phase(
    word: str, subscribers: list[Subscriber], port: int, key: str, deadline: float
) -> tuple[list[asyncio.Task[None]], list[grpc.aio.Channel]]:
    started = time.monotonic()
    tasks, channels = await _open(subscribers, port, key)
    done = await asyncio.wait_for(asyncio.gather(*(s.first for s in subscribers)), deadline)
    ok = sum(1 for d in done if d)
    slowest = max(s.waited for s in subscribers)
    print(f"{word} {ok} {len(done) - ok} {slowest:.3f} {time.monotonic() - started:.3f}", flush=True)
    return tasks, channels


async def _main(args: argparse.Namespace) -> None:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    subscribers: list[Subscriber] = []
    tasks: list[asyncio.Task[None]] = []
    channels: list[grpc.aio.Channel] = []
    while line := await reader.readline():
        order = json.loads(line)
        if "ids" in order:
            ids = order["ids"]
            subscribers = [Subscriber(ids[(args.offset + j) % len(ids)]) for j in range(args.count)]
            tasks, channels = await _phase("SNAPSHOTS", subscribers, args.port, args.key, args.deadline)
        elif "resume" in order:
            await asyncio.gather(*tasks)  # every stream ended with the server that stopped
            for channel in channels:
                await channel.close()
            for subscriber in subscribers:
                subscriber.first = asyncio.get_running_loop().create_future()
            tasks, channels = await _phase("RESUMED", subscribers, int(order["resume"]), args.key, args.deadline)
        elif order.get("stop"):
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storm_client", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--key", default="sim-key-alice")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    try:
        asyncio.run(_main(args))
    except Exception as error:
        print(f"storm_client failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
