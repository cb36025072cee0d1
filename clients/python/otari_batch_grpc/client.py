"""An asyncio Python client for BatchService: the key on every call, safe retries, streams that resume.

    async with BatchClient("127.0.0.1:50051", api_key="sim-key-alice") as client:
        batch = await client.create("openai:gpt-4o-mini", {"q1": {"messages": [...]}})
        async for event in client.watch(batch.id):
            print(event.batch.upstream_status)
        async for result in client.results(batch.id):
            ...

- Every failed call raises `BatchError`, as the subclass for its code (`NotFoundError`, `InvalidArgumentError`, ...:
  errors.py): the status code and message, and the google.rpc details the service sends with every error (reason,
  domain, metadata, field violations, retry delay).
- What a retry can cure is retried: UNAVAILABLE, and any error that carries RetryInfo, waiting as RetryInfo says
  (or backing off, with jitter), all within the call's one `deadline` (retry.py). `create` sends a fresh request_id
  unless given one and retries with the same one, so a lost reply never makes a second batch.
- A target never reached fails fast: UnavailableError naming it, at once for a refused connection or an unknown
  name, after `connect_timeout` seconds when nothing answers at all.
- `results`, `watch` and `watch_many` resume where a broken stream stopped (start_index, resume_token).
- SyncBatchClient (sync_client.py) has the same methods for code that does not run an event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import json
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc
from google.protobuf import duration_pb2

from otari_batch_grpc.errors import (
    AlreadyExistsError,
    BatchError,
    CancelledError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from otari_batch_grpc.retry import OnRetry, Retry, time_left
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, batch_service_pb2_grpc, result_pb2, watch_pb2
from otari_batch_grpc.webhooks import Webhooks

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub

# The errors are errors.py's, importable from here too.
__all__ = [
    "AlreadyExistsError",
    "BatchClient",
    "BatchError",
    "CancelledError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ResultStream",
    "Retry",
    "UnauthenticatedError",
    "UnavailableError",
]

# The service's largest message by default (MAX_MESSAGE_BYTES); gRPC's client default is 4 MiB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

T = TypeVar("T")


class _EventMessage(Protocol):
    """WatchBatchResponse and WatchBatchesResponse: one event each."""

    @property
    def event(self) -> watch_pb2.BatchEvent: ...


def channel_target(target: str | Sequence[str]) -> str:
    """A gRPC target for one address or several: a list of IP addresses becomes gRPC's static `ipv4:`/`ipv6:`
    target (`ipv4:10.0.0.5:50051,10.0.0.6:50051`); a name stays a name (DNS gives its addresses)."""
    if isinstance(target, str):
        return target
    addresses = list(target)
    if not addresses:
        raise ValueError("no address to connect to")
    if len(addresses) == 1:
        return addresses[0]
    families = {_family(address) for address in addresses}
    if len(families) != 1 or None in families:
        raise ValueError(
            "several addresses must all be IPv4 (10.0.0.5:50051) or all IPv6 ([::1]:50051); for host names, use one "
            "DNS name that resolves to every replica"
        )
    return f"{families.pop()}:{','.join(addresses)}"


def _family(address: str) -> str | None:
    host = address.rsplit(":", 1)[0].removeprefix("[").removesuffix("]")
    try:
        return "ipv4" if isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address) else "ipv6"
    except ValueError:
        return None


# A batch's requests past this many bytes go as an upload (UploadBatch), in chunks of about UPLOAD_CHUNK_BYTES: one
# CreateBatch message must stay within the server's limit (64 MiB by default).
UPLOAD_ABOVE_BYTES = 16 * 1024 * 1024
UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024


def _chunks(items: Sequence[batch_service_pb2.BatchRequestItem]) -> list[list[batch_service_pb2.BatchRequestItem]]:
    """The requests as they go: one chunk (a CreateBatch) up to UPLOAD_ABOVE_BYTES, else chunks of about
    UPLOAD_CHUNK_BYTES (an UploadBatch)."""
    sizes = [item.ByteSize() for item in items]
    if sum(sizes) <= UPLOAD_ABOVE_BYTES:
        return [list(items)]
    chunks: list[list[batch_service_pb2.BatchRequestItem]] = [[]]
    size = 0
    for item, item_size in zip(items, sizes, strict=True):
        if chunks[-1] and size + item_size > UPLOAD_CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item_size
    return chunks


def _pair(item: tuple[str, Mapping[str, Any] | str] | Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | str]:
    """A request as (custom_id, body), from a pair or from the gateway's `{"custom_id", "body"}` item."""
    if isinstance(item, Mapping):
        if "custom_id" not in item or "body" not in item:
            raise TypeError(f'a request item must have "custom_id" and "body"; this one has {sorted(item)[:5]}')
        return str(item["custom_id"]), item["body"]
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise TypeError(
            f"requests: each item must be a (custom_id, body) pair or a {{custom_id, body}} mapping, "
            f"not {type(item).__name__}"
        )
    custom_id, body = item
    return custom_id, body


def _json_text(body: Mapping[str, Any] | str) -> str:
    """A request body as JSON text; NaN and infinities are refused here (JSON has none)."""
    if isinstance(body, str):
        return body
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise ValueError(f"a request body must be JSON: {exc}") from None


class ResultStream:
    """The results of one batch, one at a time, in order (an async iterator), and how many there are.

    Results travel in chunks; this yields them one by one, and a broken stream resumes at the next result.
    `total` is the batch's number of results, known from the first message (None before it); `next_index` is the
    index of the next result; `progress` is the batch's latest state while `wait=True` waits for it to complete.
    A stream that ends with `next_index < total` means the gateway left some results out.
    """

    def __init__(
        self,
        client: BatchClient,
        request: batch_service_pb2.StreamResultsRequest,
        on_progress: Callable[[batch_pb2.Batch], object] | None,
    ) -> None:
        self.total: int | None = None
        self.next_index = request.start_index
        self.progress: batch_pb2.Batch | None = None
        self._results = self._stream(client, request, on_progress)

    def __aiter__(self) -> ResultStream:
        return self

    async def __anext__(self) -> result_pb2.BatchResult:
        return await anext(self._results)

    async def aclose(self) -> None:
        """End the stream early (breaking out of `async for` leaves that to the garbage collector)."""
        await self._results.aclose()

    async def _stream(
        self,
        client: BatchClient,
        request: batch_service_pb2.StreamResultsRequest,
        on_progress: Callable[[batch_pb2.Batch], object] | None,
    ) -> AsyncGenerator[result_pb2.BatchResult, None]:
        attempt = 0
        while True:
            request.start_index = self.next_index
            try:
                await client._connect(None)
                async for chunk in client._stub.StreamResults(request, metadata=client._metadata):
                    attempt = 0
                    self.total = chunk.total_count
                    if chunk.HasField("progress"):
                        self.progress = chunk.progress
                        if on_progress is not None:
                            on_progress(chunk.progress)
                    for offset, result in enumerate(chunk.results):  # chunks are a wire detail: one at a time
                        self.next_index = chunk.first_index + offset + 1
                        yield result
                return
            except (grpc.aio.AioRpcError, UnavailableError) as error:
                attempt += 1
                await client._pause_or_raise(error, attempt, until=None)


class BatchClient:
    """A BatchService client on one channel. Use it as an async context manager, or call `close()`."""

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        api_key: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        max_attempts: int = 5,
        default_retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
        on_retry: OnRetry | None = None,
        connect_timeout: float = 5.0,
        attempt_timeout: float | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        """`target` is one address (`host:port`), a name whose DNS answer lists every replica
        (`dns:///batch.internal:50051`), or several replicas' IP addresses (`["10.0.0.5:50051", "10.0.0.6:50051"]`);
        calls are spread over every address with gRPC's `round_robin` policy, and a replica that goes away is left
        out until it is back (its streams resume on another).
        `api_key` goes on every call as `authorization: Bearer <key>` (none: the server's SERVICE_KEY, if any).
        `max_attempts` bounds the tries of one call (and of each reconnect of a stream), all within the call's
        `deadline`; without RetryInfo the wait between them is random, up to `default_retry_seconds` doubled at
        each try (at most `max_retry_seconds`). `on_retry(error, attempt, seconds)` is told of each retry before its
        wait. `attempt_timeout` bounds each try of a unary call (the call's `deadline` bounds them all); a try it
        cuts short (DEADLINE_EXCEEDED) is retried while the deadline allows.
        `connect_timeout` bounds the wait for a first connection: a target where nothing answers raises
        UnavailableError naming it (later, with the service once reached, a lost connection is retried)."""
        options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.lb_policy_name", "round_robin")]
        address = channel_target(target)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._stub: BatchServiceAsyncStub = batch_service_pb2_grpc.BatchServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.retry = Retry(
            attempts=max(1, max_attempts), initial=default_retry_seconds, maximum=max_retry_seconds, on_retry=on_retry
        )
        self._attempt_timeout = attempt_timeout
        self._target = address
        self._connect_timeout = connect_timeout
        self._reached = False  # a connection was made once: from then on, a lost one is the service restarting
        self.webhooks = Webhooks(self)  # WebhookService: your webhook endpoints (webhooks.py)

    async def __aenter__(self) -> BatchClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def connected(self, within: float) -> bool:
        """Whether the service answers a connection within `within` seconds (calls wait for one by themselves:
        this is for telling a person at once that nothing is there)."""
        try:
            await asyncio.wait_for(self._channel.channel_ready(), within)
        except TimeoutError:
            return False
        return True

    async def create(
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
        """Create a batch of `{custom_id: chat-completion body}`, or of `(custom_id, body)` pairs or the gateway's
        `{"custom_id": ..., "body": ...}` items (both kept as given: the service reports a repeated custom_id);
        retried safely under one request_id. A body is a mapping or its JSON text already encoded.

        Any size: past UPLOAD_ABOVE_BYTES of requests it is uploaded in chunks (UploadBatch), `on_upload(requests
        sent, requests)` told after each; the service splits a batch larger than one upstream batch into parts and
        answers one batch. `max_attempts` (2 to 5) has the requests whose failure is retryable run again, while
        no one calls: the service keeps your key for that batch alone, encrypted, until it ends."""
        pairs = requests.items() if isinstance(requests, Mapping) else map(_pair, requests)
        # As JSON text (body_json): no Struct conversion on either side, and every number kept exactly.
        items = [
            batch_service_pb2.BatchRequestItem(custom_id=custom_id, body_json=_json_text(body))
            for custom_id, body in pairs
        ]
        pairs_given = dict(metadata or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs_given.items()):
            raise TypeError("metadata: keys and values must be strings (the provider keeps only strings)")
        header = batch_service_pb2.CreateBatchRequest(
            model=model,
            metadata=pairs_given,
            completion_window=completion_window,
            user=user,
            request_id=request_id or str(uuid.uuid4()),
            max_attempts=max_attempts,
        )
        chunks = _chunks(items)
        try:
            if len(chunks) > 1:
                return await self._unary(lambda left: self._upload(header, chunks, on_upload, left), deadline)
            request = batch_service_pb2.CreateBatchRequest()
            request.CopyFrom(header)
            request.requests.extend(items)
            reply = await self._unary(
                lambda left: self._stub.CreateBatch(request, metadata=self._metadata, timeout=left), deadline
            )
        except BatchError as failure:
            failure.request_id = header.request_id
            raise
        return reply.batch

    async def _upload(
        self,
        header: batch_service_pb2.CreateBatchRequest,
        chunks: Sequence[Sequence[batch_service_pb2.BatchRequestItem]],
        on_upload: Callable[[int, int], None] | None,
        seconds: float | None,
    ) -> batch_pb2.Batch:
        """One try of an upload: the header, then every chunk."""
        total = sum(len(chunk) for chunk in chunks)

        async def messages() -> AsyncIterator[batch_service_pb2.UploadBatchRequest]:
            yield batch_service_pb2.UploadBatchRequest(header=header)
            sent = 0
            for chunk in chunks:
                yield batch_service_pb2.UploadBatchRequest(chunk=batch_service_pb2.RequestChunk(requests=chunk))
                sent += len(chunk)
                if on_upload is not None:
                    on_upload(sent, total)

        reply: batch_service_pb2.UploadBatchResponse = await self._stub.UploadBatch(
            messages(), metadata=self._metadata, timeout=seconds
        )
        return reply.batch

    async def get(self, batch_id: str, *, provider: str = "", deadline: float | None = 60.0) -> batch_pb2.Batch:
        """The batch's current state. `provider` is needed only for a batch this service has not shown you."""
        request = batch_service_pb2.GetBatchRequest(batch_id=batch_id, provider=provider)
        reply = await self._unary(
            lambda left: self._stub.GetBatch(request, metadata=self._metadata, timeout=left), deadline
        )
        return reply.batch

    async def cancel(self, batch_id: str, *, provider: str = "", deadline: float | None = 60.0) -> batch_pb2.Batch:
        """Ask for the batch to be cancelled; it goes through CANCELLING to CANCELLED."""
        request = batch_service_pb2.CancelBatchRequest(batch_id=batch_id, provider=provider)
        reply = await self._unary(
            lambda left: self._stub.CancelBatch(request, metadata=self._metadata, timeout=left), deadline
        )
        return reply.batch

    async def list(self, provider: str = "", *, page_size: int = 0) -> AsyncGenerator[batch_pb2.Batch, None]:
        """Every batch of yours, newest first, page after page: of one provider, or (empty) of every provider you
        have batches with through this service. `list_page` also tells which providers could not be asked."""
        token = ""
        while True:
            reply = await self.list_page(provider, page_size=page_size, page_token=token)
            for batch in reply.batches:
                yield batch
            token = reply.next_page_token
            if not token:
                return

    async def list_page(
        self, provider: str = "", *, page_size: int = 0, page_token: str = "", deadline: float | None = 60.0
    ) -> batch_service_pb2.ListBatchesResponse:
        """One page of `list`, with its next_page_token and incomplete_providers."""
        request = batch_service_pb2.ListBatchesRequest(provider=provider, page_size=page_size, page_token=page_token)
        return await self._unary(
            lambda left: self._stub.ListBatches(request, metadata=self._metadata, timeout=left), deadline
        )

    async def wait(self, batch_id: str, *, seconds: float = 60.0, provider: str = "") -> tuple[batch_pb2.Batch, bool]:
        """The batch once terminal (True), or its latest state after `seconds` (False)."""
        limit = duration_pb2.Duration()
        limit.FromNanoseconds(int(seconds * 1e9))
        request = batch_service_pb2.WaitBatchRequest(batch_id=batch_id, provider=provider, timeout=limit)
        reply = await self._unary(
            lambda left: self._stub.WaitBatch(request, metadata=self._metadata, timeout=left), seconds + 10
        )
        return reply.batch, reply.done

    def results(
        self,
        batch_id: str,
        *,
        provider: str = "",
        wait: bool = False,
        start_index: int = 0,
        on_progress: Callable[[batch_pb2.Batch], object] | None = None,
    ) -> ResultStream:
        """Every result of a completed batch from `start_index`, in order, one at a time; a broken stream resumes
        at the next result. `wait=True` waits for a batch that is not completed yet (else FAILED_PRECONDITION),
        calling `on_progress` with its state on each change and heartbeat meanwhile. The returned stream's
        `total` says how many results the batch has."""
        request = batch_service_pb2.StreamResultsRequest(
            batch_id=batch_id, provider=provider, start_index=start_index, wait=wait
        )
        return ResultStream(self, request, on_progress)

    async def watch(
        self, batch_id: str, *, provider: str = "", resume_token: str = ""
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """Events of one batch until it is terminal: a snapshot, then each change, heartbeats while nothing
        changes. Resumes after a dropped stream or a server restart; `resume_token` resumes an earlier watch."""

        def open_stream(token: str) -> AsyncIterable[batch_service_pb2.WatchBatchResponse]:
            request = batch_service_pb2.WatchBatchRequest(batch_id=batch_id, provider=provider, resume_token=token)
            return self._stub.WatchBatch(request, metadata=self._metadata)

        async for event in self._events(open_stream, resume_token):
            yield event

    async def watch_many(
        self, batch_ids: Iterable[str] = (), *, resume_token: str = ""
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """Events of many batches on one stream (event.batch.id says which): the listed ones (each shown to you
        through this service), or, with none listed, every live batch of yours and each one you create or are
        shown while watching. Never ends on its own; resumes after a dropped stream or a server restart. A
        batch's trouble comes as an UNAVAILABLE or REMOVED event with `problem` set, not as an error."""
        ids = builtins.list(batch_ids)

        def open_stream(token: str) -> AsyncIterable[batch_service_pb2.WatchBatchesResponse]:
            request = batch_service_pb2.WatchBatchesRequest(batch_ids=ids, resume_token=token)
            return self._stub.WatchBatches(request, metadata=self._metadata)

        async for event in self._events(open_stream, resume_token):
            yield event

    # -- retries ----------------------------------------------------------------------------------------------
    async def _unary(self, call: Callable[[float | None], Awaitable[T]], deadline: float | None) -> T:
        """`call(seconds left)` until it succeeds, fails for good, or `deadline` seconds (for all tries) pass."""
        until = None if deadline is None else time.monotonic() + deadline
        limit = self._attempt_timeout
        attempt = 0
        while True:
            attempt += 1
            left = time_left(until)
            try:
                await self._connect(until)
                return await call(left if limit is None else min(limit, left if left is not None else limit))
            except grpc.aio.AioRpcError as error:
                # A try cut short by attempt_timeout: the next may be quicker (another replica, say).
                cut = limit is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                await self._pause_or_raise(error, attempt, until=until, retryable=cut)
            except UnavailableError as error:
                await self._pause_or_raise(error, attempt, until=until)

    async def _connect(self, until: float | None) -> None:
        """Wait, at most connect_timeout (and not past `until`), for the channel to be connected; UnavailableError
        naming the target when it is not. A target never reached fails at its first refusal (a refused connection,
        a name that does not resolve), as soon as gRPC says so."""
        state = self._channel.get_state(try_to_connect=True)
        if state is grpc.ChannelConnectivity.READY:
            self._reached = True
            return
        left = time_left(until)
        within = self._connect_timeout if left is None else min(self._connect_timeout, left)
        try:
            async with asyncio.timeout(within):
                while state is not grpc.ChannelConnectivity.READY:
                    if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE and not self._reached:
                        message = f"cannot connect to {self._target} (connection refused, or no such host)"
                        raise UnavailableError(grpc.StatusCode.UNAVAILABLE, message, reason="NOT_CONNECTED")
                    await self._channel.wait_for_state_change(state)
                    state = self._channel.get_state(try_to_connect=True)
        except TimeoutError:
            message = f"nothing answers at {self._target} (waited {within:.3g}s for a connection)"
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, message, reason="NOT_CONNECTED") from None
        self._reached = True

    async def _events(
        self,
        open_stream: Callable[[str], AsyncIterable[_EventMessage]],
        token: str,
    ) -> AsyncGenerator[watch_pb2.BatchEvent, None]:
        """A watch stream, reopened after the last resume_token seen whenever it breaks with a retryable error."""
        attempt = 0
        while True:
            try:
                await self._connect(None)
                async for response in open_stream(token):
                    token, attempt = response.event.resume_token, 0
                    yield response.event
                return
            except (grpc.aio.AioRpcError, UnavailableError) as error:
                attempt += 1
                await self._pause_or_raise(error, attempt, until=None)

    async def _pause_or_raise(
        self, error: grpc.aio.AioRpcError | BatchError, attempt: int, *, until: float | None, retryable: bool = False
    ) -> None:
        """Wait before the next try, or raise the failure: one a retry cannot cure, the last try's, one whose wait
        would pass the deadline, and no connection to a target never reached (nothing answers there: fail fast)."""
        if isinstance(error, BatchError):
            if not self._reached:
                raise error
            failure = error
        else:
            failure = BatchError.of(error)
        delay = self.retry.pause(failure, attempt, until=until, retryable=retryable)
        if delay is None:
            raise failure from (None if error is failure else error)
        await asyncio.sleep(delay)
