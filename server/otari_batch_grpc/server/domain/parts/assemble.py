"""A batch of several parts as one Batch: its status by the one rule (whole.status), counts and usage the parts'
sums, timestamps the earliest start and the latest end, and each part listed (Batch.parts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from google.protobuf import timestamp_pb2

from otari_batch_grpc.server.domain.parts import whole
from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.store import PartRecord, WholeRecord
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

Stamp = Literal[
    "created_at",
    "in_progress_at",
    "finalizing_at",
    "cancelling_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelled_at",
    "expires_at",
]
# Set once, by the first part to reach them: the earliest wins.
_STARTS: tuple[Stamp, ...] = ("created_at", "in_progress_at", "finalizing_at", "cancelling_at")
# When the whole ended so: the latest of its parts'.
_ENDS: dict[int, Stamp] = {
    batch_pb2.BATCH_STATUS_COMPLETED: "completed_at",
    batch_pb2.BATCH_STATUS_FAILED: "failed_at",
    batch_pb2.BATCH_STATUS_EXPIRED: "expired_at",
    batch_pb2.BATCH_STATUS_CANCELLED: "cancelled_at",
}


def part_state(part: PartRecord) -> batch_pb2.Batch | None:
    """The part's last state seen (None before its upstream batch is known)."""
    return batch_pb2.Batch.FromString(part.snapshot) if part.snapshot else None


def assemble(
    record: WholeRecord, parts: Sequence[tuple[PartRecord, batch_pb2.Batch | None]], *, rerun_pending: bool = False
) -> batch_pb2.Batch:
    """The batch its parts make: `parts` in order, each with its latest state (None: not made upstream yet, which
    counts as validating). A request's counts are its last try's: a part's failures that a re-run tries again, and
    everything of an expired part that a re-run tries again, are no longer counted."""
    header = batch_service_pb2.CreateBatchRequest.FromString(record.header)
    states = [state for _, state in parts if state is not None]
    statuses = [state.status if state is not None else batch_pb2.BATCH_STATUS_VALIDATING for _, state in parts]
    status = whole.status(statuses, cancel_asked=record.cancel_asked, rerun_pending=rerun_pending)
    batch = batch_pb2.Batch(
        id=record.id,
        object="batch",
        status=status,
        upstream_status=convert.status_name(status),
        provider=record.provider,
        model=states[0].model if states else header.model.partition(":")[2] or header.model,
        completion_window=header.completion_window or "24h",
        endpoint=states[0].endpoint if states else "/v1/chat/completions",
        metadata=header.metadata,
        user=states[0].user if states else header.user,
        request_id=record.request_id,
        request_counts=whole.counts(_last_tries(parts), requests=record.requests),
    )
    for seen in states:
        batch.errors.extend(seen.errors)
        _add_usage(batch.usage, seen.usage)
    for name in _STARTS:
        _earliest(batch, name, states)
    if status in _ENDS:
        _latest(batch, _ENDS[status], states)
    _latest(batch, "expires_at", states)
    if not batch.HasField("created_at"):
        batch.created_at.FromNanoseconds(int(record.created_at * 1e9))
    for part, state in parts:
        batch.parts.append(
            batch_pb2.BatchPart(
                id=part.upstream_id or (state.id if state is not None else ""),
                first_request=part.first,
                request_count=part.count,
                status=state.status if state is not None else batch_pb2.BATCH_STATUS_VALIDATING,
                upstream_status=state.upstream_status if state is not None else "",
                request_counts=state.request_counts if state is not None else batch_pb2.RequestCounts(),
                attempt=part.attempt,
            )
        )
    return batch


def _last_tries(parts: Sequence[tuple[PartRecord, batch_pb2.Batch | None]]) -> list[batch_pb2.RequestCounts]:
    """Each part's counts, less what its re-runs try again."""
    again: dict[int, int] = {}
    for part, _ in parts:
        if part.rerun_of is not None and part.upstream_id != "":  # (one never made tries nothing again)
            again[part.rerun_of] = again.get(part.rerun_of, 0) + part.count
    out = []
    for part, state in parts:
        if state is None:
            continue
        counts, retried = state.request_counts, again.get(part.index, 0)
        if retried and state.status == batch_pb2.BATCH_STATUS_EXPIRED:
            out.append(batch_pb2.RequestCounts())  # every request of it tried again
        else:
            out.append(batch_pb2.RequestCounts(completed=counts.completed, failed=max(0, counts.failed - retried)))
    return out


def _add_usage(total: batch_pb2.Usage, usage: batch_pb2.Usage) -> None:
    total.input_tokens += usage.input_tokens
    total.output_tokens += usage.output_tokens
    total.total_tokens += usage.total_tokens
    total.input_tokens_details.cached_tokens += usage.input_tokens_details.cached_tokens
    total.output_tokens_details.reasoning_tokens += usage.output_tokens_details.reasoning_tokens


def _earliest(batch: batch_pb2.Batch, name: Stamp, states: Sequence[batch_pb2.Batch]) -> None:
    stamps = [getattr(s, name) for s in states if s.HasField(name)]
    if stamps:
        getattr(batch, name).CopyFrom(min(stamps, key=_nanos))


def _latest(batch: batch_pb2.Batch, name: Stamp, states: Sequence[batch_pb2.Batch]) -> None:
    stamps = [getattr(s, name) for s in states if s.HasField(name)]
    if stamps:
        getattr(batch, name).CopyFrom(max(stamps, key=_nanos))


def _nanos(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.ToNanoseconds()
