"""A batch's requests, wherever they are: in the CreateBatch message (`InMessage`), or spooled to disk as an upload
arrives (`Spool`), read back a part at a time. And the request's digest, the same whichever way it came."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from otari_batch_grpc.server.util import wire
from otari_batch_grpc.v1 import batch_service_pb2

Item = batch_service_pb2.BatchRequestItem
_REQUESTS_TAG = b"\x12"  # CreateBatchRequest.requests: field 2, length-delimited


def _any_size(_size: int) -> None:
    """Admits a chunk of any size (`Spool.add`'s default)."""


class UnknownChunkFields(ValueError):
    """A chunk carries fields besides its requests that this contract does not have (a client built on another)."""


class Requests(Protocol):
    """A batch to create: its header (the CreateBatchRequest without requests) and its requests, in order."""

    header: batch_service_pb2.CreateBatchRequest

    def __len__(self) -> int: ...

    def fingerprint(self) -> str:
        """`fingerprint` of the whole request."""
        ...

    async def whole(self) -> batch_service_pb2.CreateBatchRequest:
        """The header with every request (for a batch that fits one part)."""
        ...

    def sizes(self) -> Iterable[int]:
        """Each request's size in bytes (as sent to this service), in order: what the plan splits by."""
        ...

    async def read(self, start: int, end: int) -> Sequence[Item]:
        """The requests [start, end)."""
        ...

    async def part(
        self, header: batch_service_pb2.CreateBatchRequest, start: int, end: int
    ) -> batch_service_pb2.CreateBatchRequest:
        """`header` (a CreateBatchRequest without requests) with the requests [start, end): a part to make."""
        ...

    def custom_ids(self, start: int, end: int) -> list[str]:
        """The custom_ids of the requests [start, end), without reading the requests."""
        ...


def header_of(request: batch_service_pb2.CreateBatchRequest) -> batch_service_pb2.CreateBatchRequest:
    """The request without its requests."""
    header = batch_service_pb2.CreateBatchRequest()
    header.CopyFrom(request)
    header.ClearField("requests")
    return header


def fingerprint(request: batch_service_pb2.CreateBatchRequest) -> str:
    """A hash of everything in the request but its request_id."""
    copy = batch_service_pb2.CreateBatchRequest()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class InMessage:
    """The requests of a CreateBatch message."""

    def __init__(self, request: batch_service_pb2.CreateBatchRequest) -> None:
        self._request = request
        self._items = request.requests
        self.header = header_of(request)

    def __len__(self) -> int:
        return len(self._items)

    def fingerprint(self) -> str:
        return fingerprint(self._request)

    async def whole(self) -> batch_service_pb2.CreateBatchRequest:
        return self._request

    def sizes(self) -> Iterable[int]:
        return (item.ByteSize() for item in self._items)

    async def read(self, start: int, end: int) -> Sequence[Item]:
        return self._items[start:end]

    async def part(
        self, header: batch_service_pb2.CreateBatchRequest, start: int, end: int
    ) -> batch_service_pb2.CreateBatchRequest:
        request = batch_service_pb2.CreateBatchRequest()
        request.CopyFrom(header)
        request.requests.extend(self._items[start:end])
        return request

    def custom_ids(self, start: int, end: int) -> list[str]:
        return [item.custom_id for item in self._items[start:end]]


class Spool:
    """An upload's requests on disk as they arrive (as CreateBatchRequest.requests entries, one after another in a
    temporary file that is gone once closed), their sizes and where each starts; and the digest `fingerprint` would
    give the whole request, computed as they arrive: a CreateBatchRequest serializes as its fields in order, so the
    model's bytes, then each request's entry, then the other fields' bytes are the same bytes however the requests
    were chunked."""

    def __init__(self, header: batch_service_pb2.CreateBatchRequest) -> None:
        self.header = header_of(header)
        # Unbuffered, read with pread: parts read at once (from threads) never share a file position.
        self._file = tempfile.TemporaryFile(prefix="otari-upload-", buffering=0)  # noqa: SIM115  # see `close`
        self._sizes = array("Q")
        self._offsets = array("Q", [0])
        self._custom_ids: list[str] = []
        self._digest = hashlib.sha256(batch_service_pb2.CreateBatchRequest(model=header.model).SerializeToString())
        self._write: asyncio.Future[None] | None = None
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._sizes)

    def sizes(self) -> Iterable[int]:
        return self._sizes

    async def add(self, chunk: batch_service_pb2.RequestChunk, *, admit: Callable[[int], None] = _any_size) -> None:
        """Spool the next requests: the chunk's bytes as they are, since a chunk serializes as the entries of
        CreateBatchRequest.requests (the same field number). `admit` hears their size before anything is kept (it
        refuses by raising). They are written on a thread while the next chunk arrives and is checked (one write
        at a time, in order: this waits for the one before)."""
        data = chunk.SerializeToString(deterministic=True)
        admit(len(data))
        sizes, ends = _entries(data, self.bytes)
        await self.flush()
        self._digest.update(data)
        self._write = asyncio.ensure_future(asyncio.to_thread(self._append, data))
        self._sizes.extend(sizes)
        self._offsets.extend(ends)
        self._custom_ids.extend(item.custom_id for item in chunk.requests)
        self.bytes += len(data)

    async def flush(self) -> None:
        """Once every request added is written (raising what a write raised). A caller cancelled meanwhile leaves
        the write running (shielded): it is done only once its thread is."""
        if self._write is not None:
            await asyncio.shield(self._write)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # (a raw write may take less than it is given)
            view = view[self._file.write(view) or 0 :]

    def fingerprint(self) -> str:
        """`fingerprint` of the header with every request spooled."""
        rest = batch_service_pb2.CreateBatchRequest()
        rest.CopyFrom(self.header)
        rest.ClearField("model")
        rest.ClearField("request_id")
        digest = self._digest.copy()
        digest.update(rest.SerializeToString(deterministic=True))
        return digest.hexdigest()

    async def read(self, start: int, end: int) -> Sequence[Item]:
        return (await self.part(batch_service_pb2.CreateBatchRequest(), start, end)).requests

    async def part(
        self, header: batch_service_pb2.CreateBatchRequest, start: int, end: int
    ) -> batch_service_pb2.CreateBatchRequest:
        await self.flush()
        begin, stop = self._offsets[start], self._offsets[end]
        head = header.SerializeToString(deterministic=True)

        def load() -> batch_service_pb2.CreateBatchRequest:
            return batch_service_pb2.CreateBatchRequest.FromString(
                head + os.pread(self._file.fileno(), stop - begin, begin)
            )

        return await asyncio.to_thread(load)

    def custom_ids(self, start: int, end: int) -> list[str]:
        return self._custom_ids[start:end]

    async def whole(self) -> batch_service_pb2.CreateBatchRequest:
        """The header with every request: for an upload that fits one part."""
        return await self.part(self.header, 0, len(self))

    def close(self) -> None:
        """The file closed (and so gone), once no write is under way: a write still running finishes first (what it
        raised goes with the upload it was part of)."""
        if self._write is None or self._write.done():
            self._file.close()
        else:
            self._write.add_done_callback(self._closed_after)

    def _closed_after(self, write: asyncio.Future[None]) -> None:
        if write.cancelled():  # (the loop ending: its thread may still write; the file goes with the process)
            return
        write.exception()  # (taken: never logged as never retrieved)
        self._file.close()


def _entries(data: bytes, at: int) -> tuple[array[int], array[int]]:
    """The sizes of the requests in a chunk's bytes, and where each one's entry ends (counting from `at`). Refuses
    (UnknownChunkFields) bytes that are anything but CreateBatchRequest.requests entries."""
    sizes, ends = array("Q"), array("Q")
    position, end = 0, len(data)
    while position < end:
        if data[position] != _REQUESTS_TAG[0]:  # a field of the chunk's own: none this contract has
            raise UnknownChunkFields(f"a chunk of {end} bytes holds a field (tag {data[position]}) besides requests")
        size, position = wire.read_varint(data, position + 1)
        position += size
        sizes.append(size)
        ends.append(at + position)
    return sizes, ends
