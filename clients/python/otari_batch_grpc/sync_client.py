"""A synchronous BatchService client, for scripts and notebooks: BatchClient's methods without `await`.

    with SyncBatchClient("127.0.0.1:50051", api_key="sim-key-alice") as client:
        batch = client.create("openai:gpt-4o-mini", {"q1": {"messages": [...]}})
        for event in client.watch(batch.id):
            print(event.batch.upstream_status)
        for result in client.results(batch.id):
            ...

It is the async client, run on an event loop of its own in a background thread: the same retries, resumes and
errors, and whatever the async client learns this one knows too. Each call blocks until its answer; an iterator
holds its stream open until it is exhausted or closed (`close()`, or leaving a `with` block around it). Ctrl-C
during a call cancels the call. `on_progress` and `on_retry` callbacks run on the client's thread.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from otari_batch_grpc.client import BatchClient, ResultStream
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, result_pb2, watch_pb2
from otari_batch_grpc.v1 import webhook_service_pb2 as wh
from otari_batch_grpc.webhooks import Webhooks

__all__ = ["SyncBatchClient", "SyncResultStream", "SyncWebhooks"]

T = TypeVar("T")


class _Loop:
    """An event loop running in a daemon thread; `run` waits for a coroutine's result on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="otari-batch-client", daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed():
            work.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result()
        except BaseException:  # Ctrl-C (KeyboardInterrupt) while waiting: the call ends too
            future.cancel()
            raise

    def iterate(self, stream: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        """The async generator's items, one blocking step at a time; closing this closes it."""
        try:
            while True:
                try:
                    item = self.run(_next(stream))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if self.loop.is_running():
                self.run(stream.aclose())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _next(stream: AsyncGenerator[T, None]) -> T:
    return await anext(stream)


async def _made(make: Callable[[], BatchClient]) -> BatchClient:
    return make()  # on the loop: a grpc.aio channel belongs to the loop it was made on


class SyncResultStream:
    """The results of one batch, one at a time (an iterator), and how many there are: see ResultStream."""

    def __init__(self, loop: _Loop, stream: ResultStream) -> None:
        self._stream = stream
        self._items = loop.iterate(_results(stream))

    @property
    def total(self) -> int | None:
        return self._stream.total

    @property
    def next_index(self) -> int:
        return self._stream.next_index

    @property
    def progress(self) -> batch_pb2.Batch | None:
        return self._stream.progress

    def __iter__(self) -> SyncResultStream:
        return self

    def __next__(self) -> result_pb2.BatchResult:
        return next(self._items)

    def close(self) -> None:
        """End the stream early."""
        self._items.close()


async def _results(stream: ResultStream) -> AsyncGenerator[result_pb2.BatchResult, None]:
    try:
        async for result in stream:
            yield result
    finally:
        await stream.aclose()


class SyncBatchClient:
    """BatchClient's methods, blocking. Takes BatchClient's arguments; use it in a `with` block or call close()."""

    def __init__(self, target: str | Sequence[str], **options: Any) -> None:
        self._loop = _Loop()
        try:
            self._client = self._loop.run(_made(lambda: BatchClient(target, **options)))
            self.webhooks = SyncWebhooks(self._loop, self._client.webhooks)
        except BaseException:
            self._loop.stop()
            raise

    def __enter__(self) -> SyncBatchClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def connected(self, within: float) -> bool:
        return self._loop.run(self._client.connected(within))

    def create(
        self,
        model: str,
        requests: Mapping[str, Mapping[str, Any] | str]
        | Iterable[tuple[str, Mapping[str, Any] | str] | Mapping[str, Any]],
        *,
        request_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        completion_window: str = "",
        user: str = "",
        max_attempts: int = 0,
        on_upload: Callable[[int, int], None] | None = None,
        deadline: float | None = 60.0,
    ) -> batch_pb2.Batch:
        """See BatchClient.create."""
        return self._loop.run(
            self._client.create(
                model,
                requests,
                request_id=request_id,
                metadata=metadata,
                completion_window=completion_window,
                user=user,
                max_attempts=max_attempts,
                on_upload=on_upload,
                deadline=deadline,
            )
        )

    def get(self, batch_id: str, *, provider: str = "", deadline: float | None = 60.0) -> batch_pb2.Batch:
        """See BatchClient.get."""
        return self._loop.run(self._client.get(batch_id, provider=provider, deadline=deadline))

    def cancel(self, batch_id: str, *, provider: str = "", deadline: float | None = 60.0) -> batch_pb2.Batch:
        """See BatchClient.cancel."""
        return self._loop.run(self._client.cancel(batch_id, provider=provider, deadline=deadline))

    def list(self, provider: str = "", *, page_size: int = 0) -> Generator[batch_pb2.Batch, None, None]:
        """See BatchClient.list."""
        return self._loop.iterate(self._client.list(provider, page_size=page_size))

    def list_page(
        self, provider: str = "", *, page_size: int = 0, page_token: str = "", deadline: float | None = 60.0
    ) -> batch_service_pb2.ListBatchesResponse:
        """See BatchClient.list_page."""
        return self._loop.run(
            self._client.list_page(provider, page_size=page_size, page_token=page_token, deadline=deadline)
        )

    def wait(self, batch_id: str, *, seconds: float = 60.0, provider: str = "") -> tuple[batch_pb2.Batch, bool]:
        """See BatchClient.wait."""
        return self._loop.run(self._client.wait(batch_id, seconds=seconds, provider=provider))

    def results(
        self,
        batch_id: str,
        *,
        provider: str = "",
        wait: bool = False,
        start_index: int = 0,
        on_progress: Callable[[batch_pb2.Batch], object] | None = None,
    ) -> SyncResultStream:
        """See BatchClient.results."""
        stream = self._client.results(
            batch_id, provider=provider, wait=wait, start_index=start_index, on_progress=on_progress
        )
        return SyncResultStream(self._loop, stream)

    def watch(
        self, batch_id: str, *, provider: str = "", resume_token: str = ""
    ) -> Generator[watch_pb2.BatchEvent, None, None]:
        """See BatchClient.watch."""
        return self._loop.iterate(self._client.watch(batch_id, provider=provider, resume_token=resume_token))

    def watch_many(
        self, batch_ids: Iterable[str] = (), *, resume_token: str = ""
    ) -> Generator[watch_pb2.BatchEvent, None, None]:
        """See BatchClient.watch_many."""
        return self._loop.iterate(self._client.watch_many(batch_ids, resume_token=resume_token))


class SyncWebhooks:
    """BatchClient.webhooks' methods, blocking: each takes what webhooks.Webhooks' does."""

    def __init__(self, loop: _Loop, webhooks: Webhooks) -> None:
        self._loop, self._webhooks = loop, webhooks

    def create(self, url: str, **options: Any) -> tuple[wh.WebhookEndpoint, str]:
        return self._loop.run(self._webhooks.create(url, **options))

    def get(self, endpoint_id: str, **options: Any) -> wh.WebhookEndpoint:
        return self._loop.run(self._webhooks.get(endpoint_id, **options))

    def list(self, **options: Any) -> list[wh.WebhookEndpoint]:
        return self._loop.run(self._webhooks.list(**options))

    def update(self, endpoint_id: str, **options: Any) -> wh.WebhookEndpoint:
        return self._loop.run(self._webhooks.update(endpoint_id, **options))

    def rotate_secret(self, endpoint_id: str, **options: Any) -> tuple[wh.WebhookEndpoint, str]:
        return self._loop.run(self._webhooks.rotate_secret(endpoint_id, **options))

    def delete(self, endpoint_id: str, **options: Any) -> None:
        self._loop.run(self._webhooks.delete(endpoint_id, **options))

    def send_test(self, endpoint_id: str, **options: Any) -> wh.SendTestWebhookResponse:
        return self._loop.run(self._webhooks.send_test(endpoint_id, **options))

    def deliveries(self, endpoint_id: str, **options: Any) -> builtins.list[wh.WebhookDelivery]:
        return self._loop.run(self._webhooks.deliveries(endpoint_id, **options))
