"""What the domain knows of a batch state: an observation (a revision the service saw) and its registry row."""

from __future__ import annotations

from dataclasses import dataclass

from otari_batch_grpc.server.gateway import convert
from otari_batch_grpc.server.store import Revision, SeenBatch
from otari_batch_grpc.v1 import batch_pb2


@dataclass(frozen=True)
class Observation:
    """A batch state the service saw at the gateway, saved as revision `rev` (number `seq` among all revisions)."""

    batch: batch_pb2.Batch
    rev: int
    observed_at: float
    seq: int = 0

    @property
    def terminal(self) -> bool:
        return self.batch.status in convert.TERMINAL_STATUSES

    @property
    def batch_id(self) -> str:
        return self.batch.id

    @classmethod
    def of(cls, revision: Revision) -> Observation:
        return cls(batch_pb2.Batch.FromString(revision.snapshot), revision.rev, revision.observed_at, revision.seq)

    def as_shown(self, batch: batch_pb2.Batch) -> Observation:
        """The same revision, as one caller was shown it (the gateway echoes `provider` as each caller spelled it)."""
        return Observation(batch, self.rev, self.observed_at, self.seq)

    def echoing(self, provider: str) -> Observation:
        """The same revision, with `provider` spelled as a caller spelled it."""
        if self.batch.provider == provider:
            return self
        batch = batch_pb2.Batch()
        batch.CopyFrom(self.batch)
        batch.provider = provider
        return self.as_shown(batch)


def seen(batch: batch_pb2.Batch, provider: str) -> SeenBatch:
    """What the registry keeps of a batch the gateway just returned."""
    return SeenBatch(
        id=batch.id,
        provider=provider,
        status=batch.upstream_status or convert.status_name(batch.status),
        terminal=batch.status in convert.TERMINAL_STATUSES,
        snapshot=batch.SerializeToString(deterministic=True),
        created_at=batch.created_at.seconds + batch.created_at.nanos / 1e9,
    )


# A batch's lifecycle, in order: the gateway never moves a batch back along it. A cancel may come while a batch
# is finalizing, and a cancelling batch ends cancelled, so CANCELLING comes after FINALIZING; a status this contract
# does not know (UNSPECIFIED) has no place in it.
_STAGE = {
    batch_pb2.BATCH_STATUS_VALIDATING: 1,
    batch_pb2.BATCH_STATUS_IN_PROGRESS: 2,
    batch_pb2.BATCH_STATUS_FINALIZING: 3,
    batch_pb2.BATCH_STATUS_CANCELLING: 4,
    **{status: 5 for status in convert.TERMINAL_STATUSES},
}


def behind(batch: batch_pb2.Batch, latest: batch_pb2.Batch) -> bool:
    """Whether `batch` is a state from before `latest` (an earlier stage, or the same status with fewer requests
    done): an answer to a read sent before the change `latest` shows, which arrived after it."""
    stage, latest_stage = _STAGE.get(batch.status), _STAGE.get(latest.status)
    if stage is None or latest_stage is None:
        return False
    if stage != latest_stage:
        return stage < latest_stage
    done, latest_done = batch.request_counts, latest.request_counts
    return batch.status == latest.status and (done.completed + done.failed < latest_done.completed + latest_done.failed)


def count_requests(batch: batch_pb2.Batch, known: int) -> None:
    """A batch the gateway shows while validating counts 0 requests (the provider has not read its input yet); the
    service knows how many there are (it sent them, or an earlier state said): `known` stands in for that 0."""
    if batch.status == batch_pb2.BATCH_STATUS_VALIDATING and batch.request_counts.total == 0 and known > 0:
        batch.request_counts.total = known


def same_state(a: batch_pb2.Batch, b: batch_pb2.Batch) -> bool:
    """Equal but for `provider`, which the gateway echoes as each caller spelled it."""
    if a.provider == b.provider:
        return a == b
    copy = batch_pb2.Batch()
    copy.CopyFrom(b)
    copy.provider = a.provider
    return a == copy
