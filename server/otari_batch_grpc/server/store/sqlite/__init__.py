"""The store on SQLite (sqlite3, on a thread of its own): the embedded default, one process's own state in one
file. Its parts by concern: the connection (and the database as a whole), the registry, idempotency claims,
revisions, the results cache, batches of several parts, webhook endpoints and their outbox."""

from __future__ import annotations

from otari_batch_grpc.server.store.sqlite.claims import SqliteClaims
from otari_batch_grpc.server.store.sqlite.endpoints import SqliteEndpoints
from otari_batch_grpc.server.store.sqlite.registry import SqliteRegistry
from otari_batch_grpc.server.store.sqlite.results import SqliteResults
from otari_batch_grpc.server.store.sqlite.revisions import SqliteRevisions
from otari_batch_grpc.server.store.sqlite.wholes import SqliteWholes


class SqliteStore(SqliteRegistry, SqliteClaims, SqliteRevisions, SqliteResults, SqliteWholes, SqliteEndpoints):
    """One sqlite3 connection on a thread of its own; each method's transaction is run there whole, in one trip."""


__all__ = ["SqliteStore"]
