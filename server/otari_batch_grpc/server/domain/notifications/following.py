"""The batches webhook endpoints are told of, followed while no one calls (#32): each live batch of an endpoint's
owner is read with the key the owner delegated to its endpoints, once per fleet (the watch loops' lease: a batch a
watch polls already is not read again), so its changes are saved, and the outbox written with them, with nobody
connected. The gateway's 401 to that key disables the owner's endpoints, saying why."""

from __future__ import annotations

import asyncio
import logging
import time

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.core.batches import Batches
from otari_batch_grpc.server.domain.errors import Code, ServiceError
from otari_batch_grpc.server.domain.notifications.registrations import ENDPOINT_KEY
from otari_batch_grpc.server.domain.sealing import Sealer, Unsealable
from otari_batch_grpc.server.store import FollowedBatch

log = logging.getLogger("otari_batch_grpc.webhooks")

# Batches followed for endpoints in one round at most, and read at once.
FOLLOWED_AT_ONCE = 1000
READ_AT_ONCE = 16
KEY_REFUSED = "the gateway refused (401) the key it was registered with: register it again with a valid key"


async def follow_endpoint_batches(core: Batches, sealer: Sealer) -> int:
    """Read each live batch an endpoint is to be told of, unless a watch polls it, here or on another replica
    (READ_AT_ONCE at a time: a round of a thousand batches takes seconds, not a thousand gateway round trips).
    Returns how many were read."""
    keys: dict[str, Caller | None] = {}
    gate = asyncio.Semaphore(READ_AT_ONCE)

    async def read(followed: FollowedBatch) -> bool:
        async with gate:  # (the lease too: a thousand at once would drain the database's pool)
            if core.hub.polling(followed.batch_id):
                return False
            if core.fleet is not None and not await core.fleet.hold(followed.batch_id, "webhook"):
                return False
            if followed.endpoint_id not in keys:
                keys[followed.endpoint_id] = _delegated(sealer, followed)
            caller = keys[followed.endpoint_id]
            return caller is not None and await _read(core, caller, followed.batch_id, followed.provider)

    found = await core.store.endpoint_batches(FOLLOWED_AT_ONCE)
    return sum(await asyncio.gather(*(read(followed) for followed in found)))


async def _read(core: Batches, caller: Caller, batch_id: str, provider: str) -> bool:
    try:
        await core.fetch(caller, batch_id, provider, time_left=None)
    except ServiceError as error:
        if error.code == Code.UNAUTHENTICATED:
            disabled = await core.store.disable_endpoints_of(caller.owner, KEY_REFUSED, now=time.time())
            if disabled:
                log.warning("%d webhook endpoint(s) disabled: the gateway refused their owner's key", disabled)
        else:
            log.info("batch %s, followed for webhooks, could not be read: %s", batch_id, error.message)
        return False
    except Exception:  # one batch's trouble is its own
        log.exception("batch %s, followed for webhooks, failed; tried again next round", batch_id)
        return False
    return True


def _delegated(sealer: Sealer, followed: FollowedBatch) -> Caller | None:
    """The caller whose key an endpoint was given (None: one this replica cannot open)."""
    try:
        key = sealer.open(followed.sealed_key, purpose=ENDPOINT_KEY, subject=followed.endpoint_id, owner=followed.owner)
    except Unsealable as exc:  # (a key-encryption key this replica does not hold: another may)
        log.warning("the key of webhook endpoint %s does not open here: %s", followed.endpoint_id, exc)
        return None
    return Caller(key, followed.owner)
