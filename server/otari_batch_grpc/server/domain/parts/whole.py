"""What the parts of a batch are together: one status, by one rule for one part and many alike, and the counts.

While any part is live, or a re-run is pending: CANCELLING once a cancel was asked (or a part is being cancelled),
else the least advanced status of the live parts (VALIDATING, then IN_PROGRESS, then FINALIZING; IN_PROGRESS while
only a re-run is pending). Once every part is terminal and nothing is pending: CANCELLED if a cancel was asked or a
part was cancelled, else COMPLETED if any part completed, else EXPIRED if every part expired, else FAILED. A batch
of one part has that part's status.
"""

from __future__ import annotations

from collections.abc import Sequence

from otari_batch_grpc.v1 import batch_pb2

S = batch_pb2.BatchStatus
_LIVE_ORDER = (batch_pb2.BATCH_STATUS_VALIDATING, batch_pb2.BATCH_STATUS_IN_PROGRESS, batch_pb2.BATCH_STATUS_FINALIZING)
_CANCELLING = batch_pb2.BATCH_STATUS_CANCELLING
TERMINAL = frozenset(
    (
        batch_pb2.BATCH_STATUS_COMPLETED,
        batch_pb2.BATCH_STATUS_FAILED,
        batch_pb2.BATCH_STATUS_EXPIRED,
        batch_pb2.BATCH_STATUS_CANCELLED,
    )
)


def status(parts: Sequence[S.ValueType], *, cancel_asked: bool = False, rerun_pending: bool = False) -> S.ValueType:
    """The batch's status from its parts' statuses (see above). A status this contract does not know
    (UNSPECIFIED) counts as live and least advanced: the batch waits for the gateway to say more."""
    if not parts:
        raise ValueError("a batch has at least one part")
    if len(parts) == 1 and not (cancel_asked or rerun_pending):
        return parts[0]
    live = [s for s in parts if s not in TERMINAL]
    if live or rerun_pending:
        if cancel_asked or _CANCELLING in live or batch_pb2.BATCH_STATUS_CANCELLED in parts:
            return _CANCELLING
        if not live:
            return batch_pb2.BATCH_STATUS_IN_PROGRESS
        known = [s for s in live if s in _LIVE_ORDER]
        if len(known) < len(live):
            return batch_pb2.BATCH_STATUS_VALIDATING
        return min(known, key=_LIVE_ORDER.index)
    if cancel_asked or batch_pb2.BATCH_STATUS_CANCELLED in parts:
        return batch_pb2.BATCH_STATUS_CANCELLED
    if batch_pb2.BATCH_STATUS_COMPLETED in parts:
        return batch_pb2.BATCH_STATUS_COMPLETED
    if all(s == batch_pb2.BATCH_STATUS_EXPIRED for s in parts):
        return batch_pb2.BATCH_STATUS_EXPIRED
    return batch_pb2.BATCH_STATUS_FAILED


def counts(parts: Sequence[batch_pb2.RequestCounts], *, requests: int) -> batch_pb2.RequestCounts:
    """The batch's request counts: the parts' completed and failed summed; total the requests the batch holds
    (a part still validating counts 0 of its own)."""
    return batch_pb2.RequestCounts(
        total=requests, completed=sum(p.completed for p in parts), failed=sum(p.failed for p in parts)
    )
