"""Batches that advance while no one calls: each batch with re-runs asked is read with the key delegated for it
(which advances its re-runs: see parts.reruns), one replica at a time, unless a watch polls it already."""

from __future__ import annotations

import logging

from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import Code, ServiceError

log = logging.getLogger("otari_batch_grpc.core")

# Batches a key is delegated for, followed in one round at most.
DELEGATED_AT_ONCE = 1000


async def follow_delegated(core: Batches) -> int:
    """Read each live batch a key is delegated for, unless a watch loop polls it, here or on another replica (the
    same lease). Returns how many were read."""
    store, reruns = core.store, core.wholes.reruns
    read = 0
    for batch_id in await store.delegated(DELEGATED_AT_ONCE):
        if core.hub.polling(batch_id) or (core.fleet is not None and not await core.fleet.hold(batch_id, "re-run")):
            continue
        record = await store.whole(batch_id)
        caller = await reruns.delegated(batch_id)
        if record is None or caller is None:
            await store.end_reruns(batch_id)
            continue
        try:
            await core.fetch(caller, batch_id, record.provider, time_left=None)
            read += 1
        except ServiceError as error:
            if error.code == Code.UNAUTHENTICATED:  # the key is refused: its re-runs stop, the batch goes on
                await store.end_reruns(batch_id)
            log.warning("batch %s, followed for its re-runs, could not be read: %s", batch_id, error.message)
    return read
