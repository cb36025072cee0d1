"""Per-caller limits, so one caller cannot take the service down: open streams, concurrent gateway calls, the size
of a batch, the bytes of uploads spooled at once and the parts of batches being made at once, and a cap on streams
for the whole server. (Batches watched per caller are counted by the watch hub, which every subscription passes
through.)

Past a limit the call gets RESOURCE_EXHAUSTED with a RetryInfo and an ErrorInfo reason naming the limit. Gateway
calls past a caller's concurrency wait in that caller's own queue (a burst queues behind its own limit, not
everyone's); only when that queue is full is the call refused. Callers are told apart by their owner tag (a keyed
hash of their key) or, at the gateway, by the key itself, held only as a dict key while calls are in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from otari_batch_grpc.server.domain.errors import ServiceError, refusal


@dataclass(frozen=True, kw_only=True)
class LimitPolicy:
    """The limits' part of the settings (built from `Settings`, which holds every default and says what each is)."""

    streams_per_caller: int  # StreamResults, WatchBatch and WatchBatches calls open at once
    streams_total: int  # for the whole server
    upstream_per_caller: int  # gateway calls in flight at once
    upstream_queue_per_caller: int  # gateway calls waiting for one of those
    batch_requests: int = 1_000_000  # requests in one batch
    spooled_bytes_per_caller: int = 2 * 1024**3  # bytes of uploads being received at once
    spooled_bytes_total: int = 8 * 1024**3  # for the whole server (the disk under its temporary files)
    parts_in_flight_per_caller: int = 100  # parts of batches being made upstream at once


class Limits:
    """Counters for the limits of a LimitPolicy. `on_refusal(limit)` is called for each refusal (metrics)."""

    def __init__(self, policy: LimitPolicy, *, on_refusal: Callable[[str], None] | None = None) -> None:
        self.policy = policy
        self._streams: Counter[str] = Counter()
        self._streams_total = 0
        self._upstream: dict[str, _Gate] = {}
        self._spooled: Counter[str] = Counter()
        self._spooled_total = 0
        self._parts: Counter[str] = Counter()
        self._on_refusal = on_refusal

    @property
    def open_streams(self) -> int:
        return self._streams_total

    def open_stream(self, owner: str) -> Callable[[], None]:
        """Count one stream of `owner`; returns its release, safe to call twice."""
        policy = self.policy
        if self._streams_total >= policy.streams_total:
            raise self._refuse(
                "streams_total",
                f"The server has {policy.streams_total:,} streams open, its limit: retry shortly, or elsewhere.",
            )
        if self._streams[owner] >= policy.streams_per_caller:
            raise self._refuse(
                "streams_per_caller",
                f"You have {policy.streams_per_caller:,} streams open, the limit per caller: close one first "
                "(WatchBatches follows many batches on one stream).",
            )
        self._streams[owner] += 1
        self._streams_total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._streams_total -= 1
            self._streams[owner] -= 1
            if self._streams[owner] <= 0:
                del self._streams[owner]

        return release

    @contextlib.asynccontextmanager
    async def upstream(self, key: str) -> AsyncIterator[None]:
        """Hold one of `key`'s gateway-call slots for a call, waiting in its queue when they are all taken."""
        gate = self._upstream.get(key)
        if gate is None:
            gate = self._upstream[key] = _Gate(self.policy.upstream_per_caller)
        if gate.waiting >= self.policy.upstream_queue_per_caller:
            raise self._refuse(
                "upstream_per_caller",
                f"You have {self.policy.upstream_per_caller} calls to the gateway in flight and "
                f"{gate.waiting} waiting, the limit per caller: slow down.",
            )
        gate.waiting += 1
        try:
            await gate.slots.acquire()
        except BaseException:  # cancelled while waiting
            gate.waiting -= 1
            self._forget_idle(key, gate)
            raise
        gate.waiting -= 1
        gate.active += 1
        try:
            yield
        finally:
            gate.active -= 1
            gate.slots.release()
            self._forget_idle(key, gate)

    def batch_size(self, requests: int) -> None:
        """RESOURCE_EXHAUSTED for a batch of more requests than one may hold (no retry gets under it)."""
        if requests > self.policy.batch_requests:
            raise self._refuse(
                "batch_requests",
                f"A batch holds at most {self.policy.batch_requests:,} requests here; this one has more: split it "
                "into several batches.",
                retry=False,
            )

    @contextlib.contextmanager
    def spooling(self, owner: str) -> Iterator[Callable[[int], None]]:
        """Count the bytes of one upload of `owner`'s as they are spooled (the function given, per chunk), against
        the caller's limit and the server's; given back when the upload ends."""
        counted = 0
        policy = self.policy

        def add(size: int) -> None:
            nonlocal counted
            if self._spooled[owner] + size > policy.spooled_bytes_per_caller:
                raise self._refuse(
                    "spooled_bytes_per_caller",
                    f"Your uploads being received hold {self._spooled[owner]:,} bytes, and this chunk would pass "
                    f"the limit per caller ({policy.spooled_bytes_per_caller:,}): wait for one to end.",
                )
            if self._spooled_total + size > policy.spooled_bytes_total:
                raise self._refuse(
                    "spooled_bytes_total",
                    f"The uploads this server is receiving hold {self._spooled_total:,} bytes, and this chunk would "
                    f"pass its limit ({policy.spooled_bytes_total:,}): retry shortly, or elsewhere.",
                )
            self._spooled[owner] += size
            self._spooled_total += size
            counted += size

        try:
            yield add
        finally:
            self._spooled_total -= counted
            self._spooled[owner] -= counted
            if self._spooled[owner] <= 0:
                del self._spooled[owner]

    @contextlib.contextmanager
    def parts_in_flight(self, owner: str, parts: int) -> Iterator[None]:
        """Count the parts one create of `owner`'s makes upstream while it runs, against the caller's limit."""
        if parts and self._parts[owner] + parts > self.policy.parts_in_flight_per_caller:
            raise self._refuse(
                "parts_in_flight_per_caller",
                f"Your batches being made hold {self._parts[owner]:,} parts, and this one's {parts:,} would pass the "
                f"limit per caller ({self.policy.parts_in_flight_per_caller:,}): retry once one is made.",
            )
        self._parts[owner] += parts
        try:
            yield
        finally:
            self._parts[owner] -= parts
            if self._parts[owner] <= 0:
                del self._parts[owner]

    def _forget_idle(self, key: str, gate: _Gate) -> None:
        if gate.active == 0 and gate.waiting == 0 and self._upstream.get(key) is gate:
            del self._upstream[key]

    def _refuse(self, limit: str, message: str, *, retry: bool = True) -> ServiceError:
        if self._on_refusal is not None:
            self._on_refusal(limit)
        return refusal(limit, message, retry=retry)


class _Gate:
    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.active = 0
        self.waiting = 0
