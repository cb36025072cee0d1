"""PostgreSQL's fleet of replicas: leases (which replica does a job for all, such as polling a live batch) and
what each replica hears of the others (LISTEN/NOTIFY: the revisions they saved, the keys they heard refused)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from otari_batch_grpc.server.store.base import Notice, RefusalNotice, RevisionNotice
from otari_batch_grpc.server.store.postgres.connection import (
    LISTEN_RETRY_SECONDS,
    REVISIONS_CHANNEL,
    PostgresConnection,
)

log = logging.getLogger("otari_batch_grpc.store")

# A lease row is taken when free or expired, renewed by its holder, and left alone otherwise (no row comes back).
# A holder is "<replica>/<generation>": a replica's newer generation (a loop that replaced an ending one) takes
# over its own older one at once, and a release deletes only its own generation's row (compare-and-delete), so an
# ending loop never frees the lease of the loop that replaced it.
_HOLD_LEASE = """
INSERT INTO leases AS l (name, holder, expires_at)
VALUES ($1, $2, extract(epoch FROM clock_timestamp()) + $3::float8)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < extract(epoch FROM clock_timestamp())
   OR split_part(l.holder, '/', 1) = split_part(excluded.holder, '/', 1)
RETURNING holder
"""


class PostgresFleet(PostgresConnection):
    async def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        return await self._write_value(_HOLD_LEASE, name, holder, seconds) is not None

    async def release_lease(self, name: str, holder: str) -> None:
        await self._execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)

    async def follow(self, notice: Callable[[Notice], None]) -> None:
        if self._listener is None:
            ready = asyncio.get_running_loop().create_future()
            self._listener = asyncio.create_task(self._listen(notice, ready), name="revisions-listener")
            await ready

    async def _listen(self, notice: Callable[[Notice], None], ready: asyncio.Future[None]) -> None:
        """LISTEN on a connection of its own, for good: reconnect when it is lost (what was announced meanwhile is
        caught up by the hub's own reads of the store; a refusal missed, by `access`, which reads it with the
        access)."""

        def heard(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            try:
                data = json.loads(str(payload))
                item: Notice
                if "refused" in data:
                    item = RefusalNotice(str(data["refused"]), float(data["at"]), str(data["from"]))
                else:
                    item = RevisionNotice(
                        str(data["b"]), int(data["r"]), str(data["o"]), str(data["p"]), str(data["from"])
                    )
            except (ValueError, KeyError, TypeError):
                log.warning("a revision notice that is not one of ours: %.80s", payload)
                return
            if item.origin != self.origin:
                notice(item)

        while True:
            try:
                conn = await self.dedicated_connection()
            except Exception as exc:
                log.warning("cannot listen for other replicas' revisions (%s); retrying", type(exc).__name__)
                if not ready.done():
                    ready.set_result(None)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            try:
                await conn.add_listener(REVISIONS_CHANNEL, heard)
                if not ready.done():
                    ready.set_result(None)
                await lost.wait()
                log.warning("lost the connection listening for other replicas' revisions; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5.0)
