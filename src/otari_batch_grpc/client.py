"""An asyncio Python client for BatchService: the key on every call, safe retries, streams that resume.

    async with BatchClient("127.0.0.1:50051", api_key="sim-key-alice") as client:
        batch = await client.create("openai:gpt-4o-mini", {"q1": {"messages": [...]}})
        async for event in client.watch(batch.id):
            print(event.batch.upstream_status)
        async for result in client.results(batch.id):
            ...

- `create` sends a fresh request_id unless given one, and retries UNAVAILABLE with the same one: a lost reply
  never makes a second batch.
- `results` and `watch` resume where a broken stream stopped (start_index, resume_token), waiting as the server's
  RetryInfo says.
- `ErrorDetails.of(error)` unpacks the google.rpc details every error carries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2, status_pb2

from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, batch_service_pb2_grpc, result_pb2, watch_pb2

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


@dataclass(frozen=True)
class ErrorDetails:
    """The google.rpc details of a failed call."""

    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: Sequence[tuple[str, str]] = ()
    retry_after: float | None = None

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> ErrorDetails:
        raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
        if not isinstance(raw, bytes):
            return cls()
        values: dict[str, Any] = {}
        for packed in status_pb2.Status.FromString(raw).details:
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                values.update(reason=info.reason, metadata=dict(info.metadata))
            elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                packed.Unpack(bad)
                values["field_violations"] = [(v.field, v.description) for v in bad.field_violations]
            elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                packed.Unpack(retry)
                values["retry_after"] = retry.retry_delay.ToTimedelta().total_seconds()
        return cls(**values)


class BatchClient:
    def __init__(
        self,
        target: str,
        *,
        api_key: str,
        credentials: grpc.ChannelCredentials | None = None,
        max_attempts: int = 5,
        default_retry_seconds: float = 1.0,
    ) -> None:
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials)
        self._stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._max_attempts = max_attempts
        self._default_retry = default_retry_seconds

    async def __aenter__(self) -> BatchClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def create(
        self,
        model: str,
        requests: Mapping[str, Mapping[str, Any]],
        *,
        request_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        completion_window: str = "",
        user: str = "",
        deadline: float | None = 60.0,
    ) -> batch_pb2.Batch:
        """Create a batch of `{custom_id: chat-completion body}`; retried safely under one request_id."""
        items = []
        for custom_id, body in requests.items():
            struct = struct_pb2.Struct()
            struct.update(dict(body))
            items.append(batch_service_pb2.BatchRequestItem(custom_id=custom_id, body=struct))
        request = batch_service_pb2.CreateBatchRequest(
            model=model,
            requests=items,
            metadata=dict(metadata or {}),
            completion_window=completion_window,
            user=user,
            request_id=request_id or str(uuid.uuid4()),
        )
        for attempt in range(1, self._max_attempts + 1):
            try:
                reply = await self._stub.CreateBatch(request, metadata=self._metadata, timeout=deadline)
                return reply.batch
            except grpc.aio.AioRpcError as error:
                await self._pause_or_raise(error, attempt)
        raise AssertionError("unreachable")

    async def get(self, batch_id: str, *, provider: str = "") -> batch_pb2.Batch:
        reply = await self._stub.GetBatch(
            batch_service_pb2.GetBatchRequest(batch_id=batch_id, provider=provider), metadata=self._metadata
        )
        return reply.batch

    async def cancel(self, batch_id: str, *, provider: str = "") -> batch_pb2.Batch:
        reply = await self._stub.CancelBatch(
            batch_service_pb2.CancelBatchRequest(batch_id=batch_id, provider=provider), metadata=self._metadata
        )
        return reply.batch

    async def list(self, provider: str, *, page_size: int = 0) -> AsyncIterator[batch_pb2.Batch]:
        """Every batch of yours the provider holds, newest first, page after page."""
        token = ""
        while True:
            reply = await self._stub.ListBatches(
                batch_service_pb2.ListBatchesRequest(provider=provider, page_size=page_size, page_token=token),
                metadata=self._metadata,
            )
            for batch in reply.batches:
                yield batch
            token = reply.next_page_token
            if not token:
                return

    async def wait(self, batch_id: str, *, seconds: float = 60.0, provider: str = "") -> tuple[batch_pb2.Batch, bool]:
        """The batch once terminal (True), or its latest state after `seconds` (False)."""
        limit = duration_pb2.Duration()
        limit.FromNanoseconds(int(seconds * 1e9))
        reply = await self._stub.WaitBatch(
            batch_service_pb2.WaitBatchRequest(batch_id=batch_id, provider=provider, timeout=limit),
            metadata=self._metadata,
            timeout=seconds + 10,
        )
        return reply.batch, reply.done

    async def results(
        self, batch_id: str, *, provider: str = "", wait: bool = False
    ) -> AsyncIterator[result_pb2.BatchResult]:
        """Every result of a completed batch, in order; a broken stream resumes where it stopped."""
        next_index, attempt = 0, 0
        while True:
            request = batch_service_pb2.StreamResultsRequest(
                batch_id=batch_id, provider=provider, start_index=next_index, wait=wait
            )
            try:
                async for item in self._stub.StreamResults(request, metadata=self._metadata):
                    next_index, attempt = item.index + 1, 0
                    yield item.result
                return
            except grpc.aio.AioRpcError as error:
                attempt += 1
                await self._pause_or_raise(error, attempt)

    async def watch(self, batch_id: str, *, provider: str = "") -> AsyncIterator[watch_pb2.BatchEvent]:
        """Events of one batch until it is terminal; resumes after a dropped stream or a server restart."""
        token, attempt = "", 0
        while True:
            request = batch_service_pb2.WatchBatchRequest(batch_id=batch_id, provider=provider, resume_token=token)
            try:
                async for response in self._stub.WatchBatch(request, metadata=self._metadata):
                    token, attempt = response.event.resume_token, 0
                    yield response.event
                return
            except grpc.aio.AioRpcError as error:
                attempt += 1
                await self._pause_or_raise(error, attempt)

    async def _pause_or_raise(self, error: grpc.aio.AioRpcError, attempt: int) -> None:
        if error.code() not in RETRYABLE or attempt >= self._max_attempts:
            raise error
        delay = ErrorDetails.of(error).retry_after
        await asyncio.sleep(delay if delay is not None else self._default_retry * 2 ** (attempt - 1))
