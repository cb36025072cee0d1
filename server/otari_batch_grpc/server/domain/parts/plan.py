"""Where a batch splits into parts: runs of requests in their order, each at most `max_requests` requests and
`max_bytes` bytes of bodies. The plan depends on the requests alone (their sizes, in order), never on how they
arrived, so a retry splits the same way; it is recorded with the batch, so a replica with other limits does too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class PartTooLarge(ValueError):
    """One request alone is larger than a part may be."""

    def __init__(self, index: int, size: int, max_bytes: int) -> None:
        super().__init__(f"request {index} has {size} bytes; a part holds at most {max_bytes}")
        self.index, self.size, self.max_bytes = index, size, max_bytes


@dataclass(frozen=True)
class Part:
    """The requests [start, end) of a batch, in their order: one upstream batch."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def split(sizes: Iterable[int], *, max_requests: int, max_bytes: int) -> list[Part]:
    """The parts of a batch whose requests' bodies have `sizes` bytes, in order: each as full as the limits allow
    (greedy, so the plan is the fewest parts in request order). Raises PartTooLarge for a request that fits no
    part."""
    if max_requests < 1 or max_bytes < 1:
        raise ValueError("a part holds at least one request and one byte")
    parts: list[Part] = []
    start = count = used = 0
    index = -1
    for index, size in enumerate(sizes):
        if size > max_bytes:
            raise PartTooLarge(index, size, max_bytes)
        if count == max_requests or used + size > max_bytes:
            parts.append(Part(start, index))
            start, count, used = index, 0, 0
        count += 1
        used += size
    if index >= start:
        parts.append(Part(start, index + 1))
    return parts
