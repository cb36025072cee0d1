"""Batches that advance while no one calls: each batch with re-runs asked is read with the key delegated for it
(which advances its re-runs: see parts.reruns), one replica at a time, unless a watch polls it already."""

from __future__ import annotations

import logging

from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import Code, ServiceError
from otari_batch_grpc.server.domain.sealing import Unsealable

log = logging.getLogger("otari_batch_grpc.core")

# Batches a key is delegated for, followed in one round at most.
DELEGATED_AT_ONCE = 1000


async def follow_delegated(core: Batches) -> int:
    """Read each live batch a key is delegated for, unless a watch loop polls it, here or on another replica (the
    same lease). Returns how many were read."""
    read = 0
    for batch_id in await core.store.delegated(DELEGATED_AT_ONCE):
        if core.hub.polling(batch_id) or (core.fleet is not None and not await core.fleet.hold(batch_id, "re-run")):
            continue
        try:
            read += await _follow(core, batch_id)
        except Exception:  # one batch's trouble is its own: the others are followed all the same
            log.exception("batch %s, followed for its re-runs, failed; tried again next round", batch_id)
    return read


async def _follow(core: Batches, batch_id: str) -> int:
    store = core.store
    record = await store.whole(batch_id)
    try:
        caller = await core.wholes.reruns.delegated(batch_id)
    except Unsealable as exc:  # (a key-encryption key this replica does not hold: another may)
        log.warning("the key delegated for batch %s does not open here: %s", batch_id, exc)
        return 0
    if record is None or caller is None:
        await store.end_reruns(batch_id)
        return 0
    try:
        observation = await core.fetch(caller, batch_id, record.provider, time_left=None)
    except ServiceError as error:
        if error.code == Code.UNAUTHENTICATED:  # the key is refused: its re-runs stop, the batch goes on
            await store.end_reruns(batch_id)
        log.warning("batch %s, followed for its re-runs, could not be read: %s", batch_id, error.message)
        return 0
    if observation.terminal:  # (the read that saw it end keeps no key either; this one, had that one failed after)
        await store.end_reruns(batch_id)
    return 1
