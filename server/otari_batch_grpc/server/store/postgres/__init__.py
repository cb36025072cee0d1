"""The store on PostgreSQL (asyncpg): the state that replicas share, so any of them can answer any call. Its parts
by concern: the connection (and the database as a whole), the registry, idempotency claims, revisions, the results
cache, and the fleet (leases, what the replicas hear of each other). What the replicas must agree on is settled in
the database: claims are rows, revisions are numbered in commit order, migrations run once for all, and the secrets
that are not set live in it, so replicas hash callers alike and open each other's tokens."""

from __future__ import annotations

from otari_batch_grpc.server.store.postgres.claims import PostgresClaims
from otari_batch_grpc.server.store.postgres.connection import redacted
from otari_batch_grpc.server.store.postgres.endpoints import PostgresEndpoints
from otari_batch_grpc.server.store.postgres.fleet import PostgresFleet
from otari_batch_grpc.server.store.postgres.registry import PostgresRegistry
from otari_batch_grpc.server.store.postgres.results import PostgresResults
from otari_batch_grpc.server.store.postgres.revisions import PostgresRevisions
from otari_batch_grpc.server.store.postgres.wholes import PostgresWholes


class PostgresStore(
    PostgresRegistry,
    PostgresClaims,
    PostgresRevisions,
    PostgresResults,
    PostgresWholes,
    PostgresFleet,
    PostgresEndpoints,
):
    """An asyncpg pool on one database, shared with any number of other processes."""


__all__ = ["PostgresStore", "redacted"]
