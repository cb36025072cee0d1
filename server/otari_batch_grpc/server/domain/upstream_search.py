"""What an attempt that got no reply made upstream, found by the stamp it left in the batch's metadata: the create
of a batch (its request_id) and of each part of a batch of several (the part's stamp) look alike after a lost reply.

The gateway filters each listing page by owner after asking the provider and gives no cursor, so an empty page is
not the end. The search walks back until it passes a batch made before the attempt (nothing older can be the one:
see `_passed`); when it cannot get there, the outcome is unknown, and creating again could make a second batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.errors import upstream_errors
from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.store import Store

# How far back the search looks: pages of the caller's newest batches.
RECOVERY_PAGES = 10
RECOVERY_PAGE_SIZE = 100
# The gateway's clock and ours may differ this much.
CLOCK_SKEW_SECONDS = 300.0
# A claim outlives its attempt's own limit by this much: for a create the gateway got just before the attempt gave up
# (or died) to be listed before another attempt looks for it, and for the clocks of replicas and database to differ.
ATTEMPT_GRACE_SECONDS = 10.0


class Unknown(Exception):
    """The listing could not show whether the attempt made a batch."""


async def find_made(
    gateway: GatewayClient,
    store: Store,
    caller: Caller,
    provider: str,
    match: Callable[[dict[str, Any]], bool],
    *,
    since: float,
    time_left: Callable[[], float | None],
) -> dict[str, Any] | None:
    """The batch `match` recognises among the caller's at `provider`, made by an attempt that began at `since`
    (epoch seconds); None when it certainly made none. Raises Unknown when the listing cannot say."""
    after: str | None = None
    for _ in range(RECOVERY_PAGES):
        with upstream_errors():
            page = await gateway.list_batches(
                caller.key, provider, after=after, limit=RECOVERY_PAGE_SIZE, time_left=time_left()
            )
        for item in page:
            if match(item):
                return item
        if not page:
            break
        if await _passed(store, page, since):
            return None  # walked past the attempt: it made nothing
        after = str(page[-1]["id"])
    raise Unknown


async def _passed(store: Store, page: list[dict[str, Any]], since: float) -> bool:
    """Whether a batch of the page (each checked already) was made before the attempt, so that nothing it made is
    listed after it (the listing is newest first): this service saw it before then (its registry's clock, the
    replicas' and the database's, apart by less than the grace), or the gateway's clock says so (by more than the
    gateway's and ours may differ). The oldest is asked first."""
    for item in reversed(page):
        created = item.get("created_at")
        if isinstance(created, int | float) and created < since - CLOCK_SKEW_SECONDS:
            return True
        record = await store.batch(str(item.get("id", "")))
        if record is not None and record.first_seen < since - ATTEMPT_GRACE_SECONDS:
            return True
    return False
