"""One soak client process: `python -m bench.soak_client --targets P1,P2,P3 --until EPOCH --seed N --out FILE`
(started by bench/soak.py, two at once).

Flows, each in a loop until `--until`: a create with a request_id (retried with the same one after UNAVAILABLE,
DEADLINE_EXCEEDED or RetryInfo), gets, a list page, sometimes a cancel, then the batch followed to its end by
WatchBatch, WatchBatches (its id listed) or WaitBatch, the streams dropped at random and resumed with the last
resume_token, and the results of a completed batch read with StreamResults, dropped and resumed at start_index.
Beside them, one WatchBatches of every live batch, dropped and resumed now and then.

Through the Python client (`BatchClient` over the three replicas' addresses: gRPC's round_robin) and its own
retries: each try of a unary call bounded by UNARY_DEADLINE, all of them by RETRY_BUDGET, waits jittered, RetryInfo
honoured, and broken streams resumed by the client; every try, failed ones included, is recorded here (the client's
`on_retry` names each failed one to the call in flight in its task: `Attempt`). The revoked key's client retries
nothing (every call of it is held against the bound). What it saw goes to `--out` as JSON lines (see `Record`), for
bench/soak_check.py to judge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import functools
import hashlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from otari_batch_grpc.client import BatchClient, BatchError
from otari_batch_grpc.v1 import batch_pb2, result_pb2, watch_pb2

T = TypeVar("T")
KEY = "sim-key-alice"
MODEL = "openai:gpt-4o-mini"
RETRY_BUDGET = 90.0  # seconds a call is retried for, at most (longer than any fault the soak injects)
UNARY_DEADLINE = 10.0  # seconds each try of a unary call may take
RETRY_ATTEMPTS = 30  # tries of a call, or reconnects of a stream since its last message (waits of at most 3 s)
WATCH_LIMIT = 150.0  # seconds a watch may take to see its batch end (it ends in ~10 s with no fault)
RETRIED = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"}
WHOLES = 0.25  # of the flows' batches, those of several parts (half of them with re-runs)


def status_name(status: int) -> str:
    return batch_pb2.BatchStatus.Name(status)  # type: ignore[arg-type]


def state_of(batch: batch_pb2.Batch) -> list[Any]:
    """What a watch compares: status and counts."""
    counts = batch.request_counts
    return [status_name(batch.status), counts.completed, counts.failed, counts.total]


def seen_at(event: watch_pb2.BatchEvent) -> int:
    """When the service observed the state an event carries (nanoseconds): the soak finds its stored revision by it
    (tokens are sealed: the revision inside is the service's alone)."""
    return event.observed_at.ToNanoseconds()


def result_key(result: result_pb2.BatchResult) -> list[Any]:
    """What a results read is compared on, item by item (bench/soak_check.py builds the same from the gateway)."""
    if result.WhichOneof("outcome") == "error":
        return [result.custom_id, None, None, None, result.error.code, result.error.message]
    done = result.completion
    content = done.choices[0].message.content if done.choices else None
    return [result.custom_id, done.id, content, done.usage.total_tokens, None, None]


def digest(keys: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]


class Record:
    """JSON lines, flushed one by one (a killed process keeps what it wrote). Kinds: call (every attempt of every
    call), create, watch, many, results, gaveup."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, kind: str, **fields: Any) -> None:
        self.out.write(json.dumps({"k": kind, **fields}) + "\n")
        self.out.flush()

    def call(self, method: str, start: float, error: BatchError | None = None, outcome: str = "") -> None:
        fields: dict[str, Any] = {"m": method, "s": start, "d": time.time() - start}
        if error is None:
            fields["c"] = outcome or "OK"
        else:
            fields.update(c=error.code.name, r=error.reason, ri=error.retry_after is not None, ei=bool(error.domain))
            fields["msg"] = error.message[:200]
        self.write("call", **fields)


@dataclass
class Attempt:
    """The call in flight in a task: its method, when its current try began, and how many tries it took."""

    method: str
    start: float
    tries: int = 1


ATTEMPT: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar("attempt", default=None)


def begin(method: str) -> Attempt:
    """A call starts in this task: the client's retries of it are recorded against it."""
    attempt = Attempt(method, time.time())
    ATTEMPT.set(attempt)
    return attempt


def recording_retries(record: Record) -> Callable[[BatchError, int, float], None]:
    """The client's on_retry: each failed try of the call in flight is recorded, the next one timed from its start."""

    def told(error: BatchError, tries: int, delay: float) -> None:
        attempt = ATTEMPT.get()
        if attempt is not None:
            record.call(attempt.method, attempt.start, error)
            attempt.start, attempt.tries = time.time() + delay, tries + 1

    return told


class GaveUp(Exception):
    pass


class Worker:
    def __init__(self, client: BatchClient, record: Record, rng: random.Random, until: float) -> None:
        self.client, self.record, self.rng, self.until = client, record, rng, until
        self.attempts = 0

    async def retried(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call` (which the client retries until it succeeds, fails for good, or RETRY_BUDGET passes); every try
        recorded (their number in `self.attempts`)."""
        attempt = begin(method)
        try:
            value = await call()
        except BatchError as error:
            self.attempts = attempt.tries
            self.record.call(method, attempt.start, error)
            if error.retryable or error.code.name in RETRIED:
                raise GaveUp(f"{method}: {error!r}") from error
            raise
        self.attempts = attempt.tries
        self.record.call(method, attempt.start)
        return value

    def pause(self, error: BatchError, attempt: int) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, 5.0)
        return min(0.2 * 2.0 ** (attempt - 1), 3.0) * (0.5 + self.rng.random())

    # -- one flow ----------------------------------------------------------------------------------------------
    async def flow(self) -> None:
        while time.time() < self.until:
            try:
                await self.one_batch()
            except GaveUp as gave_up:
                self.record.write("gaveup", what=str(gave_up)[:300], at=time.time())
                await asyncio.sleep(1.0)
            except BatchError as error:
                self.record.write("gaveup", what=repr(error)[:300], code=error.code.name, at=time.time())
                await asyncio.sleep(1.0)  # a call that fails for good: the next batch, but not at once

    async def one_batch(self) -> None:
        rng = self.rng
        if rng.random() < WHOLES:
            await self.one_whole()
            return
        request_id = str(uuid.uuid4())
        requests: dict[str, Any] = {}
        for i in range(rng.randint(1, 4)):
            body: dict[str, Any] = {"messages": [{"role": "user", "content": f"{request_id[:8]} {i}"}]}
            if rng.random() < 0.15:
                body["simulate"] = {"fail": {"code": "soak_failure", "message": f"item {i} fails"}}
            requests[f"q{i}"] = body
        created: batch_pb2.Batch | None = None
        try:
            created = await self.retried(
                "CreateBatch",
                lambda: self.client.create(MODEL, requests, request_id=request_id, deadline=RETRY_BUDGET),
            )
        finally:
            batch_id = created.id if created else None
            self.record.write("create", rid=request_id, id=batch_id, tries=self.attempts, at=time.time())
        batch_id = created.id
        for _ in range(rng.randint(0, 2)):
            await self.retried("GetBatch", lambda: self.client.get(batch_id, deadline=RETRY_BUDGET))
        if rng.random() < 0.4:
            await self.retried(
                "ListBatches", lambda: self.client.list_page("openai", page_size=20, deadline=RETRY_BUDGET)
            )
        cancelling = rng.random() < 0.2
        if cancelling:
            await asyncio.sleep(rng.uniform(0, 4))
            await self.cancel(batch_id)
        how = rng.choice(("watch", "watch", "many", "wait"))
        early_results = not cancelling and rng.random() < 0.3
        follow = {"watch": self.watch, "many": self.watch_listed, "wait": self.wait}[how](batch_id)
        if early_results:  # StreamResults(wait) beside the watch, from before the batch completes
            end, _ = await asyncio.gather(follow, self.results(batch_id, wait=True))
        else:
            end = await follow
        if end == "BATCH_STATUS_COMPLETED" and not early_results:
            await self.results(batch_id, wait=False)

    async def one_whole(self) -> None:
        """A batch of several parts (the replicas' PART_MAX_REQUESTS is 4), with re-runs of transient failures
        half the time: followed with WaitBatch to its end, then its results, resumed at random indexes."""
        rng = self.rng
        request_id = str(uuid.uuid4())
        n, reruns = rng.randint(5, 12), rng.random() < 0.5
        requests: dict[str, Any] = {}
        transient: dict[str, int] = {}
        for i in range(n):
            body: dict[str, Any] = {"messages": [{"role": "user", "content": f"{request_id[:8]} {i}"}]}
            if reruns and rng.random() < 0.3:
                transient[f"q{i:02d}"] = fails = rng.randint(1, 2)  # a third try succeeds: max_attempts 3
                body["simulate"] = {"transient": {"key": f"{request_id}/{i}", "fails": fails}}
            requests[f"q{i:02d}"] = body
        created: batch_pb2.Batch | None = None
        try:
            created = await self.retried(
                "CreateBatch",
                lambda: self.client.create(
                    MODEL, requests, request_id=request_id, max_attempts=3 if reruns else 0, deadline=RETRY_BUDGET
                ),
            )
        finally:
            batch_id = created.id if created else None
            self.record.write(
                "wcreate", rid=request_id, id=batch_id, n=n, transient=transient, tries=self.attempts, at=time.time()
            )
        batch_id = created.id
        started, end = time.monotonic(), ""
        while not end and time.monotonic() - started < WATCH_LIMIT:
            wait = functools.partial(self.client.wait, batch_id, seconds=rng.uniform(2, 8))
            batch, done = await self.retried("WaitBatch", wait)
            end = status_name(batch.status) if done else ""
        outcomes: list[list[Any]] = []
        resumes = 0
        while end:
            stream = self.client.results(batch_id, start_index=len(outcomes))
            drop_after = rng.choice((None, None, 2, 5))
            try:
                async for result in stream:
                    code = result.error.code if result.WhichOneof("outcome") == "error" else ""
                    outcomes.append([result.custom_id, code, result.attempts])
                    if drop_after is not None and len(outcomes) % 7 == drop_after:
                        break
                else:
                    break
            except BatchError as error:
                outcomes = outcomes[: stream.next_index]
                if not (error.retryable or error.code.name in RETRIED):
                    raise
                await asyncio.sleep(self.pause(error, 1))
            finally:
                await stream.aclose()
            resumes += 1
        self.record.write("wresults", id=batch_id, end=end, outcomes=outcomes, resumes=resumes)

    async def cancel(self, batch_id: str) -> None:
        start = time.time()
        try:
            await self.retried("CancelBatch", lambda: self.client.cancel(batch_id, deadline=RETRY_BUDGET))
        except BatchError as error:
            if error.reason != "BATCH_ALREADY_FINISHED":  # (recorded as the call's outcome already)
                raise
        self.record.write("cancel", id=batch_id, at=start)

    # -- following a batch -------------------------------------------------------------------------------------
    async def watch(self, batch_id: str) -> str:
        """WatchBatch to the end, dropped at random and resumed with the last token. Returns the last status."""
        events: list[list[Any]] = []
        token, resumes, started = "", 0, time.monotonic()
        last = ""
        while time.monotonic() - started < WATCH_LIMIT:
            drop_after = self.rng.choice((None, None, 1, 2))
            seen = 0
            attempt = begin("WatchBatch")
            stream = self.client.watch(batch_id, resume_token=token)
            try:
                async for event in stream:
                    token = event.resume_token
                    if event.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
                        events.append([seen_at(event), event.kind, *state_of(event.batch)])
                        last = status_name(event.batch.status)
                    seen += 1
                    if drop_after is not None and seen >= drop_after:
                        break
                else:
                    self.record.call("WatchBatch", attempt.start)
                    break
                self.record.call("WatchBatch", attempt.start, outcome="DROPPED_BY_CLIENT")
            except BatchError as error:
                self.record.call("WatchBatch", attempt.start, error)
                if not (error.retryable or error.code.name in RETRIED):
                    self.record.write("watch", id=batch_id, ev=events, resumes=resumes, end=last, error=repr(error))
                    raise
                await asyncio.sleep(self.pause(error, 1))
            finally:
                await stream.aclose()
            resumes += 1
        done = time.monotonic() - started < WATCH_LIMIT
        self.record.write("watch", id=batch_id, ev=events, resumes=resumes, end=last, stalled=not done)
        return last

    async def watch_listed(self, batch_id: str) -> str:
        """WatchBatches with this one id listed, until it is terminal; dropped and resumed like a watch."""
        events: list[list[Any]] = []
        token, resumes, started, last = "", 0, time.monotonic(), ""
        finished = False
        while not finished and time.monotonic() - started < WATCH_LIMIT:
            drop_after = self.rng.choice((None, None, 1, 2))
            seen = 0
            attempt = begin("WatchBatches")
            stream = self.client.watch_many([batch_id], resume_token=token)
            try:
                async for event in stream:
                    token = event.resume_token
                    if event.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
                        events.append([None, event.kind, *state_of(event.batch)])
                        last = status_name(event.batch.status)
                        finished = event.kind in (
                            watch_pb2.BATCH_EVENT_KIND_SNAPSHOT,
                            watch_pb2.BATCH_EVENT_KIND_CHANGE,
                        ) and (event.batch.status in TERMINAL)
                    seen += 1
                    if finished or (drop_after is not None and seen >= drop_after):
                        break
                self.record.call("WatchBatches", attempt.start, outcome="OK" if finished else "DROPPED_BY_CLIENT")
            except BatchError as error:
                self.record.call("WatchBatches", attempt.start, error)
                if not (error.retryable or error.code.name in RETRIED):
                    self.record.write("watch", id=batch_id, ev=events, resumes=resumes, end=last, many=True)
                    raise
                await asyncio.sleep(self.pause(error, 1))
            finally:
                await stream.aclose()
            resumes += 1
        self.record.write("watch", id=batch_id, ev=events, resumes=resumes, end=last, many=True, stalled=not finished)
        return last

    async def wait(self, batch_id: str) -> str:
        started = time.monotonic()
        while time.monotonic() - started < WATCH_LIMIT:
            wait = functools.partial(self.client.wait, batch_id, seconds=self.rng.uniform(1, 6))
            batch, done = await self.retried("WaitBatch", wait)
            if done:
                self.record.write("wait", id=batch_id, end=status_name(batch.status))
                return status_name(batch.status)
        self.record.write("wait", id=batch_id, end="", stalled=True)
        return ""

    async def results(self, batch_id: str, *, wait: bool) -> None:
        """Every result, the stream dropped at random and resumed at the next index."""
        keys: list[list[Any]] = []
        resumes, total = 0, None
        while True:
            drop_after = self.rng.choice((None, None, 1, 2))
            attempt = begin("StreamResults")
            stream = self.client.results(batch_id, wait=wait, start_index=len(keys))
            try:
                async for result in stream:
                    keys.append(result_key(result))
                    if drop_after is not None and len(keys) % 3 == drop_after:
                        break
                else:  # (a resume at the very end brings no message, so no total: the one seen before stands)
                    total = stream.total if stream.total is not None else total
                    self.record.call("StreamResults", attempt.start)
                    break
                total = stream.total if stream.total is not None else total
                self.record.call("StreamResults", attempt.start, outcome="DROPPED_BY_CLIENT")
            except BatchError as error:
                self.record.call("StreamResults", attempt.start, error)
                keys = keys[: stream.next_index]
                if not (error.retryable or error.code.name in RETRIED):
                    self.record.write("results", id=batch_id, n=len(keys), error=repr(error))
                    raise
                await asyncio.sleep(self.pause(error, 1))
            finally:
                await stream.aclose()
            resumes += 1
        self.record.write("results", id=batch_id, n=len(keys), total=total, digest=digest(keys), resumes=resumes)

    # -- every live batch --------------------------------------------------------------------------------------
    async def watch_all(self) -> None:
        """WatchBatches of every live batch until `until`, dropped every 10-40 s and resumed with the last token."""
        seen: dict[str, list[list[Any]]] = {}
        token, resumes, opened = "", 0, time.time()
        while time.time() < self.until:
            attempt = begin("WatchBatches")
            drop_at = time.monotonic() + self.rng.uniform(10, 40)
            stream = self.client.watch_many(resume_token=token)
            try:
                async with asyncio.timeout(max(0.1, min(drop_at - time.monotonic(), self.until - time.time()))):
                    async for event in stream:
                        token = event.resume_token
                        if event.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
                            problem = event.problem.reason if event.HasField("problem") else ""
                            entry = [event.kind, *state_of(event.batch), time.time(), problem]
                            seen.setdefault(event.batch.id, []).append(entry)
            except TimeoutError:
                self.record.call("WatchBatches", attempt.start, outcome="DROPPED_BY_CLIENT")
            except BatchError as error:
                self.record.call("WatchBatches", attempt.start, error)
                if not (error.retryable or error.code.name in RETRIED):
                    break
                await asyncio.sleep(self.pause(error, 1))
            finally:
                await stream.aclose()
            resumes += 1
        self.record.write("many", batches=seen, opened=opened, closed=time.time(), resumes=resumes)


class Revokee:
    """The flows of a key the soak revokes at the gateway halfway (#29): creates, gets, waits, results and one
    WatchBatches of everything held open, before and after. Every call is recorded ("rcall": its times and code)
    and every piece of batch data received ("rdata": when), for bench/soak_check.py to hold against the revocation
    and the bound: nothing reaches the key past OWNER_TRUST_SECONDS (and a poll interval) after it."""

    def __init__(self, client: BatchClient, record: Record, rng: random.Random, until: float) -> None:
        self.client, self.record, self.rng, self.until = client, record, rng, until

    def call(self, method: str, start: float, code: str) -> None:
        self.record.write("rcall", m=method, s=start, d=time.time() - start, c=code)

    def data(self, method: str) -> None:
        self.record.write("rdata", m=method, at=time.time())

    async def unary(self, method: str, call: Callable[[], Awaitable[T]]) -> T | None:
        start = time.time()
        try:
            value = await call()
        except BatchError as error:
            self.call(method, start, error.code.name)
            return None
        self.call(method, start, "OK")
        self.data(method)
        return value

    async def flows(self) -> None:
        await asyncio.gather(self.watch_all(), self.batches())

    async def batches(self) -> None:
        while time.time() < self.until:
            body = {"q": {"messages": [{"role": "user", "content": "revokee"}]}}
            request_id = str(uuid.uuid4())
            create = functools.partial(self.client.create, MODEL, body, request_id=request_id, deadline=UNARY_DEADLINE)
            batch = await self.unary("CreateBatch", create)
            self.record.write("rcreate", rid=request_id, id=batch.id if batch else None)
            if batch is None:
                await asyncio.sleep(1.0)
                continue
            await self.unary("CreateBatch(replay)", create)  # the stored batch, while the key may see it
            get = functools.partial(self.client.get, batch.id, deadline=UNARY_DEADLINE)
            wait = functools.partial(self.client.wait, batch.id, seconds=3.0)
            end = time.monotonic() + WATCH_LIMIT
            while time.monotonic() < end and time.time() < self.until:
                await self.unary("GetBatch", get)
                waited = await self.unary("WaitBatch", wait)
                if waited is not None and waited[1]:
                    break
                if waited is None:
                    await asyncio.sleep(1.0)
            await self.results(batch.id)

    async def results(self, batch_id: str) -> None:
        start, code = time.time(), "OK"
        stream = self.client.results(batch_id)
        try:
            async for _ in stream:
                self.data("StreamResults")
        except BatchError as error:
            code = error.code.name
        finally:
            await stream.aclose()
        self.call("StreamResults", start, code)

    async def watch_all(self) -> None:
        """WatchBatches of everything, reopened when it ends (with an error: after the revocation, that is the
        point), until `until`."""
        while time.time() < self.until:
            start, code = time.time(), "OK"
            stream = self.client.watch_many()
            try:
                async with asyncio.timeout(max(0.1, self.until - time.time())):
                    async for event in stream:
                        if event.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT and event.batch.status:
                            self.data("WatchBatches")
            except TimeoutError:
                code = "DROPPED_BY_CLIENT"
            except BatchError as error:
                code = error.code.name
            finally:
                await stream.aclose()
            self.call("WatchBatches", start, code)
            await asyncio.sleep(1.0)


TERMINAL = {
    batch_pb2.BATCH_STATUS_COMPLETED,
    batch_pb2.BATCH_STATUS_FAILED,
    batch_pb2.BATCH_STATUS_EXPIRED,
    batch_pb2.BATCH_STATUS_CANCELLED,
}


async def run(args: argparse.Namespace, out: IO[str]) -> None:
    rng = random.Random(args.seed)
    record = Record(out)
    async with BatchClient(
        args.targets.split(","),
        api_key=KEY,
        max_attempts=RETRY_ATTEMPTS,
        default_retry_seconds=0.2,
        max_retry_seconds=3.0,
        attempt_timeout=UNARY_DEADLINE,
        on_retry=recording_retries(record),
    ) as client:
        flows = [Worker(client, record, random.Random(rng.random()), args.until) for _ in range(args.flows)]
        watcher = Worker(client, record, random.Random(rng.random()), args.until)
        works = [watcher.watch_all(), *(flow.flow() for flow in flows)]
        async with contextlib.AsyncExitStack() as stack:
            if args.revoked_key:
                revoked = await stack.enter_async_context(
                    BatchClient(args.targets.split(","), api_key=args.revoked_key, max_attempts=1)
                )
                works.append(Revokee(revoked, record, random.Random(rng.random()), args.until).flows())
            await asyncio.gather(*works)
    record.write("done", at=time.time())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", required=True, help="comma-separated host:port of every replica")
    parser.add_argument("--until", type=float, required=True, help="epoch seconds: no new batch after it")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--flows", type=int, default=6)
    parser.add_argument("--revoked-key", default="", help="a key of its own the soak revokes halfway (Revokee)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "w") as out:
        asyncio.run(run(args, out))


if __name__ == "__main__":
    main()
