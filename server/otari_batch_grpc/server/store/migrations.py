"""The schema of each backend, as numbered migrations: migration N is the Nth entry, applied in order, each in
a transaction of its own with the record of it (SQLite: PRAGMA user_version; PostgreSQL: a row of
schema_version). A database whose version is past the last entry is refused. Entries are never edited once
released: a change is a new entry, in both lists when both backends need it."""

from __future__ import annotations

SQLITE: tuple[str, ...] = (
    # 1: registry, access, idempotency, results cache
    """
    CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        provider    TEXT NOT NULL,
        creator     TEXT,            -- owner hash of the caller that created it through this service, if any
        status      TEXT NOT NULL,
        terminal    INTEGER NOT NULL,
        snapshot    BLOB NOT NULL,   -- the last Batch message seen, serialized
        first_seen  REAL NOT NULL,
        last_seen   REAL NOT NULL
    );
    CREATE TABLE access (
        batch_id     TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        owner        TEXT NOT NULL,  -- keyed hash of a credential the gateway showed this batch to
        verified_at  REAL NOT NULL,
        PRIMARY KEY (batch_id, owner)
    );
    CREATE TABLE idempotency (
        owner        TEXT NOT NULL,
        request_id   TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,  -- hash of the request, to tell a retry from a different request
        provider     TEXT NOT NULL,
        batch_id     TEXT,           -- NULL while the create is in flight or its reply was lost
        created_at   REAL NOT NULL,
        PRIMARY KEY (owner, request_id)
    );
    CREATE TABLE result_sets (
        batch_id    TEXT PRIMARY KEY,
        items       INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        fetched_at  REAL NOT NULL
    );
    CREATE TABLE results (
        batch_id  TEXT NOT NULL REFERENCES result_sets(batch_id) ON DELETE CASCADE,
        idx       INTEGER NOT NULL,
        item      BLOB NOT NULL,     -- a BatchResult message, serialized
        PRIMARY KEY (batch_id, idx)
    ) WITHOUT ROWID;
    CREATE INDEX result_sets_by_age ON result_sets(fetched_at);
    """,
    # 2: status revisions, for watch streams that resume
    """
    CREATE TABLE revisions (
        batch_id     TEXT NOT NULL,
        rev          INTEGER NOT NULL,
        snapshot     BLOB NOT NULL,  -- the Batch message as observed, serialized
        observed_at  REAL NOT NULL,
        PRIMARY KEY (batch_id, rev)
    ) WITHOUT ROWID;
    """,
    # 3: one sequence over every revision (WatchBatches resumes by it); the registry lists by creation time;
    #    indexes for retention
    """
    CREATE TABLE revisions_seq (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id     TEXT NOT NULL,
        rev          INTEGER NOT NULL,
        snapshot     BLOB NOT NULL,
        observed_at  REAL NOT NULL,
        UNIQUE (batch_id, rev)
    );
    INSERT INTO revisions_seq (batch_id, rev, snapshot, observed_at)
        SELECT batch_id, rev, snapshot, observed_at FROM revisions ORDER BY observed_at, rev;
    DROP TABLE revisions;
    ALTER TABLE revisions_seq RENAME TO revisions;
    ALTER TABLE batches ADD COLUMN created_at REAL NOT NULL DEFAULT 0;
    UPDATE batches SET created_at = first_seen;
    CREATE INDEX batches_by_creation ON batches(created_at DESC, first_seen DESC, id DESC);
    CREATE INDEX batches_by_last_seen ON batches(last_seen);
    CREATE INDEX access_by_owner ON access(owner, batch_id);
    CREATE INDEX access_by_age ON access(verified_at);
    CREATE INDEX idempotency_by_age ON idempotency(created_at)
    """,
    # 4: results cached as chunks ready to send (the bytes of a StreamResultsResponse's results entries), and
    #    trusted only once complete
    """
    DROP TABLE results;
    DELETE FROM result_sets;
    ALTER TABLE result_sets ADD COLUMN complete INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE result_chunks (
        batch_id     TEXT NOT NULL REFERENCES result_sets(batch_id) ON DELETE CASCADE,
        first_index  INTEGER NOT NULL,
        count        INTEGER NOT NULL,
        payload      BLOB NOT NULL,
        PRIMARY KEY (batch_id, first_index)
    ) WITHOUT ROWID
    """,
    # 5: a create attempt holds its claim until a deadline of its own (see Claim): who, and until when
    """
    ALTER TABLE idempotency ADD COLUMN holder TEXT;
    ALTER TABLE idempotency ADD COLUMN attempt_until REAL NOT NULL DEFAULT 0
    """,
    # 6: keys the gateway refused (401): access it showed them before then no longer counts
    """
    CREATE TABLE key_refusals (
        owner       TEXT PRIMARY KEY,  -- keyed hash of a credential the gateway answered 401
        refused_at  REAL NOT NULL      -- when it last did (epoch seconds)
    )
    """,
    # 7: batches of several parts: each as made (whose, with what), and its parts (the plan, and each part upstream)
    """
    CREATE TABLE wholes (
        id            TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,     -- owner hash of the caller that made it
        provider      TEXT NOT NULL,
        request_id    TEXT NOT NULL,     -- '' when made without one
        requests      INTEGER NOT NULL,
        header        BLOB NOT NULL,     -- its CreateBatchRequest without the requests, serialized
        created_at    REAL NOT NULL,
        cancel_asked  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX wholes_by_age ON wholes(created_at);
    CREATE TABLE parts (
        batch_id     TEXT NOT NULL REFERENCES wholes(id) ON DELETE CASCADE,
        idx          INTEGER NOT NULL,
        first        INTEGER NOT NULL,   -- its first request's index in the batch, `count` following in order
        count        INTEGER NOT NULL,
        custom_ids   BLOB NOT NULL,      -- its requests' custom_ids, packed
        upstream_id  TEXT,               -- the gateway's batch, once made (or found)
        sent_at      REAL NOT NULL DEFAULT 0,  -- when an attempt to make it was sent (0: never)
        snapshot     BLOB NOT NULL DEFAULT x'',  -- its last Batch seen, serialized
        terminal     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (batch_id, idx)
    ) WITHOUT ROWID
    """,
    # 8: re-runs of a batch's retryable failures: how many tries a request gets, each part's try, what a re-run
    #    holds, the requests kept for re-runs, and the callers' keys delegated for them (sealed)
    """
    ALTER TABLE wholes ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE parts ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE parts ADD COLUMN rerun_of INTEGER;        -- the part whose retryable failures it re-runs
    ALTER TABLE parts ADD COLUMN indices BLOB;            -- a re-run's requests: their indexes in the batch, packed
    ALTER TABLE parts ADD COLUMN bodies BLOB;             -- a first try's requests, kept while re-runs may need them
    ALTER TABLE parts ADD COLUMN examined INTEGER NOT NULL DEFAULT 0;  -- its failures looked at (a re-run recorded)
    CREATE TABLE delegations (
        batch_id    TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,   -- owner hash of the caller that delegated its key
        sealed      BLOB NOT NULL,   -- the key, encrypted (AES-GCM) under the key-encryption key, bound to the batch
        created_at  REAL NOT NULL
    )
    """,
    # 9: a part is found by its upstream id (a call on it names its batch); a part a GetBatch of it had entered as
    #    a batch of the caller's own (before parts were told apart) is no longer one
    """
    CREATE INDEX parts_by_upstream ON parts(upstream_id);
    DELETE FROM access WHERE batch_id IN (SELECT upstream_id FROM parts WHERE upstream_id IS NOT NULL)
    """,
    # 10: webhook endpoints (#32): whose, where, which changes, the signing secrets and the owner's key (sealed);
    #     the outbox of what each is to be sent, added with the revision it tells of
    """
    CREATE TABLE webhook_endpoints (
        id               TEXT PRIMARY KEY,
        owner            TEXT NOT NULL,             -- owner hash of the caller that registered it
        url              TEXT NOT NULL,
        events           TEXT NOT NULL,             -- 'terminal' or 'all'
        metadata_filter  TEXT NOT NULL,             -- the metadata pairs a batch must carry, a JSON object
        description      TEXT NOT NULL,
        secrets          BLOB NOT NULL,             -- its signing secrets, sealed (AES-GCM, the key-encryption key)
        sealed_key       BLOB NOT NULL,             -- the owner's key, sealed, to poll its batches meanwhile
        enabled          INTEGER NOT NULL,
        disabled_reason  TEXT NOT NULL,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL
    );
    CREATE INDEX webhook_endpoints_by_owner ON webhook_endpoints(owner, created_at);
    CREATE TABLE webhook_outbox (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
        batch_id     TEXT NOT NULL,
        rev          INTEGER NOT NULL,              -- the revision it tells of
        kind         TEXT NOT NULL,                 -- its type: batch.completed, ...
        terminal     INTEGER NOT NULL,
        event        BLOB NOT NULL,                 -- the BatchEvent it carries (its resume token added when sent)
        created_at   REAL NOT NULL,
        state        TEXT NOT NULL,                 -- pending, delivered, superseded, dropped
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      REAL NOT NULL,                 -- when it is next tried
        lease_until  REAL NOT NULL DEFAULT 0,       -- a replica trying it holds it until then
        holder       TEXT NOT NULL DEFAULT '',
        last_status  INTEGER NOT NULL DEFAULT 0,    -- the receiver's last answer (0: none came)
        last_error   TEXT NOT NULL DEFAULT '',
        done_at      REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox(state, next_at);
    CREATE INDEX webhook_outbox_by_endpoint ON webhook_outbox(endpoint_id, batch_id, id)
    """,
)

# Every table lives in a schema of its own (the connections' search_path), so the service can share a database
# (the gateway's DATABASE_URL, say) without its names meeting anyone else's.
POSTGRES_SCHEMA = "otari_batch_grpc"

POSTGRES: tuple[str, ...] = (
    # 1: the schema SQLite reached at its migration 4, in PostgreSQL's types; a sequence numbers the revisions
    #    of every batch (WatchBatches resumes by it, on any replica)
    """
    CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        provider    TEXT NOT NULL,
        creator     TEXT,                      -- owner hash of the caller that created it through this service
        status      TEXT NOT NULL,
        terminal    BOOLEAN NOT NULL,
        snapshot    BYTEA NOT NULL,            -- the last Batch message seen, serialized
        first_seen  DOUBLE PRECISION NOT NULL, -- epoch seconds, as every time here
        last_seen   DOUBLE PRECISION NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE INDEX batches_by_creation ON batches (created_at DESC, first_seen DESC, id DESC);
    CREATE INDEX batches_by_last_seen ON batches (last_seen);
    CREATE TABLE access (
        batch_id     TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
        owner        TEXT NOT NULL,            -- keyed hash of a credential the gateway showed this batch to
        verified_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (batch_id, owner)
    );
    CREATE INDEX access_by_owner ON access (owner, batch_id);
    CREATE INDEX access_by_age ON access (verified_at);
    CREATE TABLE idempotency (
        owner        TEXT NOT NULL,
        request_id   TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,            -- hash of the request, to tell a retry from a different request
        provider     TEXT NOT NULL,
        batch_id     TEXT,                     -- NULL while the create is in flight or its reply was lost
        created_at   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (owner, request_id)
    );
    CREATE INDEX idempotency_by_age ON idempotency (created_at);
    CREATE TABLE revisions (
        seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        batch_id     TEXT NOT NULL,
        rev          INTEGER NOT NULL,
        snapshot     BYTEA NOT NULL,           -- the Batch message as observed, serialized
        observed_at  DOUBLE PRECISION NOT NULL,
        UNIQUE (batch_id, rev)
    );
    CREATE TABLE result_sets (
        batch_id    TEXT PRIMARY KEY,
        items       BIGINT NOT NULL,
        bytes       BIGINT NOT NULL,
        fetched_at  DOUBLE PRECISION NOT NULL,
        complete    BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX result_sets_by_age ON result_sets (fetched_at);
    CREATE TABLE result_chunks (
        batch_id     TEXT NOT NULL REFERENCES result_sets (batch_id) ON DELETE CASCADE,
        first_index  BIGINT NOT NULL,
        count        INTEGER NOT NULL,
        payload      BYTEA NOT NULL,           -- StreamResultsResponse.results entries, ready to send
        PRIMARY KEY (batch_id, first_index)
    );
    -- Kept as written (SQLite does not compress them either): pglz would cost a millisecond per chunk each way.
    ALTER TABLE result_chunks ALTER COLUMN payload SET STORAGE EXTERNAL;
    -- What every replica must agree on (the secret of the keyed hash that stands for a caller).
    CREATE TABLE shared (
        name   TEXT PRIMARY KEY,
        value  BYTEA NOT NULL
    );
    """,
    # 2: leases: which replica does a job for all (polls a live batch); taken over when its holder stops renewing
    """
    CREATE TABLE leases (
        name        TEXT PRIMARY KEY,
        holder      TEXT NOT NULL,
        expires_at  DOUBLE PRECISION NOT NULL  -- epoch seconds, by the database's clock
    );
    """,
    # 3: a create attempt holds its claim until a deadline of its own (see Claim): who, and until when, by the
    #    database's clock
    """
    ALTER TABLE idempotency ADD COLUMN holder TEXT;
    ALTER TABLE idempotency ADD COLUMN attempt_until DOUBLE PRECISION NOT NULL DEFAULT 0;
    """,
    # 4: keys the gateway refused (401): access it showed them before then no longer counts
    """
    CREATE TABLE key_refusals (
        owner       TEXT PRIMARY KEY,          -- keyed hash of a credential the gateway answered 401
        refused_at  DOUBLE PRECISION NOT NULL  -- when it last did (epoch seconds)
    );
    """,
    # 5: batches of several parts: each as made (whose, with what), and its parts (the plan, and each part upstream)
    """
    CREATE TABLE wholes (
        id            TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,             -- owner hash of the caller that made it
        provider      TEXT NOT NULL,
        request_id    TEXT NOT NULL,             -- '' when made without one
        requests      BIGINT NOT NULL,
        header        BYTEA NOT NULL,            -- its CreateBatchRequest without the requests, serialized
        created_at    DOUBLE PRECISION NOT NULL,
        cancel_asked  BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX wholes_by_age ON wholes (created_at);
    CREATE TABLE parts (
        batch_id     TEXT NOT NULL REFERENCES wholes (id) ON DELETE CASCADE,
        idx          INTEGER NOT NULL,
        first        BIGINT NOT NULL,            -- its first request's index in the batch, `count` following in order
        count        INTEGER NOT NULL,
        custom_ids   BYTEA NOT NULL,             -- its requests' custom_ids, packed
        upstream_id  TEXT,                       -- the gateway's batch, once made (or found)
        sent_at      DOUBLE PRECISION NOT NULL DEFAULT 0,  -- when an attempt to make it was sent (0: never)
        snapshot     BYTEA NOT NULL DEFAULT '',  -- its last Batch seen, serialized
        terminal     BOOLEAN NOT NULL DEFAULT false,
        PRIMARY KEY (batch_id, idx)
    );
    """,
    # 6: re-runs of a batch's retryable failures: how many tries a request gets, each part's try, what a re-run
    #    holds, the requests kept for re-runs, and the callers' keys delegated for them (sealed)
    """
    ALTER TABLE wholes ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE parts ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE parts ADD COLUMN rerun_of INTEGER;        -- the part whose retryable failures it re-runs
    ALTER TABLE parts ADD COLUMN indices BYTEA;           -- a re-run's requests: their indexes in the batch, packed
    ALTER TABLE parts ADD COLUMN bodies BYTEA;            -- a first try's requests, kept while re-runs may need them
    ALTER TABLE parts ADD COLUMN examined BOOLEAN NOT NULL DEFAULT false;  -- its failures looked at
    CREATE TABLE delegations (
        batch_id    TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,             -- owner hash of the caller that delegated its key
        sealed      BYTEA NOT NULL,            -- the key, encrypted (AES-GCM) under the key-encryption key
        created_at  DOUBLE PRECISION NOT NULL
    );
    """,
    # 7: which replica saved each revision (a WatchBatches resume sends again what another saved just before its
    #    position: it may have come after); a part is found by its upstream id (a call on it names its batch), and
    #    a part a GetBatch of it had entered as a batch of the caller's own (before parts were told apart) is no
    #    longer one
    """
    ALTER TABLE revisions ADD COLUMN origin TEXT;
    CREATE INDEX parts_by_upstream ON parts (upstream_id);
    DELETE FROM access WHERE batch_id IN (SELECT upstream_id FROM parts WHERE upstream_id IS NOT NULL);
    """,
    # 8: webhook endpoints (#32): whose, where, which changes, the signing secrets and the owner's key (sealed);
    #    the outbox of what each is to be sent, added with the revision it tells of
    """
    CREATE TABLE webhook_endpoints (
        id               TEXT PRIMARY KEY,
        owner            TEXT NOT NULL,             -- owner hash of the caller that registered it
        url              TEXT NOT NULL,
        events           TEXT NOT NULL,             -- 'terminal' or 'all'
        metadata_filter  TEXT NOT NULL,             -- the metadata pairs a batch must carry, a JSON object
        description      TEXT NOT NULL,
        secrets          BYTEA NOT NULL,            -- its signing secrets, sealed (AES-GCM, the key-encryption key)
        sealed_key       BYTEA NOT NULL,            -- the owner's key, sealed, to poll its batches meanwhile
        enabled          BOOLEAN NOT NULL,
        disabled_reason  TEXT NOT NULL,
        created_at       DOUBLE PRECISION NOT NULL,
        updated_at       DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX webhook_endpoints_by_owner ON webhook_endpoints (owner, created_at);
    CREATE TABLE webhook_outbox (
        id           BIGSERIAL PRIMARY KEY,
        endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        batch_id     TEXT NOT NULL,
        rev          BIGINT NOT NULL,               -- the revision it tells of
        kind         TEXT NOT NULL,                 -- its type: batch.completed, ...
        terminal     BOOLEAN NOT NULL,
        event        BYTEA NOT NULL,                -- the BatchEvent it carries (its resume token added when sent)
        created_at   DOUBLE PRECISION NOT NULL,
        state        TEXT NOT NULL,                 -- pending, delivered, superseded, dropped
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      DOUBLE PRECISION NOT NULL,     -- when it is next tried
        lease_until  DOUBLE PRECISION NOT NULL DEFAULT 0,  -- a replica trying it holds it until then
        holder       TEXT NOT NULL DEFAULT '',
        last_status  INTEGER NOT NULL DEFAULT 0,    -- the receiver's last answer (0: none came)
        last_error   TEXT NOT NULL DEFAULT '',
        done_at      DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_at);
    CREATE INDEX webhook_outbox_by_endpoint ON webhook_outbox (endpoint_id, batch_id, id);
    """,
)
