"""What the registry keeps of a batch the gateway returned."""

from __future__ import annotations

from otari_batch_grpc.server import convert
from otari_batch_grpc.server.store import SeenBatch
from otari_batch_grpc.v1 import batch_pb2


def seen(batch: batch_pb2.Batch, provider: str) -> SeenBatch:
    """What the registry keeps of a batch the gateway just returned."""
    return SeenBatch(
        id=batch.id,
        provider=provider,
        status=batch.upstream_status or convert.status_name(batch.status),
        terminal=batch.status in convert.TERMINAL_STATUSES,
        snapshot=batch.SerializeToString(),
    )
