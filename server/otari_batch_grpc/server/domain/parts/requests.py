"""A batch's requests, wherever they are: in the CreateBatch message (`InMessage`), or spooled to disk as an upload
arrives (`Spool`), read back a part at a time. And the request's digest, the same whichever way it came."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from array import array
from collections.abc import Iterable, Sequence
from typing import Protocol

from otari_batch_grpc.server.util import wire
from otari_batch_grpc.v1 import batch_service_pb2

Item = batch_service_pb2.BatchRequestItem
_REQUESTS_TAG = b"\x12"  # CreateBatchRequest.requests: field 2, length-delimited


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

    def custom_ids(self, start: int, end: int) -> list[str]:
        return [item.custom_id for item in self._items[start:end]]


class Spool:
    """An upload's requests on disk as they arrive (each serialized, one after another in a temporary file that is
    gone once closed), their sizes and where each starts; and the digest `fingerprint` would give the whole request,
    computed as they arrive: a CreateBatchRequest serializes as its fields in order, so the model's bytes, then each
    request's entry, then the other fields' bytes are the same bytes however the requests were chunked."""

    def __init__(self, header: batch_service_pb2.CreateBatchRequest) -> None:
        self.header = header_of(header)
        # Unbuffered, read with pread: parts read at once (from threads) never share a file position.
        self._file = tempfile.TemporaryFile(prefix="otari-upload-", buffering=0)  # noqa: SIM115  # see `close`
        self._sizes = array("Q")
        self._offsets = array("Q", [0])
        self._custom_ids: list[str] = []
        self._digest = hashlib.sha256(batch_service_pb2.CreateBatchRequest(model=header.model).SerializeToString())
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._sizes)

    def sizes(self) -> Iterable[int]:
        return self._sizes

    async def add(self, items: Sequence[Item]) -> None:
        """Spool the next requests (written off the event loop)."""
        encoded = [item.SerializeToString(deterministic=True) for item in items]
        self._custom_ids.extend(item.custom_id for item in items)
        for data in encoded:
            self._digest.update(wire.field_entry(_REQUESTS_TAG, data))
            self._sizes.append(len(data))
            self.bytes += len(data)
            self._offsets.append(self.bytes)
        await asyncio.to_thread(self._write, b"".join(encoded))

    def _write(self, data: bytes) -> None:
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
        begin, stop = self._offsets[start], self._offsets[end]
        sizes = self._sizes[start:end]

        def load() -> list[Item]:
            data = os.pread(self._file.fileno(), stop - begin, begin)
            items, at = [], 0
            for size in sizes:
                items.append(Item.FromString(data[at : at + size]))
                at += size
            return items

        return await asyncio.to_thread(load)

    def custom_ids(self, start: int, end: int) -> list[str]:
        return self._custom_ids[start:end]

    async def whole(self) -> batch_service_pb2.CreateBatchRequest:
        """The header with every request: for an upload that fits one part."""
        request = batch_service_pb2.CreateBatchRequest()
        request.CopyFrom(self.header)
        request.requests.extend(await self.read(0, len(self)))
        return request

    def close(self) -> None:
        self._file.close()
