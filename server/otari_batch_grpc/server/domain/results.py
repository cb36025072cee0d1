"""A completed batch's results as a stream of chunks: fetched once, as they arrive, and kept ready to send.

- The first stream of a batch reads the gateway's answer incrementally (`GatewayClient.stream_results`) and sends
  each chunk as soon as it is full, writing it to the cache alongside; memory stays bounded by the chunk size. The
  cache is trusted only once the whole answer is in: a stream that ends early (the caller left, the gateway
  failed) drops what it wrote.
- Each result is made by `convert.result_from_json` and serialized as it is read.
- A chunk is kept as the bytes of its `results` field entries, so a repeat stream sends each one with two small
  fields appended: no parsing, converting or serializing per result (`wire_chunk`, sent through a bytes
  pass-through serializer, see `rpc._send`).
- Who may read the cache is the core's trust policy: a caller the gateway authorized for the batch recently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.batches import Batches, status_meta
from otari_batch_grpc.server.domain.errors import Code, ServiceError, from_upstream
from otari_batch_grpc.server.domain.parts.ids import is_whole
from otari_batch_grpc.server.domain.subscriptions.feed import Feed
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import NotCompleted, UpstreamError, UpstreamHTTPError
from otari_batch_grpc.server.gateway.results_document import ResultsParser, as_is, plain
from otari_batch_grpc.server.store import Store
from otari_batch_grpc.server.telemetry import metrics
from otari_batch_grpc.server.util import wire
from otari_batch_grpc.server.util.locks import KeyedLocks
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

Response = batch_service_pb2.StreamResultsResponse
Message = bytes | Response

# A chunk is sent when its results reach this many bytes (one result larger than this is a chunk of its own).
CHUNK_BYTES = 256 * 1024
_RESULTS_TAG = b"\x0a"  # field 1 (results), length-delimited
_FIRST_INDEX_TAG = b"\x10"  # field 2, varint
_TOTAL_COUNT_TAG = b"\x18"  # field 3, varint
_CACHED_READ = 2  # chunks read from the cache at a time (and two more while those are sent)


@dataclass(frozen=True, kw_only=True)
class ResultsPolicy:
    max_bytes: int
    max_age: float
    progress_seconds: float = 15.0
    chunk_bytes: int = CHUNK_BYTES


def wire_chunk(payload: bytes, first_index: int, total: int) -> bytes:
    """A StreamResultsResponse, serialized: the chunk's results field entries, then first_index and total_count
    (protobuf fields may come in any order, and a zero is simply left out as proto3 does)."""
    tail = b""
    if first_index:
        tail += _FIRST_INDEX_TAG + wire.varint(first_index)
    if total:
        tail += _TOTAL_COUNT_TAG + wire.varint(total)
    return payload + tail


def field_entry(result: bytes) -> bytes:
    """A serialized BatchResult as an entry of StreamResultsResponse's `results` field."""
    return wire.field_entry(_RESULTS_TAG, result)


class ResultStreams:
    def __init__(
        self, core: Batches, feed: Feed, *, store: Store, gateway: GatewayClient, policy: ResultsPolicy
    ) -> None:
        self._core = core
        self._feed = feed
        self._store = store
        self._gateway = gateway
        self.policy = policy
        self._filling = KeyedLocks()

    async def stream(
        self, caller: Caller, batch_id: str, provider: str, *, start: int, wait: bool, time_left: float | None
    ) -> AsyncIterator[Message]:
        if (cached := await self._store.result_set(batch_id)) is not None:
            metrics.RESULTS_CACHE_HITS.inc()
            if not await self._core.trusted(caller, batch_id):
                await self._core.fetch(caller, batch_id, provider, time_left=time_left)  # the gateway authorizes
            _check_start(batch_id, start, cached)
            record = await self._store.batch(batch_id)
            total = batch_pb2.Batch.FromString(record.snapshot).request_counts.total if record else 0
            async for message in self._cached(batch_id, start, total):
                yield message
            return
        latest = await self._core.fetch(caller, batch_id, provider, time_left=time_left)
        if wait and not latest.terminal:  # its state on each change (and each quiet while) until it ends
            states = self._feed.follow(
                self._feed.subscription(caller), latest, provider, every=self.policy.progress_seconds
            )
            async with contextlib.aclosing(states):
                async for latest in states:
                    if not latest.terminal:  # the terminal one is not sent: the results, or why there are none, are
                        yield _progress(latest.batch)
        batch = latest.batch
        if not (batch.status == batch_pb2.BATCH_STATUS_COMPLETED or (is_whole(batch.id) and latest.terminal)):
            raise results_not_ready(batch)  # (a batch of several parts has results once it ended, any way)
        async with self._filling.hold(batch_id):  # one first fetch per batch; others then read the cache
            if (cached := await self._store.result_set(batch_id)) is not None:
                metrics.RESULTS_CACHE_HITS.inc()
                _check_start(batch_id, start, cached)
                async for message in self._cached(batch_id, start, batch.request_counts.total):
                    yield message
                return
            metrics.RESULTS_CACHE_MISSES.inc()
            async for message in self._first_fetch(caller, batch, provider, start, time_left):
                yield message

    async def _cached(self, batch_id: str, start: int, total: int) -> AsyncIterator[Message]:
        """The cached chunks from the one holding `start` on, the next few read while these are sent."""

        def read(at: int) -> asyncio.Future[list[tuple[int, int, bytes]]]:
            return asyncio.ensure_future(self._store.result_chunks(batch_id, at, limit=_CACHED_READ))

        reading = read(start)
        try:
            while True:
                chunks = await reading
                if not chunks:
                    return
                last_first, last_count, _ = chunks[-1]
                reading = read(last_first + last_count)
                for first_index, count, payload in chunks:
                    if first_index < start:  # resuming inside this chunk: send its tail
                        tail = Response.FromString(payload).results[start - first_index :]
                        yield Response(results=tail, first_index=start, total_count=total)
                    else:
                        yield wire_chunk(payload, first_index, total)
                    start = first_index + count
        finally:
            reading.cancel()

    async def _first_fetch(
        self, caller: Caller, batch: batch_pb2.Batch, provider: str, start: int, time_left: float | None
    ) -> AsyncIterator[Message]:
        """Stream the download as it arrives. It runs in a task of its own, which owns the HTTP response from open
        to close (a stream closed from another task would leave the connection in a bad state); chunks reach this
        call through a small queue, so a slow caller slows the download rather than filling memory."""
        queue: asyncio.Queue[Message | BaseException | None] = asyncio.Queue(maxsize=2)
        task = asyncio.create_task(self._download(caller, batch, provider, start, time_left, queue))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _download(
        self,
        caller: Caller,
        batch: batch_pb2.Batch,
        provider: str,
        start: int,
        time_left: float | None,
        queue: asyncio.Queue[Message | BaseException | None],
    ) -> None:
        try:  # aclosing: a cancel while a chunk waits in put() closes the download here, in this task
            async with contextlib.aclosing(self._fill(caller, batch, provider, start, time_left)) as messages:
                async for message in messages:
                    await queue.put(message)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the caller's task, which raises it
            await queue.put(exc)
            return
        await queue.put(None)

    async def _fill(
        self, caller: Caller, batch: batch_pb2.Batch, provider: str, start: int, time_left: float | None
    ) -> AsyncGenerator[Message, None]:
        """Stream the results, cached as they go while the set fits the cache (RESULTS_CACHE_MAX_BYTES): a larger
        one (a million results, say) is streamed all the same, and read from the gateway again next time."""
        batch_id, total = batch.id, batch.request_counts.total
        store, limit = self._store, self.policy.chunk_bytes
        # A batch of parts resumed past its first part, with nothing cached: read from the part holding `start` on
        # (not from its first), and keep nothing (a part of the set is no set).
        skip = await self._core.wholes.resume_point(batch_id, start) if is_whole(batch_id) and start else 0
        complete, caching = False, not skip
        if caching:
            await store.begin_results(batch_id)
        try:
            entries: list[bytes] = []
            size, index, first = 0, skip, skip
            nbytes = 0
            # closed here, in this task, however the stream ends: it owns an HTTP response (see _first_fetch)
            async with contextlib.aclosing(self._results(caller, batch, provider, time_left, skip)) as results:
                async for result in results:
                    entry = field_entry(result)
                    entries.append(entry)
                    size += len(entry)
                    index += 1
                    if size >= limit:
                        if caching and nbytes + size > self.policy.max_bytes:
                            caching = False  # it will not fit: what was written goes, and nothing more is
                            await store.drop_results(batch_id)
                        async for message in self._flush(batch_id, first, entries, start, total, keep=caching):
                            yield message
                        nbytes += size
                        first, entries, size = index, [], 0
            if caching and nbytes + size > self.policy.max_bytes:
                caching = False
                await store.drop_results(batch_id)
            if entries:
                async for message in self._flush(batch_id, first, entries, start, total, keep=caching):
                    yield message
                nbytes += size
            if index == 0 and total > 0:
                raise results_missing(batch)
            if caching:
                await store.finish_results(batch_id, items=index, nbytes=nbytes)
            complete = True
            _check_start(batch_id, start, index)  # (cached all the same: the next call is answered at once)
        finally:
            if not complete and caching:  # never leave a partial set for a later caller to trust
                await asyncio.shield(store.drop_results(batch_id))
        await store.trim_results(max_bytes=self.policy.max_bytes, max_age=self.policy.max_age)
        metrics.RESULTS_CACHE_BYTES.set(await store.results_bytes())

    def _results(
        self, caller: Caller, batch: batch_pb2.Batch, provider: str, time_left: float | None, skip: int = 0
    ) -> AsyncGenerator[bytes, None]:
        """The batch's results, each a serialized BatchResult: a batch of several parts' from its parts, in
        request order (from result `skip`, where a part begins); another's from the gateway's document, in its
        order."""
        if is_whole(batch.id):
            return self._core.wholes.results(caller, batch.id, time_left=time_left, start=skip)
        return self._document(caller, batch, provider, time_left)

    async def _document(
        self, caller: Caller, batch: batch_pb2.Batch, provider: str, time_left: float | None
    ) -> AsyncGenerator[bytes, None]:
        batch_id = batch.id
        try:
            parser = ResultsParser(plain, as_is)
            async with self._gateway.stream_results(
                caller.key, batch_id, provider, parser, time_left=time_left
            ) as items:
                async for item in items:
                    yield convert.result_from_json(item).SerializeToString()
        except NotCompleted:  # the gateway changed its mind about the batch being completed
            now = await self._core.fetch(caller, batch_id, provider, time_left=None)
            raise results_not_ready(now.batch) from None
        except UpstreamHTTPError as exc:
            if exc.status == 404:  # not this caller's (any more): one answer with an unknown id, access ended
                raise await self._core.read_failed(caller, batch_id, provider, exc, None) from None
            raise from_upstream(exc) from None
        except UpstreamError as exc:
            raise from_upstream(exc) from None

    async def _flush(
        self, batch_id: str, first: int, entries: list[bytes], start: int, total: int, *, keep: bool
    ) -> AsyncIterator[Message]:
        payload = b"".join(entries)
        if keep:
            await self._store.add_result_chunk(batch_id, first, len(entries), payload)
        end = first + len(entries)
        if end <= start:
            return
        if first >= start:
            yield wire_chunk(payload, first, total)
        else:
            tail = Response.FromString(payload).results[start - first :]
            yield Response(results=tail, first_index=start, total_count=total)


def _progress(batch: batch_pb2.Batch) -> Response:
    return Response(progress=batch, total_count=batch.request_counts.total)


def results_not_ready(batch: batch_pb2.Batch) -> ServiceError:
    status = status_meta(batch)["status"]
    if batch.status in convert.TERMINAL_STATUSES:
        message = (
            f"Batch {batch.id} is {status}: the gateway serves results only for completed batches, "
            "so this batch has none to stream (any partial output is not available through the gateway)."
        )
        reason = "BATCH_HAS_NO_RESULTS"
    elif batch.status == batch_pb2.BATCH_STATUS_CANCELLING:
        message = (
            f"Batch {batch.id} is {status}: it will end cancelled, and the gateway serves results only for "
            "completed batches, so this batch will have none to stream."
        )
        reason = "BATCH_NOT_COMPLETED"
    else:
        message = (
            f"Batch {batch.id} is {status}: results can be streamed once it is completed. Poll GetBatch, or "
            "stream with wait=true, until then."
        )
        reason = "BATCH_NOT_COMPLETED"
    return ServiceError(Code.FAILED_PRECONDITION, reason, message, status_meta(batch))


def results_missing(batch: batch_pb2.Batch) -> ServiceError:
    counts = batch.request_counts
    return ServiceError(
        Code.FAILED_PRECONDITION,
        "RESULTS_MISSING",
        f"Batch {batch.id} is completed but the gateway returned no results for its {counts.total} requests "
        f"({counts.failed} failed). The gateway reads only the provider's output file, so requests that failed "
        "are not listed.",
        {**status_meta(batch), "failed": str(counts.failed), "total": str(counts.total)},
    )


def _check_start(batch_id: str, start: int, count: int) -> None:
    """A stream resumed past the end is a mistake (a wrong index, or another batch's), not an empty end; at the end
    exactly (every result received, the stream broken before its status) is an empty end."""
    if start > count:
        raise ServiceError(
            Code.OUT_OF_RANGE,
            "START_INDEX_PAST_END",
            f"start_index {start} is past the end of batch {batch_id}'s results: it has {count} (indexes 0 to "
            f"{count - 1}; {count} ends at once).",
            {"batch_id": batch_id, "start_index": str(start), "results": str(count)},
        )
