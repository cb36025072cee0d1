"""The service's durable state behind one interface (`Store`), with two backends: SQLite (`sqlite`, aiosqlite:
the embedded default, one process) and PostgreSQL (`postgres`, asyncpg: replicas sharing one database).
`Store.open(target)` picks by the target: a `postgresql://` URL or a file path. The only package with SQL in it.

Each backend moves its schema forward by numbered migrations (`migrations`) and refuses a database newer than the
code.
"""

from otari_batch_grpc.server.store.base import (
    Access,
    BatchRecord,
    Claim,
    Revision,
    RevisionNotice,
    SeenBatch,
    Store,
    StoreError,
    is_database_url,
)
from otari_batch_grpc.server.store.migrations import SQLITE as MIGRATIONS

__all__ = [
    "MIGRATIONS",
    "Access",
    "BatchRecord",
    "Claim",
    "Revision",
    "RevisionNotice",
    "SeenBatch",
    "Store",
    "StoreError",
    "is_database_url",
]
