"""Every request of a batch of several parts has an outcome, in the order the requests were sent: its last try's
(a re-run's result stands for its earlier tries', `attempts` says how many), or an error result saying why there is
none. A few first-try parts, with their re-runs, are held at a time (READ_AHEAD)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Awaitable, Callable

from otari_batch_grpc.server.domain.parts.assemble import part_state
from otari_batch_grpc.server.domain.parts.ids import unpack
from otari_batch_grpc.server.store import PartRecord, Store
from otari_batch_grpc.v1 import batch_pb2, result_pb2

# First-try parts (with their re-runs) read at once while results are sent (one PART_CREATES_AT_ONCE's worth).
READ_AHEAD = 4
# A completed part's results, by custom_id.
ReadResults = Callable[[PartRecord], Awaitable[dict[str, result_pb2.BatchResult]]]

_COMPLETED = batch_pb2.BATCH_STATUS_COMPLETED
# Why a request of a part that did not complete has no result, by the part's status.
_NO_RESULT = {
    batch_pb2.BATCH_STATUS_CANCELLED: ("batch_cancelled", "was cancelled before this request ran"),
    batch_pb2.BATCH_STATUS_EXPIRED: ("batch_expired", "expired before this request ran"),
    batch_pb2.BATCH_STATUS_FAILED: ("batch_failed", "failed as a whole"),
}


async def outcomes(store: Store, batch_id: str, read: ReadResults, *, start: int = 0) -> AsyncGenerator[bytes, None]:
    """One serialized BatchResult per request, in request order (see above), from the first part that ends past
    `start`. The next first-try parts (with
    their re-runs) are read while one is sent, READ_AHEAD at most: the gateway's pace, not one part after another,
    and a bounded number of parts in memory."""
    parts = await store.parts(batch_id)
    reruns: dict[int, list[PartRecord]] = defaultdict(list)
    for part in parts:
        if part.rerun_of is not None:
            reruns[part.rerun_of].append(part)
    firsts = iter([p for p in parts if p.rerun_of is None and p.first + p.count > start])
    reading: deque[asyncio.Task[tuple[list[str], dict[str, result_pb2.BatchResult]]]] = deque()

    def read_next() -> None:
        part = next(firsts, None)
        if part is not None:
            reading.append(asyncio.ensure_future(_group(store, batch_id, part, reruns, read)))

    try:
        for _ in range(READ_AHEAD):
            read_next()
        while reading:
            custom_ids, found = await reading.popleft()
            read_next()
            for custom_id in custom_ids:
                yield found[custom_id].SerializeToString()
    finally:
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)


async def _group(
    store: Store, batch_id: str, part: PartRecord, reruns: dict[int, list[PartRecord]], read: ReadResults
) -> tuple[list[str], dict[str, result_pb2.BatchResult]]:
    """A first-try part's custom_ids in order, and each one's outcome: its last try's."""
    custom_ids = unpack(await store.part_custom_ids(batch_id, part.index))
    found = await _of(store, batch_id, part, read)
    chain = list(reruns[part.index])
    while chain:  # each re-run's outcome stands for its requests' earlier tries (one never made: theirs stand)
        rerun = chain.pop(0)
        if rerun.upstream_id != "":
            found.update(await _of(store, batch_id, rerun, read))
        chain.extend(reruns[rerun.index])
    return custom_ids, found


async def _of(store: Store, batch_id: str, part: PartRecord, read: ReadResults) -> dict[str, result_pb2.BatchResult]:
    """The outcome of each request of one part (a result, or an error result saying why there is none)."""
    custom_ids = unpack(await store.part_custom_ids(batch_id, part.index))
    state = part_state(part)
    found = await read(part) if state is not None and state.status == _COMPLETED else {}
    out = {}
    for custom_id in custom_ids:
        result = found.get(custom_id) or missing(custom_id, part, state)
        result.attempts = part.attempt
        out[custom_id] = result
    return out


def missing(custom_id: str, part: PartRecord, state: batch_pb2.Batch | None) -> result_pb2.BatchResult:
    """The error result of a request its part has no result for, saying why."""
    where = f"its part {part.index} (upstream batch {part.upstream_id})" if part.upstream_id else "its part"
    if state is None or part.upstream_id == "":
        code, message = "batch_cancelled", f"No result: {where} was never made (the batch was cancelled first)."
    elif state.status == _COMPLETED:
        code, message = (
            "result_missing",
            f"No result: {where} completed, but the gateway's results for it do not list this request.",
        )
    else:
        code, why = _NO_RESULT.get(state.status, ("batch_failed", f"ended {state.upstream_status}"))
        message = f"No result: {where} {why}; the gateway keeps no results of a part that did not complete."
    return result_pb2.BatchResult(custom_id=custom_id, error=result_pb2.ResultError(code=code, message=message))
