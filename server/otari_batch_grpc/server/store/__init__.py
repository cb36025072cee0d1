"""The service's durable state behind one interface (`Store`), with two backends: SQLite (`sqlite`, the standard
library's sqlite3 on a thread of its own: the embedded default, one process) and PostgreSQL (`postgres`, asyncpg:
replicas sharing one database). `open_store(target)` picks by the target: a `postgresql://` URL or a file path.
The only package with SQL in it.

Each backend moves its schema forward by numbered migrations (`migrations`) and refuses a database newer than the
code.
"""

import os

from otari_batch_grpc.server.store.base import (
    Access,
    BatchRecord,
    Change,
    Claim,
    ClaimedDelivery,
    Delivery,
    DeliveryRecord,
    EndpointRecord,
    FollowedBatch,
    Notice,
    Notify,
    PartPlan,
    PartRecord,
    RefusalNotice,
    Revision,
    RevisionNotice,
    SeenBatch,
    Store,
    StoreError,
    StoreUnavailable,
    WholeRecord,
    is_database_url,
)
from otari_batch_grpc.server.store.migrations import SQLITE as MIGRATIONS

__all__ = [
    "MIGRATIONS",
    "Access",
    "BatchRecord",
    "Change",
    "Claim",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryRecord",
    "EndpointRecord",
    "FollowedBatch",
    "Notice",
    "Notify",
    "PartPlan",
    "PartRecord",
    "RefusalNotice",
    "Revision",
    "RevisionNotice",
    "SeenBatch",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WholeRecord",
    "is_database_url",
    "open_store",
]


async def open_store(target: str | os.PathLike[str]) -> Store:
    """Open the store at `target` and migrate it: a `postgresql://` (or `postgres://`) URL is PostgreSQL, anything
    else a SQLite file. Raises StoreError for a database that cannot be used."""
    if is_database_url(target):
        from otari_batch_grpc.server.store.postgres import PostgresStore  # asyncpg: only when used

        assert isinstance(target, str)
        return await PostgresStore.connect(target)
    from otari_batch_grpc.server.store.sqlite import SqliteStore

    return await SqliteStore.connect(target)
